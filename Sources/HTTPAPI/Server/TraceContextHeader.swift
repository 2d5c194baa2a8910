import HTTPTypes
import Hummingbird
import PipelineRuntime

extension Request {
    /// The request's W3C trace context, which an execution it starts joins: its one valid
    /// `traceparent` header; a missing, repeated or malformed one is ignored (see
    /// ``TraceParent/init(_:)``), and the value never reaches a log or an answer as sent.
    var traceParent: TraceParent? {
        let values = headers[values: .traceparent]
        guard values.count == 1, let value = values.first else { return nil }
        return TraceParent(value)
    }
}

extension HTTPField.Name {
    /// W3C trace context's header.
    static let traceparent = HTTPField.Name("traceparent")!
}
