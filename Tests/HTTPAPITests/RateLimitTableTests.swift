import BudJSON
import Foundation
import NIOCore
import Testing

@testable import HTTPAPI

/// The limiter's core without a socket or a clock: time is a number the tests move.
@Suite("Rate limit table")
struct RateLimitTableTests {
    private static let second: Int64 = 1_000_000_000
    private static let reads = RateLimitBudget.Kind.executionReads

    private static func key(_ number: Int, _ budget: RateLimitBudget.Kind = reads) -> RateLimitKey {
        RateLimitKey(client: .ipv4(UInt32(number)), budget: budget)
    }

    private static func budget(_ limit: Int) throws -> RateLimitBudget {
        try #require(RateLimitBudget(limit: limit))
    }

    @Test("a key gets its whole budget at once, counting down, then waits one interval; refusals cost nothing")
    func window() throws {
        let budget = try Self.budget(4)  // one request per 15 s
        var table = RateLimitTable(maximumKeys: 10)
        let start = 1000 * Self.second
        let remaining = (0..<4).map { _ in table.check(Self.key(1), budget: budget, now: start) }
        #expect(remaining.map(\.allowed) == [true, true, true, true])
        #expect(remaining.map(\.remaining) == [3, 2, 1, 0])
        #expect(remaining.map(\.limit) == [4, 4, 4, 4])
        #expect(remaining.last?.resetAfter == 60 * Self.second)

        let refused = table.check(Self.key(1), budget: budget, now: start + 5 * Self.second)
        #expect(!refused.allowed && refused.remaining == 0)
        #expect(refused.retryAfter == 10 * Self.second)
        #expect(refused.resetAfter == 55 * Self.second)
        for _ in 0..<100 { #expect(!table.check(Self.key(1), budget: budget, now: start + 14 * Self.second).allowed) }

        let next = table.check(Self.key(1), budget: budget, now: start + 15 * Self.second)
        #expect(next.allowed && next.remaining == 0, "the refusals did not push the next request back")
        #expect(!table.check(Self.key(1), budget: budget, now: start + 15 * Self.second).allowed)

        let rested = start + 15 * Self.second + 60 * Self.second
        #expect(table.check(Self.key(1), budget: budget, now: rested).remaining == 3, "a whole window later the budget is whole")
    }

    @Test("keys and budgets are counted apart")
    func separateKeys() throws {
        let budget = try Self.budget(1)
        var table = RateLimitTable(maximumKeys: 10)
        #expect(table.check(Self.key(1), budget: budget, now: 0).allowed)
        #expect(!table.check(Self.key(1), budget: budget, now: 0).allowed)
        #expect(table.check(Self.key(2), budget: budget, now: 0).allowed)
        #expect(table.check(Self.key(1, .executionStarts), budget: budget, now: 0).allowed)
        let user = RateLimitKey(client: .user(UUID()), budget: Self.reads)
        #expect(table.check(user, budget: budget, now: 0).allowed)
        #expect(!table.check(user, budget: budget, now: 0).allowed)
    }

    @Test("exactly the limit fits at once whatever the rounding of the interval", arguments: [1, 7, 13, 999, 1000, 1_000_000])
    func exactBurst(limit: Int) throws {
        let budget = try Self.budget(limit)
        var table = RateLimitTable(maximumKeys: 1)
        var allowed = 0
        while table.check(Self.key(1), budget: budget, now: 5 * Self.second).allowed, allowed <= limit { allowed += 1 }
        #expect(allowed == limit)
    }

    @Test("budgets: 0 is off, the range is bounded, a minute is the window")
    func budgets() throws {
        #expect(RateLimitBudget(limit: 0) == nil)
        #expect(RateLimitBudget(limit: -1) == nil)
        #expect(RateLimitBudget(limit: 1_000_001) == nil)
        #expect(try Self.budget(1000).interval == 60_000_000)
        #expect(try Self.budget(7).capacity <= 60 * Self.second)
        #expect(RateLimitDecision.seconds(roundingUp: 0) == 0)
        #expect(RateLimitDecision.seconds(roundingUp: 1) == 1)
        #expect(RateLimitDecision.seconds(roundingUp: Self.second) == 1)
        #expect(RateLimitDecision.seconds(roundingUp: Self.second + 1) == 2)
        #expect(RateLimitDecision.seconds(roundingUp: -5) == 0)
    }

    @Test("the table never holds more than its bound; a full table forgets the least recently seen key, and says so")
    func bound() throws {
        let budget = try Self.budget(1)
        var table = RateLimitTable(maximumKeys: 3)
        for number in 1...3 { #expect(table.check(Self.key(number), budget: budget, now: 0).allowed) }
        // Seen again (refused): 1 becomes the most recently seen, 2 the least.
        #expect(!table.check(Self.key(1), budget: budget, now: 0).allowed)
        let fourth = table.check(Self.key(4), budget: budget, now: 0)
        #expect(fourth.allowed && fourth.evictedActiveKey && table.count == 3)
        #expect(table.check(Self.key(2), budget: budget, now: 0).allowed, "2 was forgotten, so it starts afresh")
        #expect(!table.check(Self.key(1), budget: budget, now: 0).allowed, "1 was seen recently and is still counted")

        for number in 5..<10_005 {
            _ = table.check(Self.key(number), budget: budget, now: Int64(number))
            #expect(table.count <= 3)
        }
    }

    @Test("keys whose budget is whole again are dropped as checks go on, and forgetting them changes nothing")
    func sweep() throws {
        let budget = try Self.budget(60)  // one request per second
        var table = RateLimitTable(maximumKeys: 100)
        for number in 1...10 { _ = table.check(Self.key(number), budget: budget, now: 0) }
        #expect(table.count == 10)
        // Key 11 keeps coming; each check drops up to two expired keys.
        for step in 1...5 { _ = table.check(Self.key(11), budget: budget, now: Self.second + Int64(step)) }
        #expect(table.count == 1)
        let fresh = table.check(Self.key(3), budget: budget, now: 2 * Self.second)
        #expect(fresh.allowed && fresh.remaining == 59 && !fresh.evictedActiveKey)
        table.dropExpired(now: 100 * Self.second, atMost: 10)
        #expect(table.count == 0)
    }

    @Test("one shared limiter under many concurrent checks allows exactly the limit")
    func concurrency() async throws {
        let settings = RateLimitSettings(readsPerMinute: 100, maximumKeys: 50)
        let limiter = RateLimiter(settings: settings, now: { 42 * Self.second })
        let allowed = await withTaskGroup(of: Int.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    var allowed = 0
                    for index in 0..<500 {
                        let client: RateLimitClient = index % 2 == 0 ? .serviceCaller : .ipv4(UInt32(worker * 1000 + index))
                        let checked = limiter.check(client, .executionReads)
                        if client == .serviceCaller, checked?.decision.allowed == true { allowed += 1 }
                    }
                    return allowed
                }
            }
            return await group.reduce(0, +)
        }
        #expect(allowed == 100)
        #expect(limiter.count <= 50)
        #expect(limiter.check(.serviceCaller, .executionStarts) != nil, "starts are limited by default")
        #expect(RateLimiter(settings: RateLimitSettings(startsPerMinute: 0)).check(.serviceCaller, .executionStarts) == nil)
    }

