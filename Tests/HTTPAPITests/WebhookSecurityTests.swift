import BudJSON
import Crypto
import Foundation
import Storage
import Testing
import _BudPipelineTestSupport

/// Webhooks (docs/security.md, "Webhooks"): credentials are never captured into parameters,
/// signed deliveries are checked and never accepted twice, updates keep what they do not
/// mention, and URLs never come from the caller's `Host` header.
@Suite("Webhook security")
struct WebhookSecurityTests {
    static let environment = [
        "BUDPIPELINE_PUBLIC_URL": "https://pipelines.example.com", "BUDPIPELINE_SENSITIVE_HEADERS": "X-Tenant-Key",
    ]

    static func pipeline(on server: some APIServing) async throws -> String {
        let dag: JSONValue = [
            "name": .string("hooked-\(UUID().uuidString.prefix(8))"),
            "steps": [["id": "a", "name": "A", "action": "log", "params": ["message": "hi"]]],
        ]
        let reply = try await server.send("POST", "/pipelines", json: ["dag": dag])
        return try #require(reply.json["id"]?.stringValue, "\(reply.text)")
    }

    /// `sha256=` and the HMAC-SHA256 of `<timestamp>.<body>`, computed here independently.
    static func signature(secret: String, timestamp: String, body: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Data("\(timestamp).\(body)".utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return "sha256=" + code.map { String(format: "%02x", $0) }.joined()
    }

    @Test("headers that carry credentials can never be captured into an execution's parameters", arguments: TestBackend.available)
    func sensitiveHeaders(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend, environment: Self.environment) { server in
            let pipeline = try await Self.pipeline(on: server)
            for header in ["Authorization", "x-webhook-secret", "Cookie", "dapr-api-token", "X-Api-Key", "X-Refresh-Token", "X-Tenant-Key"]
            {
                let reply = try await server.send(
                    "POST", "/webhooks",
                    json: ["workflow_id": .string(pipeline), "name": "grab", "config": ["headers_to_include": [.string(header)]]])
                #expect(reply.status == 422 && reply.json["code"] == "REQUEST_INVALID", "\(header): \(reply.status) \(reply.text)")
            }
            let created = try await server.send(
                "POST", "/webhooks",
                json: ["workflow_id": .string(pipeline), "name": "ok", "config": ["headers_to_include": ["X-Request-Source"]]])
            let id = try #require(created.json["id"]?.stringValue)
            let secret = try #require(created.json["secret"]?.stringValue)
            let update = try await server.send("PUT", "/webhooks/\(id)", json: ["config": ["headers_to_include": ["authorization"]]])
            #expect(update.status == 422)
            let triggered = try await server.send(
                "POST", "/trigger/\(id)", body: "{}",
                headers: ["X-Webhook-Secret": secret, "X-Request-Source": "ci", "Authorization": "Bearer caller-token"],
                authenticated: false)
            #expect(triggered.status == 200, "\(triggered.text)")
            let execution = try #require(triggered.json["execution_id"]?.stringValue)
            let stored = try await server.send("GET", "/executions/\(execution)")
            #expect(stored.text.contains("header_x_request_source"))
            #expect(!stored.text.contains("caller-token") && !stored.text.contains(secret))

            // A row stored before the refusal existed: the header is skipped when the webhook fires.
            var legacy = try #require(try await server.database.store.triggers.find(WebhookRecord.self, id: id))
            legacy.headersToInclude = ["Authorization", "X-Request-Source"]
            _ = try await server.database.store.triggers.update(legacy, expectedVersion: legacy.version)
            let again = try await server.send(
                "POST", "/trigger/\(id)", body: "{}",
                headers: ["X-Webhook-Secret": secret, "X-Request-Source": "ci", "Authorization": "Bearer caller-token"],
                authenticated: false)
            let second = try #require(again.json["execution_id"]?.stringValue, "\(again.text)")
            let legacyRun = try await server.send("GET", "/executions/\(second)")
            #expect(legacyRun.text.contains("header_x_request_source") && !legacyRun.text.contains("caller-token"))
        }
    }

