import BudJSON
import Foundation
import Testing
import _BudPipelineTestSupport

/// Rate limits against a real `budpipeline serve` over loopback, with budgets small enough that a
/// test spends them in a few requests (and a minute-long window, so none comes back meanwhile).
@Suite("Rate limits", .serialized)
struct RateLimitTests {
    private static func user() -> [String: String] { ["X-User-ID": UUID().uuidString] }

    private static let run: JSONValue = [
        "pipeline_definition": ["name": "limited", "steps": [["id": "a", "name": "A", "action": "log", "params": ["message": "hi"]]]]
    ]

    /// Expects a 429 with what the SDK and budapp read (`Retry-After`, the `X-RateLimit-*` headers,
    /// `error`, `message`, `retry_after_seconds`) beside the API's `code` and `detail`; returns its
    /// wait.
    @discardableResult
    private static func expectRefused(_ reply: APIServerProcess.Reply, limit: Int, sourceLocation: SourceLocation = #_sourceLocation)
        -> Int?
    {
        #expect(reply.status == 429, "\(reply.status) \(reply.text)", sourceLocation: sourceLocation)
        let wait = reply.headers["retry-after"].flatMap { Int($0) }
        #expect(wait.map { (1...60).contains($0) } == true, "Retry-After: \(reply.headers)", sourceLocation: sourceLocation)
        #expect(reply.headers["x-ratelimit-limit"] == String(limit), sourceLocation: sourceLocation)
        #expect(reply.headers["x-ratelimit-remaining"] == "0", sourceLocation: sourceLocation)
        #expect(reply.headers["x-ratelimit-reset"].flatMap { Int($0) } != nil, sourceLocation: sourceLocation)
        let body = reply.json
        #expect(
            body["error"] == "TooManyRequests" && body["message"] == "Rate limit exceeded. Please slow down.",
            sourceLocation: sourceLocation)
        #expect(body["retry_after_seconds"]?.intValue == wait, sourceLocation: sourceLocation)
        #expect(
            body["code"] == "RATE_LIMITED" && body["detail"] == "Rate limit exceeded. Please slow down.", sourceLocation: sourceLocation)
        return wait
    }

    @Test("a user spends its read and start budgets apart; others, and the service caller by default, are not affected")
    func perUser() async throws {
        let environment = ["BUDPIPELINE_RATE_LIMIT_READS_PER_MINUTE": "3", "BUDPIPELINE_RATE_LIMIT_STARTS_PER_MINUTE": "2"]
        try await APIServerProcess.with(.sqlite, environment: environment) { server in
            let ann = Self.user()
            var remaining: [String?] = []
            for path in ["/executions", "/api/v1/executions", "/budpipeline/executions/\(UUID().uuidString)"] {
                let reply = try await server.send("GET", path, headers: ann)
                #expect(reply.status == 200 || reply.status == 404, "\(path): \(reply.text)")
                #expect(reply.headers["x-ratelimit-limit"] == "3")
                #expect(reply.headers["x-ratelimit-reset"].flatMap { Int($0) }.map { (1...60).contains($0) } == true)
                remaining.append(reply.headers["x-ratelimit-remaining"])
            }
            #expect(remaining == ["2", "1", "0"], "every alias spends the same budget; a 404 counts and is told too")
            Self.expectRefused(try await server.send("GET", "/executions", headers: ann), limit: 3)
            Self.expectRefused(try await server.send("GET", "/executions?page=2", headers: ann), limit: 3)

            let bob = Self.user()
            let other = try await server.send("GET", "/executions", headers: bob)
            #expect(other.status == 200 && other.headers["x-ratelimit-remaining"] == "2")
            for _ in 0..<6 {
                let service = try await server.send("GET", "/executions")
                #expect(service.status == 200 && service.headers["x-ratelimit-limit"] == nil)
            }
            let invalidUser = try await server.send("GET", "/executions", headers: ["X-User-ID": "not-a-uuid"])
            // Refused by the route (never read as the service), and not counted against anyone.
            #expect(invalidUser.status == 400 && invalidUser.headers["x-ratelimit-limit"] == nil, "an invalid user id is no user")
            #expect(try await server.send("GET", "/pipelines", headers: ann).status == 200, "other routes are not limited")

            // Starts: a budget of their own, the reads' refusal notwithstanding.
            let first = try await server.send("POST", "/executions/run", json: Self.run, headers: ann)
            #expect(first.status == 201 && first.headers["x-ratelimit-limit"] == "2" && first.headers["x-ratelimit-remaining"] == "1")
            let retry = try await server.send("POST", "/executions/\(UUID().uuidString)/retry", headers: ann)
            #expect(retry.status == 404 && retry.headers["x-ratelimit-remaining"] == "0")
            Self.expectRefused(try await server.send("POST", "/budpipeline/run", json: Self.run, headers: ann), limit: 2)
            Self.expectRefused(try await server.send("POST", "/budpipeline/\(UUID().uuidString)/execute", headers: ann), limit: 2)
            #expect(try await server.send("POST", "/executions/run", json: Self.run, headers: bob).status == 201)
            for _ in 0..<4 { #expect(try await server.send("POST", "/executions/run", json: Self.run).status == 201) }
        }
    }

    @Test("the webhook trigger is limited by peer address, whatever user it names; X-Forwarded-For only behind trusted proxies")
    func webhookByAddress() async throws {
        let environment = ["BUDPIPELINE_RATE_LIMIT_STARTS_PER_MINUTE": "2"]
        try await APIServerProcess.with(.sqlite, environment: environment) { server in
            for _ in 0..<2 {
                let reply = try await server.send("POST", "/trigger/\(UUID().uuidString)", headers: Self.user())
                #expect(reply.status == 404 && reply.headers["x-ratelimit-limit"] == "2")
            }
            let headers = Self.user().merging(["X-Forwarded-For": "203.0.113.\(Int.random(in: 1...200))"]) { $1 }
            Self.expectRefused(try await server.send("POST", "/api/v1/trigger/\(UUID().uuidString)", headers: headers), limit: 2)
            let other = try await server.send("POST", "/executions/run", json: Self.run, headers: Self.user())
            #expect(other.status == 201, "users keep their own start budgets")
        }
        let behindProxy = environment.merging(["BUDPIPELINE_RATE_LIMIT_PROXY_HOPS": "1"]) { $1 }
        try await APIServerProcess.with(.sqlite, environment: behindProxy) { server in
            let client = ["X-Forwarded-For": "198.51.100.20, 203.0.113.5"]
            for _ in 0..<2 { #expect(try await server.send("POST", "/trigger/\(UUID().uuidString)", headers: client).status == 404) }
            Self.expectRefused(try await server.send("POST", "/trigger/\(UUID().uuidString)", headers: client), limit: 2)
            let another = try await server.send("POST", "/trigger/\(UUID().uuidString)", headers: ["X-Forwarded-For": "203.0.113.6"])
            #expect(another.status == 404 && another.headers["x-ratelimit-remaining"] == "1")
        }
    }

    @Test("BUDPIPELINE_RATE_LIMIT_SERVICE=true limits the service caller as one client")
    func serviceCaller() async throws {
        let environment = ["BUDPIPELINE_RATE_LIMIT_READS_PER_MINUTE": "2", "BUDPIPELINE_RATE_LIMIT_SERVICE": "true"]
        try await APIServerProcess.with(.sqlite, environment: environment) { server in
            for expected in ["1", "0"] {
                let reply = try await server.send("GET", "/executions")
                #expect(reply.status == 200 && reply.headers["x-ratelimit-remaining"] == expected)
            }
            Self.expectRefused(try await server.send("GET", "/executions"), limit: 2)
            #expect(try await server.send("GET", "/executions", headers: Self.user()).status == 200)
        }
    }

    @Test("the limiter remembers at most BUDPIPELINE_RATE_LIMIT_MAX_KEYS keys, forgetting the least recently seen, with a warning")
    func memoryBound() async throws {
        let environment = ["BUDPIPELINE_RATE_LIMIT_READS_PER_MINUTE": "2", "BUDPIPELINE_RATE_LIMIT_MAX_KEYS": "4"]
        try await APIServerProcess.with(.sqlite, environment: environment) { server in
            let ann = Self.user()
            for _ in 0..<2 { #expect(try await server.send("GET", "/executions", headers: ann).status == 200) }
            Self.expectRefused(try await server.send("GET", "/executions", headers: ann), limit: 2)
            // Three more users fill the table: Ann is still remembered (and seen again, the newest).
            for _ in 0..<3 { #expect(try await server.send("GET", "/executions", headers: Self.user()).status == 200) }
            Self.expectRefused(try await server.send("GET", "/executions", headers: ann), limit: 2)
            #expect(!server.process.output.contains("rate limiter full"))
            // Four more push every older key out, Ann last.
            for _ in 0..<4 { #expect(try await server.send("GET", "/executions", headers: Self.user()).status == 200) }
            let forgotten = try await server.send("GET", "/executions", headers: ann)
            #expect(forgotten.status == 200 && forgotten.headers["x-ratelimit-remaining"] == "1")
            // Many distinct users, each forgetting another: all served, one warning a minute.
            for _ in 0..<200 { #expect(try await server.send("GET", "/executions", headers: Self.user()).status == 200) }
            #expect(await server.process.waitForOutput("rate limiter full"))
            let warnings = server.process.output.components(separatedBy: "rate limiter full").count - 1
            #expect(warnings == 1, "\(server.process.output.suffix(2000))")
        }
    }
}
