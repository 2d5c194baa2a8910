public import BudJSON
public import BudPipelineHost
import Foundation
import PipelineEngine
import Synchronization
import Tracing

/// Carries out the service calls plugins make (`invoke_service`) through Dapr's service
/// invocation API: `{endpoint}/v1.0/invoke/{app}/method/{path}`, built from the invocation's
/// checked ``ServiceTarget`` and nothing else, so no call reaches another Dapr API.
///
/// Headers: `Content-Type: application/json` with a body; the API token as `dapr-api-token`, which
/// the local sidecar checks, and as `x-app-api-token`, which Dapr forwards to the called app; and
/// the W3C trace context of the call: with tracing on, of its client span (a child of the plugin
/// call's); else the execution's as it is (trace id = the execution id, unless the request that
/// started the execution carried one), so the called service's logs correlate with the execution.
/// A call without an answer (refused, timed out) is an error, which the plugin
/// sees as RETRYABLE_ERROR; any HTTP status is an answer, for the plugin to judge.
///
/// Each app has a circuit breaker: after `failureThreshold` calls in a row that got no answer or a
/// 5xx, calls to it fail at once for `openInterval`; then one call is let through, and its outcome
/// closes or reopens the circuit. A service that is down thus costs its callers no timeouts.
public final class DaprServiceInvoker: ServiceInvoker {
    public let endpoint: String
    /// Sent as `dapr-api-token` and `x-app-api-token`; never shown (see ``SecretText``).
    public let apiToken: SecretText?
    public let defaultTimeout: Duration
    public let failureThreshold: Int
    public let openInterval: Duration
    /// The largest answer a plugin receives; a larger one fails the call (16 MiB by default).
    public let maximumAnswerBytes: Int
    /// The spans of the calls (none when off).
    public let tracing: ExecutionTracing

    private struct Circuit {
        var consecutiveFailures = 0
        var openUntil: ContinuousClock.Instant?
        var trialInFlight = false
    }

    private let circuits = Mutex<[String: Circuit]>([:])

    public init(
        endpoint: String, apiToken: SecretText?, defaultTimeout: Duration = .seconds(30), failureThreshold: Int = 5,
        openInterval: Duration = .seconds(30), maximumAnswerBytes: Int = 16 << 20, tracing: ExecutionTracing = .off
    ) {
        self.tracing = tracing
        self.maximumAnswerBytes = max(1, maximumAnswerBytes)
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.apiToken = apiToken
        self.defaultTimeout = defaultTimeout
        self.failureThreshold = max(1, failureThreshold)
        self.openInterval = openInterval
    }

    public func invoke(_ invocation: ServiceInvocation) async throws(ServiceInvocationError) -> ServiceInvocationResponse {
        let parent = invocation.traceparent.flatMap(TraceParent.init) ?? invocation.executionID.flatMap { .derived(from: ExecutionID($0)) }
        let path = "/\(invocation.target.invocationPath)"
        let span = tracing.startSpan(invocation.method, parent: parent, kind: .client) { attributes in
            attributes["http.request.method"] = invocation.method
            attributes["url.path"] = String(path.prefix { $0 != "?" })
            attributes["peer.service"] = invocation.appID
            attributes["budpipeline.plugin.name"] = invocation.pluginName
            if let executionID = invocation.executionID { attributes["budpipeline.execution.id"] = executionID }
            if let stepID = invocation.stepID { attributes["budpipeline.step.id"] = stepID }
        }
        do {
            let response = try await invoke(invocation, trace: tracing.headers(of: span, else: parent))
            span?.attributes["http.response.status_code"] = response.statusCode
            if response.statusCode >= 500 { span?.attributes["error.type"] = "\(response.statusCode)" }
            span?.end(failure: response.statusCode >= 500 ? "answered \(response.statusCode)" : nil)
            return response
        } catch {
            span?.attributes["error.type"] = "unanswered"
            span?.recordError(error)
            span?.end(failure: error.message)
            throw error
        }
    }

    private func invoke(
        _ invocation: ServiceInvocation, trace: [String: String]
    ) async throws(ServiceInvocationError) -> ServiceInvocationResponse {
        try admit(invocation.appID)
        let url = "\(endpoint)/\(invocation.target.invocationPath)"
        let timeout = invocation.timeout ?? defaultTimeout
        var headers: [(String, String)] = []
        if !invocation.body.isEmpty { headers.append(("Content-Type", "application/json")) }
        if let apiToken {
            headers.append(("dapr-api-token", apiToken.revealed))
            headers.append(("x-app-api-token", apiToken.revealed))
        }
        headers += trace.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let answer: OutboundHTTP.Answer
        do {
            answer = try await OutboundHTTP.send(
                invocation.method, to: url, headers: headers, body: invocation.body.isEmpty ? nil : invocation.body, timeout: timeout,
                maximumAnswerBytes: maximumAnswerBytes)
        } catch {
            // A caller that gave up says nothing about the service: only its trial slot is freed.
            if Task.isCancelled {
                circuits.withLock { $0[invocation.appID]?.trialInFlight = false }
            } else {
                record(invocation.appID, failed: true)
            }
            throw ServiceInvocationError("\(invocation.appID) did not answer \(invocation.method) \(invocation.path): \(error)")
        }
        record(invocation.appID, failed: answer.status >= 500 || answer.status == 0)
        return ServiceInvocationResponse(statusCode: answer.status, body: answer.body)
    }

    /// Whether calls to `appID` currently fail at once.
    public func isOpen(_ appID: String) -> Bool {
        circuits.withLock { circuits in
            guard let until = circuits[appID]?.openUntil else { return false }
            return ContinuousClock.now < until
        }
    }

    private func admit(_ appID: String) throws(ServiceInvocationError) {
        let refusal = circuits.withLock { circuits -> String? in
            var circuit = circuits[appID] ?? Circuit()
            defer { circuits[appID] = circuit }
            guard let until = circuit.openUntil else { return nil }
            if ContinuousClock.now < until {
                return "circuit open for \(appID) after \(circuit.consecutiveFailures) failed calls in a row; calls resume shortly"
            }
            guard !circuit.trialInFlight else { return "circuit open for \(appID): a trial call is in flight" }
            circuit.trialInFlight = true
            return nil
        }
        if let refusal { throw ServiceInvocationError(refusal) }
    }

    private func record(_ appID: String, failed: Bool) {
        circuits.withLock { circuits in
            var circuit = circuits[appID] ?? Circuit()
            circuit.trialInFlight = false
            if failed {
                circuit.consecutiveFailures += 1
                if circuit.consecutiveFailures >= failureThreshold { circuit.openUntil = ContinuousClock.now + openInterval }
            } else {
                circuit = Circuit()
            }
            circuits[appID] = circuit
        }
    }
}
