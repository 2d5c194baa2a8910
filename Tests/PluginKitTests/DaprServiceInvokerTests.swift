import BudJSON
import BudPipelineHost
import DaprSidecar
import Foundation
import PipelineRuntime
import Testing

/// Service invocation through the test Dapr sidecar, as plugins make it through the host. (Kept out
/// of the runtime tests' process, whose timer-lag checks an in-process sidecar disturbed.)
@Suite("Dapr service invocation")
struct DaprServiceInvokerTests {
    static let executionID = "3f2b8c1e-5a4d-4e6f-9a7b-0c1d2e3f4a5b"

    static func invocation(_ method: String, _ path: String, body: String = "") throws -> ServiceInvocation {
        try ServiceInvocation(
            appID: "budapp", method: method, path: path, body: Array(body.utf8), pluginName: "test", executionID: executionID,
            stepID: "deploy")
    }

    @Test("a call that outlasts its timeout is an error, and the caller is not kept waiting")
    func slowAnswerTimesOut() async throws {
        let sidecar = DaprSidecar()
        sidecar.handleInvocations(of: "budapp") { _ in
            try? await Task.sleep(for: .seconds(20))
            return (200, [:])
        }
        let port = try await sidecar.start()
        let invoker = DaprServiceInvoker(endpoint: "http://127.0.0.1:\(port)", apiToken: nil)
        var slow = try Self.invocation("GET", "models/1")
        slow.timeout = .milliseconds(500)
        let started = ContinuousClock.now
        await #expect(throws: ServiceInvocationError.self) { try await invoker.invoke(slow) }
        #expect(ContinuousClock.now - started < .seconds(10), "cut off at its timeout, not kept until the answer")
        await sidecar.stop()
    }

    @Test("a call reaches the app with its method, path, query, body, token and trace context; any status is an answer")
    func callsReachTheApp() async throws {
        let sidecar = DaprSidecar()
        sidecar.handleInvocations(of: "budapp") { call in
            call.path.hasPrefix("missing") ? (404, ["detail": "no such model"]) : (200, ["data": ["workflow_id": "ext-1"]])
        }
        let port = try await sidecar.start()
        let invoker = DaprServiceInvoker(endpoint: "http://127.0.0.1:\(port)", apiToken: "secret")
        let answer = try await invoker.invoke(
            try Self.invocation("POST", "/models/deploy-workflow?user_id=u1", body: #"{"model_id": "m"}"#))
        #expect(answer.statusCode == 200)
        #expect(try JSONValue(parsing: String(decoding: answer.body, as: UTF8.self))["data"]?["workflow_id"] == "ext-1")
        let call = try #require(sidecar.invocations.first)
        #expect(call.method == "POST" && call.path == "models/deploy-workflow?user_id=u1" && call.body == ["model_id": "m"])
        #expect(call.apiToken == "secret")
        #expect(call.traceparent?.hasPrefix("00-3f2b8c1e5a4d4e6f9a7b0c1d2e3f4a5b-") == true)
        let missing = try await invoker.invoke(try Self.invocation("GET", "missing/1"))
        #expect(missing.statusCode == 404)
        #expect(!invoker.isOpen("budapp"), "an answer, even 404, is not a failure")
        await sidecar.stop()
    }

    @Test("a service that keeps failing opens its circuit: calls fail at once, then one trial closes it")
    func circuitBreaker() async throws {
        let sidecar = DaprSidecar()
        sidecar.handleInvocations(of: "budapp") { _ in (200, ["ok": true]) }
        let port = try await sidecar.start()
        await sidecar.stop()
        let invoker = DaprServiceInvoker(
            endpoint: "http://127.0.0.1:\(port)", apiToken: nil, defaultTimeout: .seconds(2), failureThreshold: 3,
            openInterval: .seconds(5))
        for _ in 0..<3 {
            await #expect(throws: ServiceInvocationError.self) { try await invoker.invoke(try Self.invocation("GET", "health")) }
        }
        #expect(invoker.isOpen("budapp"))
        // The service is back, but the open circuit refuses without trying.
        try await sidecar.start(port: port)
        let health = try Self.invocation("GET", "health")
        do {
            _ = try await invoker.invoke(health)
            Issue.record("an open circuit let a call through")
        } catch {
            #expect(error.message.contains("circuit open for budapp"))
        }
        #expect(sidecar.invocations.isEmpty)
        while invoker.isOpen("budapp") { try await Task.sleep(for: .milliseconds(50)) }
        let answer = try await invoker.invoke(try Self.invocation("GET", "health"))
        #expect(answer.statusCode == 200 && !invoker.isOpen("budapp"))
        #expect(sidecar.invocations.count == 1)
        await sidecar.stop()
    }
}
