import BudJSON
import BudPipelineHost
import Foundation
import InMemoryLogging
import Logging
import PluginSchema
import Testing
import _BudPipelineTestSupport

/// `invoke_service` through the host, from a real dlopen'ed plugin (the `service_probe` fixture)
/// that hands the host exactly the bytes a test chooses: only method paths under the target
/// app's invocation API reach the invoker; everything else is refused to the plugin with
/// INVALID_ARGUMENT and a message, and logged with the plugin's name.
@Suite("Service calls the host refuses")
struct ServiceCallRefusalTests {
    /// What the probe saw: `invoke_service`'s status, the HTTP status and the response body.
    struct ProbeResult {
        let status: Int
        let httpStatus: Int
        let body: String
    }

    static func hex(_ text: String) -> JSONValue {
        .string(text.utf8.map { String(format: "%02x", $0) }.joined())
    }

    static func probe(_ host: PluginHost, app: String = "budcluster", method: String = "GET", path: String) async throws -> ProbeResult {
        let request = ExecuteRequest(
            action: "service_probe", executionID: "exec-1", stepID: "step-a", idempotencyKey: "exec-1/step-a/0",
            params: ["app_hex": hex(app), "method_hex": hex(method), "path_hex": hex(path)])
        let outcome = try await host.execute(request, context: PluginCallContext(executionID: "exec-1", stepID: "step-a"))
        guard case .completed(let outputs) = outcome else { throw FixtureError("the probe did not complete: \(outcome)") }
        let bodyHex = Array((outputs["body_hex"]?.stringValue ?? "").utf8)
        let body = stride(from: 0, to: bodyHex.count - 1, by: 2).compactMap {
            UInt8(String(decoding: bodyHex[$0..<$0 + 2], as: UTF8.self), radix: 16)
        }
        return ProbeResult(
            status: outputs["service_status"]?.intValue ?? -1, httpStatus: outputs["http_status"]?.intValue ?? -1,
            body: String(decoding: body, as: UTF8.self))
    }

    static let hostilePaths: [(path: String, problem: String)] = [
        ("../../../../secrets/kubernetes/db-password?x=", "'..' segment"), ("cluster/../../../../v1.0/state/statestore/k", "'..' segment"),
        ("%2e%2e/%2e%2e/secrets/kubernetes/x", "'..' segment"), ("cluster/%2E%2E%2F%2E%2E%2Fsecrets", "'..' segment"),
        ("cluster/..%2f..%2fsecrets", "'..' segment"), ("cluster/%252e%252e/%252e%252e/secrets", "'..' segment"),
        ("cluster/c1%3Fx=1/health", "'?'"), ("cluster/c1#x", "fragment"), ("cluster/c1%23x", "'#'"),
        ("cluster\\..\\..\\secrets", "backslash"), ("http://169.254.169.254/latest", "absolute URL"),
        ("//evil.example/x", "empty segment"), ("cluster/c1\u{0}/health", "control character (0x0)"),
        ("cluster/c1%00/health", "control character (0x0)"), ("cluster/c1\r\nX-Injected: 1", "control character (0xD)"),
        ("cluster/c1?checks=%0d%0a", "query holds a control character"), ("cluster//health", "empty segment"),
    ]

    @Test("hostile paths never reach the invoker: the plugin gets INVALID_ARGUMENT and why, the log names the plugin")
    func hostilePathsAreRefused() async throws {
        let invoker = RecordingServiceInvoker { _ throws(ServiceInvocationError) in ServiceInvocationResponse(statusCode: 200, body: []) }
        let file = try await Libraries.fixture("service_probe")
        try await TestHost.with(.init(files: [file], invoker: invoker)) { loaded in
            for (path, problem) in Self.hostilePaths {
                let result = try await Self.probe(loaded.host, path: path)
                #expect(result.status == 6, "\(path.debugDescription): INVALID_ARGUMENT, got \(result.status)")
                #expect(result.httpStatus == 0)
                #expect(
                    result.body.hasPrefix("service call refused: ") && result.body.contains(problem),
                    "\(path.debugDescription): \(result.body)")
            }
            #expect(invoker.invocations.isEmpty, "nothing was sent: \(invoker.invocations.map(\.path))")
            let refusals = loaded.logs.entries.filter { $0.message.description == "service call refused" }
            #expect(refusals.count == Self.hostilePaths.count)
            #expect(refusals.allSatisfy { $0.level == .warning && $0.metadata["plugin"] == "service_probe" })
            #expect(refusals.allSatisfy { $0.metadata["execution_id"] == "exec-1" && $0.metadata["step_id"] == "step-a" })
            #expect(refusals.first?.metadata["reason"]?.description.contains("'..' segment") == true)
        }
    }

    @Test("bad app ids and methods are refused the same way")
    func badAppIDsAndMethods() async throws {
        let invoker = RecordingServiceInvoker { _ throws(ServiceInvocationError) in ServiceInvocationResponse(statusCode: 200, body: []) }
        let file = try await Libraries.fixture("service_probe")
        try await TestHost.with(.init(files: [file], invoker: invoker)) { loaded in
            for app in ["..", "budapp/method/x", "budapp?x", "../v1.0/secrets", "bud app"] {
                let result = try await Self.probe(loaded.host, app: app, path: "health")
                #expect(result.status == 6 && result.body.contains("is not a Dapr app id"), "\(app): \(result.body)")
            }
            let method = try await Self.probe(loaded.host, method: "GET /v1.0/secrets HTTP/1.1\r\nX:", path: "health")
            #expect(method.status == 6 && method.body.contains("HTTP method"), "\(method.body)")
            #expect(invoker.invocations.isEmpty)
        }
    }

    @Test("a method path under the app passes, exactly as the plugin wrote it")
    func allowedPathsPass() async throws {
        let invoker = RecordingServiceInvoker { _ throws(ServiceInvocationError) in
            ServiceInvocationResponse(statusCode: 200, body: Array(#"{"ok":true}"#.utf8))
        }
        let file = try await Libraries.fixture("service_probe")
        try await TestHost.with(.init(files: [file], invoker: invoker)) { loaded in
            let result = try await Self.probe(loaded.host, method: "get", path: "/cluster/c%2F1/health?checks=nodes%2Capi")
            #expect(result.status == 0 && result.httpStatus == 200 && result.body == #"{"ok":true}"#)
            let call = try #require(invoker.invocations.first)
            #expect(call.appID == "budcluster" && call.method == "GET" && call.path == "cluster/c%2F1/health?checks=nodes%2Capi")
            #expect(call.target.invocationPath == "v1.0/invoke/budcluster/method/cluster/c%2F1/health?checks=nodes%2Capi")
            #expect(!loaded.logs.entries.contains { $0.message.description == "service call refused" })
        }
    }
}