    @Test(
        "the limited routes, under every alias",
        arguments: [
            ("GET", "/executions", RateLimitedRoute.executionRead), ("GET", "/api/v1/executions/x/progress", .executionRead),
            ("GET", "/budpipeline/executions/x", .executionRead), ("HEAD", "//executions//x/steps/", .executionRead),
            ("POST", "/executions", .executionStart), ("POST", "/api/v1/executions/run", .executionStart),
            ("POST", "/budpipeline/executions/x/retry", .executionStart), ("POST", "/budpipeline/x/execute", .executionStart),
            ("POST", "/budpipeline/run", .executionStart), ("POST", "/schedules/x/trigger", .executionStart),
            ("POST", "/api/v1/schedules/x/trigger", .executionStart), ("POST", "/trigger/x", .webhookTrigger),
            ("POST", "/api/v1/trigger/x", .webhookTrigger), ("POST", "/webhooks/x/trigger", .webhookTrigger),
        ])
    func limitedRoutes(method: String, path: String, route: RateLimitedRoute) {
        #expect(RateLimitedRoute(method: method, path: Substring(path)) == route)
    }

    @Test(
        "other routes are not limited",
        arguments: [
            ("POST", "/executions/x/cancel"), ("GET", "/pipelines"), ("GET", "/budpipeline"), ("POST", "/budpipeline"),
            ("POST", "/run"), ("POST", "/x/execute"), ("GET", "/schedules/x/trigger"), ("PUT", "/executions/x"),
            ("DELETE", "/executions/x"), ("GET", "/Executions"), ("POST", "/workflow-events"), ("GET", "/api/v1/pipeline/pipelines"),
            ("POST", "/trigger"), ("POST", "/trigger/x/y"), ("GET", ""), ("GET", "/"),
        ])
    func unlimitedRoutes(method: String, path: String) {
        #expect(RateLimitedRoute(method: method, path: Substring(path)) == nil)
    }

