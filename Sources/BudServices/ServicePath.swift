/// A path on a bud service, made of literal segments written in the code and values, each value
/// percent-encoded as exactly one segment.
///
/// ```swift
/// ServicePath("cluster", .value(clusterID, name: "cluster_id"), "health")   // cluster/<id>/health
/// ```
///
/// What it guarantees:
/// - A literal is a `StaticString`: text fixed at compile time, never a run-time value.
/// - A value keeps only RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) and has every other
///   byte percent-encoded, so `/`, `?`, `#`, `%`, `\`, spaces and control characters cannot end
///   the segment, start a query or fragment, or be read as an escape: a value stays one segment.
/// - A value that is empty, `.` or `..` is refused (``encoded()`` throws), because as a whole
///   segment it would drop out of the path or climb out of it once the path is normalised.
public struct ServicePath: Sendable, Equatable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// One part of a path: a literal (possibly several segments, `"models/deploy-workflow"`) or a
    /// value that becomes one segment.
    public struct Segment: Sendable, Equatable, ExpressibleByStringLiteral {
        enum Kind: Sendable, Equatable {
            case literal(String)
            case value(String, name: String)
        }

        let kind: Kind

        /// A literal segment, as written in the code.
        public init(stringLiteral literal: StaticString) {
            kind = .literal(literal.description)
        }

        private init(kind: Kind) {
            self.kind = kind
        }

        /// `text` as one segment; `name` says in errors what the value is (`model_id`).
        public static func value(_ text: String, name: String) -> Segment {
            Segment(kind: .value(text, name: name))
        }
    }

    public let segments: [Segment]

    public init(_ segments: Segment...) {
        self.segments = segments
    }

    /// A path of literal segments only: `"models/deploy-workflow"`. (Not interpolation: a path
    /// with values is built from segments.)
    public init(stringLiteral literal: StaticString) {
        segments = [Segment(stringLiteral: literal)]
    }

    /// The path as sent, values percent-encoded, segments joined by `/`, without a leading `/`.
    public func encoded() throws(ServicePathError) -> String {
        var parts: [String] = []
        parts.reserveCapacity(segments.count)
        for segment in segments {
            switch segment.kind {
            case .literal(let text):
                parts.append(text)
            case .value(let text, let name):
                guard text != "", text != ".", text != ".." else { throw ServicePathError(name: name, value: text) }
                parts.append(Self.percentEncoded(text))
            }
        }
        return parts.joined(separator: "/")
    }

    /// The path with each value shown as `{name}`: what the call is, without its values.
    public var description: String {
        segments.map { segment in
            switch segment.kind {
            case .literal(let text): text
            case .value(_, let name): "{\(name)}"
            }
        }.joined(separator: "/")
    }

    /// `text` with every byte but the RFC 3986 unreserved characters percent-encoded.
    static func percentEncoded(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var encoded: [UInt8] = []
        encoded.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                encoded.append(byte)
            default:
                encoded += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: encoded, as: UTF8.self)
    }
}

/// A value that cannot be a path segment: empty, `.` or `..`.
public struct ServicePathError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What the value is (`model_id`).
    public let name: String
    public let value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    public var description: String {
        value.isEmpty
            ? "\(name) is empty and cannot be part of a service path"
            : "\(name) '\(value)' cannot be a service path segment: '.' and '..' are refused"
    }
}
