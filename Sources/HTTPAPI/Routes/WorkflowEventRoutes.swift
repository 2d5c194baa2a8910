import BudJSON
import HTTPTypes
import Hummingbird
import InboundEvents
import PipelineEngine
import PipelineRuntime

/// `POST /workflow-events` (Dapr delivers `budpipelineEvents` here) and `GET /dapr/subscribe`.
///
/// Deliveries must carry `dapr-api-token` equal to `APP_API_TOKEN`; without a configured token
/// every delivery is refused (403, `detail` saying why). The answer tells Dapr what to do with
/// the message: `SUCCESS` (handled, or not for us), `RETRY` (deliver it again later) or `DROP`
/// (it can never be handled: Dapr moves it to the dead-letter topic). Next to `status` the body
/// says what the delivery did: `routed`, `step_completed` and `triggers` (see docs/compatibility.md).
struct WorkflowEventRoutes: Sendable {
    let runtime: ExecutionRuntime
    let configuration: APIConfiguration

    func receive(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        try authorize(request)
        let body: JSONValue
        do {
            let bytes = try await request.body.collect(upTo: configuration.maximumBodySize)
            body = try JSONValue(parsing: String(buffer: bytes))
        } catch {
            return Self.answer("DROP", message: "The delivery is not JSON: \(error)")
        }
        do throws(InboundEventError) {
            let event = try InboundEvent(delivery: body)
            let report = try await runtime.handle(event)
            var answer: JSONObject = [
                "status": "SUCCESS",
                "routed": .bool(report.routed),
                "step_completed": .bool(report.stepCompleted),
                "triggers": report.triggers.map { .array($0.map(Self.firing)) } ?? .null,
            ]
            if report.duplicate { answer["duplicate"] = true }
            if report.parked { answer["parked"] = true }
            return JSONResponse(.object(answer))
        } catch {
            switch error {
            case .malformed(let message): return Self.answer("DROP", message: message)
            case .retryLater(let message): return Self.answer("RETRY", message: message)
            }
        }
    }

    /// The subscription Dapr reads at start-up when no declarative one is configured.
    func subscriptions(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        JSONResponse([
            [
                "pubsubname": .string(configuration.pubsubName), "topic": .string(configuration.eventsTopic),
                "route": "/workflow-events", "deadLetterTopic": "poisonMessages",
            ]
        ])
    }

    private func authorize(_ request: Request) throws {
        guard let expected = configuration.appAPIToken else {
            throw APIError(.forbidden, code: "INTERNAL_AUTH_NOT_CONFIGURED", message: "Forbidden - Internal auth not configured")
        }
        let given = request.headers[HTTPField.Name("dapr-api-token")!] ?? ""
        guard WebhookRoutes.constantTimeEquals(given, expected) else {
            throw APIError(.forbidden, code: "INVALID_INTERNAL_TOKEN", message: "Forbidden - Invalid internal token")
        }
    }

    private static func answer(_ status: String, message: String) -> JSONResponse {
        JSONResponse(["status": .string(status), "routed": false, "step_completed": false, "message": .string(message)])
    }

    private static func firing(_ firing: TriggerFiring) -> JSONValue {
        var object: JSONObject = [
            "trigger_id": .string(firing.triggerID), "trigger_name": .string(firing.triggerName),
            "workflow_id": .string(firing.pipelineID.rawValue),
            "execution_id": firing.executionID.map { .string($0.rawValue) } ?? .null,
            "status": .string(firing.executionID == nil ? "failed" : "triggered"),
        ]
        if let error = firing.error { object["error"] = .string(error) }
        return .object(object)
    }
}
