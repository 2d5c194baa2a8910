import BudPipelineHost
import Foundation
import Testing

/// What a plugin may pass as `invoke_service`'s app id and path: only a method path under the
/// target app's invocation API.
@Suite("Service call targets")
struct ServiceTargetTests {
    @Test(
        "method paths under the app are taken as written",
        arguments: [
            ("models/42", "models/42", nil), ("/models/deploy-workflow", "models/deploy-workflow", nil),
            ("models/42?force=false&user_id=u-1", "models/42", "force=false&user_id=u-1"),
            ("cluster/c%2F1/health?checks=nodes%2Capi", "cluster/c%2F1/health", "checks=nodes%2Capi"),
            ("models/50%25", "models/50%25", nil), ("a/b:c/@d/~e/-f_.g/h!$&'()*+,;=", "a/b:c/@d/~e/-f_.g/h!$&'()*+,;=", nil),
            ("models/...", "models/...", nil), ("models/..a", "models/..a", nil), ("q?a=/?b", "q", "a=/?b"), ("items?", "items", nil),
        ] as [(String, String, String?)])
    func accepted(path: String, methodPath: String, query: String?) throws {
        let target = try ServiceTarget(appID: "budapp", path: path)
        #expect(target.methodPath == methodPath && target.query == query)
        #expect(target.invocationPath == "v1.0/invoke/budapp/method/\(target.pathWithQuery)")
    }

    @Test(
        "paths that would leave the app's methods, inject a query or fragment, or smuggle bytes are refused",
        arguments: [
            // Traversal, plain and percent-encoded (any case, single or double, partly encoded).
            ("../../../../secrets/kubernetes/db-password?x=", "'..' segment"), ("models/../../state/store/k", "'..' segment"),
            ("..", "'..' segment"), ("models/..", "'..' segment"), ("./models", "'.' segment"), ("models/./x", "'.' segment"),
            ("%2e%2e/secrets/x", "'..' segment"), ("%2E%2E%2Fsecrets", "'..' segment"), ("models/..%2fsecrets", "'..' segment"),
            ("models/%2e./x", "'..' segment"), ("models/.%2E/x", "'..' segment"), ("models/%252e%252e/x", "'..' segment"),
            ("models/%25252e%25252e%25252fx", "'..' segment"), ("models/..;x/y", "'..' segment"), ("models/%2e;x/y", "'.' segment"),
            // Empty segments.
            ("", "empty"), ("/", "empty"), ("//evil.example/x", "empty segment"), ("models//42", "empty segment"),
            ("models/", "empty segment"), ("models/%2F", "empty segment"),
            // Query and fragment smuggled through the path.
            ("models/42#frag", "fragment"), ("models/42%23frag", "'#'"), ("models/42%3Fx=1", "'?'"), ("models/42%253Fx=1", "'?'"),
            ("models?x=1#frag", "fragment"),
            // Backslashes.
            ("models\\..\\secrets", "backslash"), ("models/%5C..%5Csecrets", "backslash"), ("models/%255C", "backslash"),
            // Absolute URLs.
            ("http://evil.example/x", "absolute URL"), ("https:evil", "absolute URL"), ("http%3A%2F%2Fevil.example%2Fx", "absolute URL"),
            ("/http://evil", "absolute URL"),
            // Control characters, raw or encoded, in the path or the query.
            ("models/4\u{0}2", "control character (0x0)"), ("models/42%00", "control character (0x0)"),
            ("models/42\r\nHost: evil", "control character (0xD)"), ("models/42%0d%0aX:y", "control character (0xD)"),
            ("models/42?x=%0d%0a", "query holds a control character"), ("models/42?x=\u{7F}", "control character (0x7F)"),
            ("models/42%7F", "control character (0x7F)"),
            // Characters that must be encoded, and broken escapes.
            ("models/4 2", "a space, which must be percent-encoded"), ("models/é", "non-ASCII byte"), ("models/<x>", "'<'"),
            ("models/%zz", "'%' that does not start"), ("models/%4", "'%' that does not start"), ("models?x=%", "'%' that does not start"),
            ("models?x=a b", "a space"), ("models/" + String(repeating: "a", count: 8200), "longer than 8192 bytes"),
        ])
    func refused(path: String, problem: String) {
        do {
            let target = try ServiceTarget(appID: "budcluster", path: path)
            Issue.record("\(path.debugDescription) was accepted as \(target.invocationPath)")
        } catch {
            #expect(error.message.contains(problem), "\(path.debugDescription): \(error.message)")
        }
    }

    @Test("a path encoded more times over than the host decodes is refused")
    func tooManyEncodings() {
        var segment = ".."
        for _ in 0..<10 { segment = segment.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: ".", with: "%2E") }
        #expect(throws: ServiceRequestRefusal.self) { try ServiceTarget(appID: "budapp", path: "models/\(segment)") }
    }

    @Test(
        "app ids are Dapr app ids",
        arguments: [
            ("budapp", true), ("bud-app_2", true), ("budapp.production", true), ("A1", true), ("", false), (".", false),
            ("..", false), ("../secrets", false), ("budapp/method", false), ("budapp?x", false), ("-budapp", false),
            ("budapp.", false), ("bud app", false), ("bud%2Fapp", false), (String(repeating: "a", count: 254), false),
        ])
    func appIDs(appID: String, accepted: Bool) {
        let target = try? ServiceTarget(appID: appID, path: "health")
        #expect((target != nil) == accepted, "\(appID)")
    }

    @Test("methods are letters only and upper-cased")
    func methods() throws {
        let invocation = try ServiceInvocation(appID: "budapp", method: "patch", path: "models/1", pluginName: "test")
        #expect(invocation.method == "PATCH" && invocation.appID == "budapp" && invocation.path == "models/1")
        for method in ["", "GET /v1.0/secrets HTTP/1.1\r\n", "GE T", "DELETEEEEEEEEEEEEE", "P0ST"] {
            #expect(throws: ServiceRequestRefusal.self, "\(method.debugDescription)") {
                try ServiceInvocation(appID: "budapp", method: method, path: "models/1", pluginName: "test")
            }
        }
    }
}