    @Test("a partial update keeps what it does not mention; null removes the allow-list", arguments: TestBackend.available)
    func partialUpdates(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend, environment: Self.environment) { server in
            let pipeline = try await Self.pipeline(on: server)
            let created = try await server.send(
                "POST", "/webhooks",
                json: [
                    "workflow_id": .string(pipeline), "name": "listed",
                    "config": ["allowed_ips": ["10.1.2.3"], "headers_to_include": ["X-Request-Source"]],
                ])
            let id = try #require(created.json["id"]?.stringValue)
            let renamed = try await server.send("PUT", "/webhooks/\(id)", json: ["name": "renamed", "config": ["require_secret": true]])
            #expect(renamed.json["config"]?["allowed_ips"] == ["10.1.2.3"])
            #expect(renamed.json["config"]?["headers_to_include"] == ["X-Request-Source"])
            #expect(renamed.json["secret"] == .null, "the mode did not change, so neither did the secret")
            let refused = try await server.send("POST", "/trigger/\(id)", headers: ["X-Webhook-Secret": "x"], authenticated: false)
            #expect(refused.status == 401)
            let cleared = try await server.send("PUT", "/webhooks/\(id)", json: ["config": ["allowed_ips": nil]])
            #expect(cleared.json["config"]?["allowed_ips"] == .null)
            #expect(cleared.json["config"]?["headers_to_include"] == ["X-Request-Source"])
            let bad = try await server.send("PUT", "/webhooks/\(id)", json: ["config": ["allowed_ips": ["not an address"]]])
            #expect(bad.status == 422)
        }
    }

    @Test("webhook URLs come from the configured public URL, never from the Host header")
    func endpointURL() async throws {
        try await InProcessAPIServer.with(.sqlite, environment: Self.environment) { server in
            let pipeline = try await Self.pipeline(on: server)
            let created = try await server.send(
                "POST", "/webhooks", json: ["workflow_id": .string(pipeline), "name": "url"], headers: ["Host": "evil.example"])
            let id = try #require(created.json["id"]?.stringValue)
            #expect(created.json["endpoint_url"]?.stringValue == "https://pipelines.example.com/trigger/\(id)")
            let listed = try await server.send("GET", "/webhooks", headers: ["Host": "evil.example"])
            #expect(!listed.text.contains("evil.example"))
        }
        try await InProcessAPIServer.with(.sqlite) { server in
            let pipeline = try await Self.pipeline(on: server)
            let created = try await server.send(
                "POST", "/webhooks", json: ["workflow_id": .string(pipeline), "name": "url"], headers: ["Host": "evil.example"])
            #expect(created.json["endpoint_url"]?.stringValue?.hasPrefix("http://127.0.0.1:") == true, "\(created.text)")
        }
    }

    @Test(
        "signed deliveries: a good signature runs once; wrong, stale, unsigned and replayed ones do not", arguments: TestBackend.available)
    func signatures(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend, environment: Self.environment) { server in
            let pipeline = try await Self.pipeline(on: server)
            let created = try await server.send(
                "POST", "/webhooks",
                json: [
                    "workflow_id": .string(pipeline), "name": "signed",
                    "config": ["auth_mode": "signature", "signature_tolerance_seconds": 60],
                ])
            #expect(created.status == 201 && created.json["config"]?["auth_mode"] == "signature")
            let id = try #require(created.json["id"]?.stringValue)
            let secret = try #require(created.json["secret"]?.stringValue)
            let body = #"{"params": {"ref": "main"}}"#
            let now = String(Int(Date().timeIntervalSince1970))
            func deliver(timestamp: String = now, signature: String? = nil, delivery: String?, extra: [String: String] = [:]) async throws
                -> APIReply
            {
                var headers = ["X-Webhook-Timestamp": timestamp].merging(extra) { _, new in new }
                headers["X-Webhook-Signature"] = signature ?? Self.signature(secret: secret, timestamp: timestamp, body: body)
                if let delivery { headers["X-Webhook-Delivery"] = delivery }
                return try await server.send("POST", "/trigger/\(id)", body: body, headers: headers, authenticated: false)
            }
            let first = try await deliver(delivery: "d-1")
            #expect(first.status == 200, "\(first.text)")
            let replay = try await deliver(delivery: "d-1")
            #expect(replay.status == 409 && replay.json["code"] == "WEBHOOK_REPLAY")
            // The captured request under a new delivery id, however its signature is spelt, is
            // still a replay: the signature itself is remembered.
            let renamed = try await deliver(delivery: "d-1-again")
            #expect(renamed.status == 409 && renamed.json["code"] == "WEBHOOK_REPLAY", "\(renamed.text)")
            let respelt = Self.signature(secret: secret, timestamp: now, body: body).dropFirst("sha256=".count).uppercased()
            let respeltReply = try await deliver(signature: String(respelt), delivery: "d-1-third")
            #expect(respeltReply.status == 409 && respeltReply.json["code"] == "WEBHOOK_REPLAY", "\(respeltReply.text)")
            // Signed afresh, the same body is a new delivery; the refused ids above were not kept.
            let resigned = try await deliver(timestamp: String(Int(now)! - 1), delivery: "d-1-again")
            #expect(resigned.status == 200, "\(resigned.text)")
            let unnamed = try await deliver(delivery: nil)
            #expect(unnamed.status == 401 && unnamed.json["code"] == "INVALID_SIGNATURE")
            let wrong = try await deliver(signature: Self.signature(secret: "not-the-secret", timestamp: now, body: body), delivery: "d-2")
            #expect(wrong.status == 401 && wrong.json["code"] == "INVALID_SIGNATURE")
            let stale = String(Int(Date().timeIntervalSince1970) - 3600)
            let old = try await deliver(timestamp: stale, delivery: "d-3")
            #expect(old.status == 401 && old.json["message"]?.stringValue?.contains("too far") == true)
            let tampered = try await server.send(
                "POST", "/trigger/\(id)", body: #"{"params": {"ref": "evil"}}"#,
                headers: [
                    "X-Webhook-Timestamp": now, "X-Webhook-Signature": Self.signature(secret: secret, timestamp: now, body: body),
                    "X-Webhook-Delivery": "d-4",
                ], authenticated: false)
            #expect(tampered.status == 401)
            // The shared secret is not a signature.
            let shared = try await server.send(
                "POST", "/trigger/\(id)", body: body, headers: ["X-Webhook-Secret": secret], authenticated: false)
            #expect(shared.status == 401)
            let runs = try await server.send("GET", "/executions?workflow_id=\(pipeline)").json["pagination"]?["total_count"]
            #expect(runs == 2)
        }
    }

    @Test("raising the tolerance later does not make a forgotten signed request acceptable again")
    func replaysOutliveTheTolerance() async throws {
        try await InProcessAPIServer.with(.sqlite, environment: Self.environment) { server in
            let pipeline = try await Self.pipeline(on: server)
            let created = try await server.send(
                "POST", "/webhooks",
                json: [
                    "workflow_id": .string(pipeline), "name": "short",
                    "config": ["auth_mode": "signature", "signature_tolerance_seconds": 3],
                ])
            let id = try #require(created.json["id"]?.stringValue)
            let secret = try #require(created.json["secret"]?.stringValue)
            let body = "{}"
            func deliver(_ timestamp: String, _ delivery: String) async throws -> Int {
                try await server.send(
                    "POST", "/trigger/\(id)", body: body,
                    headers: [
                        "X-Webhook-Timestamp": timestamp,
                        "X-Webhook-Signature": Self.signature(secret: secret, timestamp: timestamp, body: body),
                        "X-Webhook-Delivery": delivery,
                    ], authenticated: false
                ).status
            }
            let captured = String(Int(Date().timeIntervalSince1970))
            #expect(try await deliver(captured, "r-1") == 200)
            // Past twice the tolerance, another delivery (which forgets old ones) ...
            try await Task.sleep(for: .milliseconds(6500))
            #expect(try await deliver(String(Int(Date().timeIntervalSince1970)), "r-2") == 200)
            // ... then the tolerance raised: the captured request is still a replay.
            let raised = try await server.send("PUT", "/webhooks/\(id)", json: ["config": ["signature_tolerance_seconds": 3600]])
            #expect(raised.status == 200, "\(raised.text)")
            #expect(try await deliver(captured, "r-3") == 409)
        }
    }

    @Test("twenty replays of one delivery start one execution, whatever the mode", arguments: TestBackend.available)
    func replays(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend, environment: Self.environment) { server in
            let pipeline = try await Self.pipeline(on: server)
            let created = try await server.send("POST", "/webhooks", json: ["workflow_id": .string(pipeline), "name": "shared"])
            let id = try #require(created.json["id"]?.stringValue)
            let secret = try #require(created.json["secret"]?.stringValue)
            let replies = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        try await server.send(
                            "POST", "/trigger/\(id)", body: "{}", headers: ["X-Webhook-Secret": secret, "X-Webhook-Delivery": "same"],
                            authenticated: false
                        ).status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(replies.filter { $0 == 200 }.count == 1, "\(replies)")
            #expect(replies.filter { $0 == 409 }.count == 19, "\(replies)")
            let runs = try await server.send("GET", "/executions?workflow_id=\(pipeline)").json["pagination"]?["total_count"]
            #expect(runs == 1)
        }
    }
}
