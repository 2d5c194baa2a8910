public import BudJSON
import Foundation
import Yams

/// Reads pipeline documents written in JSON or YAML into JSON values.
public enum PipelineDocument {
    public enum Format: Sendable {
        case json, yaml
    }

    /// A document that is neither valid JSON nor valid YAML; the message is one line.
    public struct ReadError: Error, Sendable, Equatable, CustomStringConvertible {
        public let message: String

        public var description: String { message }
    }

    /// Reads `text`. Without a format, text starting with `{` or `[` is JSON and anything else YAML.
    public static func read(_ text: String, format: Format? = nil) throws(ReadError) -> JSONValue {
        let trimmed = text.drop { $0.isWhitespace }
        let chosen = format ?? (trimmed.first == "{" || trimmed.first == "[" ? .json : .yaml)
        switch chosen {
        case .json:
            do {
                return try JSONValue(parsing: text)
            } catch {
                throw ReadError(message: "invalid JSON: \(error)")
            }
        case .yaml:
            return try yaml(text)
        }
    }

    /// The format a file name suggests: `.yaml`/`.yml` YAML, `.json` JSON, otherwise unknown.
    public static func format(forFileName name: String) -> Format? {
        switch (name as NSString).pathExtension.lowercased() {
        case "yaml", "yml": .yaml
        case "json": .json
        default: nil
        }
    }

    /// The most nodes a YAML document may have once its aliases are expanded.
    public static let maximumYAMLNodes = 1_000_000

    private static func yaml(_ text: String) throws(ReadError) -> JSONValue {
        if let shape = YAMLShape.measure(text, maximumDepth: JSONValue.maximumNestingDepth, maximumNodes: maximumYAMLNodes) {
            if shape.depth > JSONValue.maximumNestingDepth {
                throw ReadError(message: "invalid YAML: nesting deeper than \(JSONValue.maximumNestingDepth) levels")
            }
            if shape.expandedNodes > maximumYAMLNodes {
                throw ReadError(message: "invalid YAML: more than \(maximumYAMLNodes) values once aliases are expanded")
            }
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text, Resolver.default.removing(.timestamp).removing(.value))
        } catch {
            let message = String(describing: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            throw ReadError(message: "invalid YAML: \(message)")
        }
        guard let root else { return .null }
        return try value(of: root)
    }

    /// A YAML 1.1 integer (`-12`, `1_000`, `0x1f`, `0o17`, `017`, `0b101`, sexagesimal `1:30`),
    /// or `nil` when it does not fit in an `Int`. Yams' own reading multiplies sexagesimal parts
    /// without an overflow check, which traps (`922337203685477580:7`, found by fuzzing).
    package static func integer(_ text: String) -> Int? {
        var digits = Substring(text.replacingOccurrences(of: "_", with: ""))
        let negative = digits.hasPrefix("-")
        if negative || digits.hasPrefix("+") { digits = digits.dropFirst() }
        guard !digits.isEmpty else { return nil }
        var magnitude: Int?
        if digits.contains(":") {
            var total = 0
            for part in digits.split(separator: ":", omittingEmptySubsequences: false) {
                guard let value = Int(part, radix: 10), value >= 0 else { return nil }
                let (shifted, overflowed) = total.multipliedReportingOverflow(by: 60)
                let (sum, overflowedAgain) = shifted.addingReportingOverflow(value)
                guard !overflowed, !overflowedAgain else { return nil }
                total = sum
            }
            magnitude = total
        } else if digits.hasPrefix("0x") {
            magnitude = Int(digits.dropFirst(2), radix: 16)
        } else if digits.hasPrefix("0b") {
            magnitude = Int(digits.dropFirst(2), radix: 2)
        } else if digits.hasPrefix("0o") {
            magnitude = Int(digits.dropFirst(2), radix: 8)
        } else if digits.count > 1, digits.hasPrefix("0") {
            magnitude = Int(digits.dropFirst(), radix: 8)
        } else {
            magnitude = Int(digits, radix: 10)
        }
        guard let magnitude, magnitude >= 0 else { return nil }
        return negative ? -magnitude : magnitude
    }

    private static func value(of node: Node) throws(ReadError) -> JSONValue {
        switch node {
        case .scalar(let scalar):
            switch node.tag.rawValue {
            case Tag.Name.null.rawValue: return .null
            case Tag.Name.bool.rawValue: return node.bool.map(JSONValue.bool) ?? .string(scalar.string)
            case Tag.Name.int.rawValue:
                return integer(scalar.string).map(JSONValue.int) ?? node.float.map(JSONValue.double) ?? .string(scalar.string)
            case Tag.Name.float.rawValue: return node.float.map(JSONValue.double) ?? .string(scalar.string)
            default: return .string(scalar.string)
            }
        case .sequence(let sequence):
            var elements: [JSONValue] = []
            for element in sequence { elements.append(try value(of: element)) }
            return .array(elements)
        case .mapping(let mapping):
            var object = JSONObject()
            for (key, member) in mapping {
                if key.tag.rawValue == Tag.Name.merge.rawValue {
                    try merge(member, into: &object)
                    continue
                }
                guard let name = key.scalar?.string else {
                    throw ReadError(message: "invalid YAML: mapping keys must be scalars (line \(key.mark?.line ?? 0))")
                }
                object[name] = try value(of: member)
            }
            return .object(object)
        case .alias:
            throw ReadError(message: "invalid YAML: unresolved alias")
        }
    }

    /// `<<: *anchor` (or a list of anchors): keys already present win.
    private static func merge(_ node: Node, into object: inout JSONObject) throws(ReadError) {
        let sources: [Node] = node.sequence.map { Array($0) } ?? [node]
        for source in sources {
            guard case .object(let members) = try value(of: source) else {
                throw ReadError(message: "invalid YAML: '<<' must merge a mapping")
            }
            for (key, member) in members where object[key] == nil { object[key] = member }
        }
    }
}
