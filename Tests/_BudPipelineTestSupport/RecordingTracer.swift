import Foundation
import Synchronization
public import Tracing

/// A tracer for tests: spans with W3C ids (trace context propagated as `traceparent`), kept once
/// they end, so that a test reads what an execution recorded.
public final class RecordingTracer: Tracer {
    /// The ids of a span, kept in its service context.
    public struct SpanIDs: Sendable, Equatable {
        public var traceID: String
        public var spanID: String
        public var parentSpanID: String?
    }

    /// A span that ended.
    public struct FinishedSpan: Sendable {
        public var name: String
        public var kind: SpanKind
        public var ids: SpanIDs
        public var attributes: SpanAttributes
        public var status: SpanStatus?
        public var errors: [String]
        public var startNanoseconds: UInt64
        public var endNanoseconds: UInt64

        public var traceID: String { ids.traceID }
        public var spanID: String { ids.spanID }
        public var parentSpanID: String? { ids.parentSpanID }

        /// The attribute's value as text, when it has one.
        public func attribute(_ key: String) -> String? {
            guard let value = attributes[key] else { return nil }
            switch value.toSpanAttribute() {
            case .string(let text): return text
            case .int64(let number): return "\(number)"
            case .int32(let number): return "\(number)"
            case .double(let number): return "\(number)"
            case .bool(let flag): return "\(flag)"
            case .stringConvertible(let convertible): return convertible.description
            default: return "\(value)"
            }
        }
    }

    private let finished = Mutex<[FinishedSpan]>([])

    public init() {}

    /// The spans that ended, in the order they did.
    public var spans: [FinishedSpan] { finished.withLock { $0 } }

    /// The ended spans named `name`.
    public func spans(named name: String) -> [FinishedSpan] { spans.filter { $0.name == name } }

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind, at instant: @autoclosure () -> Instant,
        function: String, file fileID: String, line: UInt
    ) -> RecordingSpan {
        var context = context()
        let parent = context.recordedSpanIDs
        let ids = SpanIDs(traceID: parent?.traceID ?? Self.randomHex(32), spanID: Self.randomHex(16), parentSpanID: parent?.spanID)
        context.recordedSpanIDs = ids
        return RecordingSpan(name: operationName, kind: kind, context: context, ids: ids, start: instant().nanosecondsSinceEpoch) { span in
            self.finished.withLock { $0.append(span) }
        }
    }

    public func activeSpan(identifiedBy context: ServiceContext) -> RecordingSpan? { nil }

    public func forceFlush() {}

    public func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        guard let header = extractor.extract(key: "traceparent", from: carrier) else { return }
        let parts = header.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[1].count == 32, parts[2].count == 16 else { return }
        context.recordedSpanIDs = SpanIDs(traceID: String(parts[1]), spanID: String(parts[2]), parentSpanID: nil)
    }

    public func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        guard let ids = context.recordedSpanIDs else { return }
        injector.inject("00-\(ids.traceID)-\(ids.spanID)-01", forKey: "traceparent", into: &carrier)
    }

    private static func randomHex(_ digits: Int) -> String {
        String((0..<digits).map { _ in "0123456789abcdef".randomElement() ?? "1" })
    }
}

/// A span of a ``RecordingTracer``.
public final class RecordingSpan: Span {
    private struct State {
        var name: String
        var attributes: SpanAttributes = [:]
        var status: SpanStatus?
        var errors: [String] = []
        var ended = false
    }

    public let context: ServiceContext
    private let kind: SpanKind
    private let ids: RecordingTracer.SpanIDs
    private let start: UInt64
    private let state: Mutex<State>
    private let onEnd: @Sendable (RecordingTracer.FinishedSpan) -> Void

    init(
        name: String, kind: SpanKind, context: ServiceContext, ids: RecordingTracer.SpanIDs, start: UInt64,
        onEnd: @escaping @Sendable (RecordingTracer.FinishedSpan) -> Void
    ) {
        self.context = context
        self.kind = kind
        self.ids = ids
        self.start = start
        self.state = Mutex(State(name: name))
        self.onEnd = onEnd
    }

    public var operationName: String {
        get { state.withLock { $0.name } }
        set { state.withLock { $0.name = newValue } }
    }

    public var attributes: SpanAttributes {
        get { state.withLock { $0.attributes } }
        set { state.withLock { $0.attributes = newValue } }
    }

    public var isRecording: Bool { state.withLock { !$0.ended } }

    public func setStatus(_ status: SpanStatus) { state.withLock { $0.status = status } }

    public func addEvent(_ event: SpanEvent) {}

    public func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant)
    {
        state.withLock { $0.errors.append("\(error)") }
    }

    public func addLink(_ link: SpanLink) {}

    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        let end = instant().nanosecondsSinceEpoch
        let finished = state.withLock { state -> RecordingTracer.FinishedSpan? in
            guard !state.ended else { return nil }
            state.ended = true
            return RecordingTracer.FinishedSpan(
                name: state.name, kind: kind, ids: ids, attributes: state.attributes, status: state.status, errors: state.errors,
                startNanoseconds: start, endNanoseconds: end)
        }
        if let finished { onEnd(finished) }
    }
}

private enum RecordedSpanIDsKey: ServiceContextKey {
    typealias Value = RecordingTracer.SpanIDs
}

extension ServiceContext {
    fileprivate var recordedSpanIDs: RecordingTracer.SpanIDs? {
        get { self[RecordedSpanIDsKey.self] }
        set { self[RecordedSpanIDsKey.self] = newValue }
    }
}
