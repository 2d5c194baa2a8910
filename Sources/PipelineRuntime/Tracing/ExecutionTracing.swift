public import Foundation
public import Tracing

/// The spans of executions, and the trace context they pass on (see docs/operations.md,
/// "Tracing").
///
/// Every span of an execution has the execution's trace context as its parent: the `traceparent`
/// of the request that started it, stored with the execution, or else one derived from the
/// execution id (``TraceParent/derived(from:)``). Any process can thus put its part of the
/// work — a transition after a timer fired, a plugin call, a publish — in the execution's trace
/// without a span handed over between processes.
///
/// The tracer is injected (nothing global): without one (``off``) no span is made, and what is
/// passed on is the execution's trace context as it is (the same for every message and call of
/// the execution).
public struct ExecutionTracing: Sendable {
    /// `nil`: tracing is off.
    let tracer: (any Tracer)?

    public init(tracer: (any Tracer)?) {
        self.tracer = tracer
    }

    /// No spans; trace contexts are passed on unchanged.
    public static let off = ExecutionTracing(tracer: nil)

    public var enabled: Bool { tracer != nil }

    /// Starts a span whose parent is the remote context `parent`; `nil` when tracing is off.
    public func startSpan(
        _ name: String, parent: TraceParent?, kind: SpanKind = .internal, at start: Date? = nil,
        attributes: (inout SpanAttributes) -> Void = { _ in }
    ) -> (any Span)? {
        guard let tracer else { return nil }
        var context = ServiceContext.topLevel
        if let parent { tracer.extract(["traceparent": parent.header], into: &context, using: HeaderExtractor()) }
        let span: any Span =
            if let start {
                tracer.startSpan(name, context: context, ofKind: kind, at: DateInstant(start))
            } else {
                tracer.startSpan(name, context: context, ofKind: kind, at: DefaultTracerClock.now)
            }
        span.updateAttributes(attributes)
        return span
    }

    /// The headers that carry `span`'s context (`traceparent`, and `tracestate` when the tracer
    /// keeps one); without a span, `parent` as it is.
    public func headers(of span: (any Span)?, else parent: TraceParent?) -> [String: String] {
        guard let tracer, let span else { return parent.map { ["traceparent": $0.header] } ?? [:] }
        var headers: [String: String] = [:]
        tracer.inject(span.context, into: &headers, using: HeaderInjector())
        // Only a well-formed context leaves the process.
        guard let traceparent = headers["traceparent"].flatMap(TraceParent.init) else {
            return parent.map { ["traceparent": $0.header] } ?? [:]
        }
        var checked = ["traceparent": traceparent.header]
        if let state = headers["tracestate"], !state.isEmpty, state.utf8.count <= 512 { checked["tracestate"] = state }
        return checked
    }

    /// The trace context `span` passes on; `parent` without one.
    public func traceParent(of span: (any Span)?, else parent: TraceParent?) -> TraceParent? {
        // Without a span (tracing off) nothing is built: this runs for every plugin call.
        guard span != nil else { return parent }
        return headers(of: span, else: parent)["traceparent"].flatMap(TraceParent.init)
    }
}

extension Span {
    /// Ends the span with an error status when `failure` is set.
    func end(failure: String?, at end: Date? = nil) {
        if let failure { setStatus(SpanStatus(code: .error, message: failure)) }
        if let end { self.end(at: DateInstant(end)) } else { self.end() }
    }
}

/// A wall-clock time as a tracer instant, for spans of work whose times were recorded earlier
/// (a step attempt, told when it ends).
struct DateInstant: TracerInstant {
    let nanosecondsSinceEpoch: UInt64

    init(_ date: Date) {
        let nanoseconds = date.timeIntervalSince1970 * 1_000_000_000
        nanosecondsSinceEpoch = nanoseconds.isFinite && nanoseconds > 0 ? UInt64(min(nanoseconds, 1.8e19)) : 0
    }

    static func < (lhs: DateInstant, rhs: DateInstant) -> Bool { lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch }
}

/// Headers as a tracer injects them.
struct HeaderInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key.lowercased()] = value
    }
}

/// Headers as a tracer extracts them.
struct HeaderExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? {
        carrier[key.lowercased()]
    }
}