    @Test("client addresses: the peer's unless proxies are trusted; IPv4-mapped as IPv4, IPv6 by /64")
    func addresses() throws {
        let peer = try SocketAddress(ipAddress: "192.0.2.7", port: 4000)
        let address = RateLimitMiddleware.address(forwardedFor:trustedHops:peer:)
        #expect(address(["198.51.100.1"], 0, peer) == .ipv4(0xC000_0207), "X-Forwarded-For is ignored by default")
        #expect(address([], 1, peer) == .ipv4(0xC000_0207), "no header: the peer")
        #expect(address(["198.51.100.1, 203.0.113.9"], 1, peer) == .ipv4(0xCB00_7109))
        #expect(address(["198.51.100.1, 203.0.113.9"], 2, peer) == .ipv4(0xC633_6401))
        #expect(address(["198.51.100.1", "203.0.113.9"], 2, peer) == .ipv4(0xC633_6401), "repeated headers read as one list")
        #expect(address(["203.0.113.9"], 2, peer) == .ipv4(0xC000_0207), "fewer entries than proxies: the peer")
        #expect(address(["not-an-address"], 1, peer) == .ipv4(0xC000_0207))
        #expect(address(["198.51.100.1:80"], 1, nil) == .otherPeer)
        #expect(address([" 2001:db8:1:2:3:4:5:6 "], 1, peer) == address(["2001:db8:1:2:ffff::1"], 1, peer))
        #expect(address(["2001:db8:1:2::1"], 1, peer) == .ipv6Network(0x2001_0db8_0001_0002))
        #expect(address(["2001:db8:1:3::1"], 1, peer) != address(["2001:db8:1:2::1"], 1, peer))
        #expect(address(["::ffff:198.51.100.1"], 1, peer) == .ipv4(0xC633_6401))
        #expect(RateLimitMiddleware.client(try SocketAddress(unixDomainSocketPath: "/tmp/x")) == .otherPeer)
    }

    @Test("settings are read from the environment, range-checked, each error naming its variable")
    func settings() throws {
        #expect(try APIConfiguration.from(environment: [:]).rateLimits == RateLimitSettings())
        let set = try APIConfiguration.from(environment: [
            "BUDPIPELINE_RATE_LIMIT_READS_PER_MINUTE": "0", "BUDPIPELINE_RATE_LIMIT_STARTS_PER_MINUTE": "5",
            "BUDPIPELINE_RATE_LIMIT_SERVICE": "TRUE", "BUDPIPELINE_RATE_LIMIT_MAX_KEYS": "10", "BUDPIPELINE_RATE_LIMIT_PROXY_HOPS": "2",
        ]).rateLimits
        #expect(
            set
                == RateLimitSettings(readsPerMinute: 0, startsPerMinute: 5, limitsServiceCaller: true, maximumKeys: 10, trustedProxyHops: 2)
        )
        for (name, value) in [
            ("BUDPIPELINE_RATE_LIMIT_READS_PER_MINUTE", "-1"), ("BUDPIPELINE_RATE_LIMIT_STARTS_PER_MINUTE", "1000001"),
            ("BUDPIPELINE_RATE_LIMIT_SERVICE", "maybe"), ("BUDPIPELINE_RATE_LIMIT_MAX_KEYS", "0"),
            ("BUDPIPELINE_RATE_LIMIT_PROXY_HOPS", "x"),
        ] {
            #expect {
                try APIConfiguration.from(environment: [name: value])
            } throws: { error in
                "\(error)".hasPrefix("\(name)=\(value) ") && !"\(error)".contains("\n")
            }
        }
    }

    @Test("the OpenAPI document lists 429 exactly on the start and execution-read operations")
    func documented() {
        let starts: Set = ["startExecution", "startExecutionByPath", "runEphemeral", "retryExecution", "triggerSchedule", "triggerWebhook"]
        var checked = 0
        for (path, item) in OpenAPIDocument.document(version: "test")["paths"]?.objectValue ?? [:] {
            for (method, operation) in item.objectValue ?? [:] {
                let id = String((operation["operationId"]?.stringValue ?? "").split(separator: "_alias").first ?? "")
                let isRead =
                    method == "get"
                    && path.split(separator: "/").drop { $0 == "api" || $0 == "v1" || $0 == "budpipeline" }
                        .first == "executions"
                let pipelineGraph = method == "get" && path == "/pipelines/{id}/graph"
                let limited = starts.contains(id) || isRead || pipelineGraph
                #expect((RateLimitedRoute(method: method.uppercased(), path: Substring(path)) != nil) == limited, "\(method) \(path)")
                #expect((operation["responses"]?["429"] != nil) == limited, "\(method) \(path)")
                if limited { checked += 1 }
            }
        }
        #expect(checked >= 30)
    }
}
