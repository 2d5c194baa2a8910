public import PipelineEngine

/// A W3C trace context `traceparent` (https://www.w3.org/TR/trace-context/#traceparent-header):
/// the trace id, the parent span id and the trace flags, each checked.
///
/// Parsing never traps and accepts only what the recommendation allows: version `00` is exactly
/// 55 characters; a later version (never `ff`) at least 55, its extra fields after a `-`; lower-case
/// hex digits only; neither id all zeros. Anything else is no trace context and is ignored, so a
/// hostile header never reaches a log, a store or another service as it came.
public struct TraceParent: Sendable, Hashable, CustomStringConvertible {
    /// 32 lower-case hex digits, not all zero.
    public let traceID: String
    /// 16 lower-case hex digits, not all zero.
    public let spanID: String
    /// Whether the sender sampled the trace (flag `01`).
    public let sampled: Bool

    /// The longest header read; a longer one is ignored without being looked at further.
    public static let maximumHeaderLength = 512

    public init?(_ header: some StringProtocol) {
        let bytes = Array(header.utf8.prefix(Self.maximumHeaderLength + 1))
        guard (55...Self.maximumHeaderLength).contains(bytes.count), bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"),
            bytes[52] == UInt8(ascii: "-")
        else { return nil }
        let version = bytes[0..<2]
        guard version.allSatisfy(Self.isLowerHex), version.elementsEqual("ff".utf8) == false else { return nil }
        // Version 00 has no more fields; a later one may, after a dash.
        if version.elementsEqual("00".utf8) {
            guard bytes.count == 55 else { return nil }
        } else if bytes.count > 55, bytes[55] != UInt8(ascii: "-") {
            return nil
        }
        let trace = bytes[3..<35]
        let span = bytes[36..<52]
        let flags = bytes[53..<55]
        guard trace.allSatisfy(Self.isLowerHex), span.allSatisfy(Self.isLowerHex), flags.allSatisfy(Self.isLowerHex),
            trace.contains(where: { $0 != UInt8(ascii: "0") }), span.contains(where: { $0 != UInt8(ascii: "0") })
        else { return nil }
        self.traceID = String(decoding: trace, as: UTF8.self)
        self.spanID = String(decoding: span, as: UTF8.self)
        // Only the sampled bit is defined; the others are not passed on.
        self.sampled = (Self.hexValue(flags.last ?? 0) & 1) == 1
    }

    /// The trace context of an execution whose start carried none: trace id = the execution id's
    /// 32 hex digits, so that a trace is found by the execution id; parent span id = its last 16
    /// digits (the execution itself, a parent no process records). `nil` when the id is not 32
    /// hex digits (executions get UUIDs, so only a hand-made id can be).
    public static func derived(from executionID: ExecutionID) -> TraceParent? {
        // Bytes, not Characters: this runs for every plugin call.
        var hex: [UInt8] = []
        hex.reserveCapacity(32)
        for byte in executionID.rawValue.utf8 where byte != UInt8(ascii: "-") {
            let lower = (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte) ? byte + 32 : byte
            guard isLowerHex(lower), hex.count < 32 else { return nil }
            hex.append(lower)
        }
        // W3C forbids an all-zero trace id or parent id.
        guard hex.count == 32, hex[16...].contains(where: { $0 != UInt8(ascii: "0") }) else { return nil }
        return TraceParent(
            traceID: String(decoding: hex, as: UTF8.self), spanID: String(decoding: hex[16...], as: UTF8.self), sampled: true)
    }

    private init(traceID: String, spanID: String, sampled: Bool) {
        self.traceID = traceID
        self.spanID = spanID
        self.sampled = sampled
    }

    /// The header: version 00, as this process sends it.
    public var header: String { "00-\(traceID)-\(spanID)-\(sampled ? "01" : "00")" }

    public var description: String { header }

    private static func isLowerHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "a") ? byte - UInt8(ascii: "a") + 10 : byte &- UInt8(ascii: "0")
    }
}
