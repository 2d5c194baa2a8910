import BudJSON
import Foundation
import Testing
import _BudPipelineTestSupport

/// Every route against every kind of caller (docs/security.md, "Who may do what"), over HTTP, on
/// both stores: the owner and the service may act; another user gets 404 (nothing leaks, nothing
/// changes); users read system-owned pipelines and get 403 when they try to change one; no token
/// is 401 everywhere but the open routes.
@Suite("Authorization matrix")
struct AuthorizationMatrixTests {
    static let token = "matrix-token-\(UUID().uuidString)"
    static let environment = ["APP_API_TOKEN": token]

    /// Who calls.
    enum Who: String, CaseIterable, CustomStringConvertible {
        case owner, otherUser, service, anonymous
        var description: String { rawValue }
    }

    /// What one caller's request looks like.
    struct Caller {
        var headers: [String: String]
        var authenticated: Bool
    }

    /// Resources owned by user `owner`, and a system-owned pipeline.
    struct Fixture: Sendable {
        let owner: String
        let other: String
        let pipeline: String
        let systemPipeline: String
        let execution: String
        let schedule: String
        let webhook: String
        let eventTrigger: String

        func caller(_ who: Who) -> Caller {
            switch who {
            case .owner: Caller(headers: ["X-User-ID": owner], authenticated: true)
            case .otherUser: Caller(headers: ["X-User-ID": other], authenticated: true)
            case .service: Caller(headers: [:], authenticated: true)
            case .anonymous: Caller(headers: [:], authenticated: false)
            }
        }
    }

    static func dag(_ name: String) -> JSONValue {
        ["name": .string(name), "steps": [["id": "a", "name": "A", "action": "log", "params": ["message": "hi"]]]]
    }

    static func make(on server: some APIServing) async throws -> Fixture {
        let owner = UUID().uuidString.lowercased()
        let other = UUID().uuidString.lowercased()
        let user = ["X-User-ID": owner]
        let suffix = UUID().uuidString.prefix(8)
        let pipeline = try await created(server.send("POST", "/pipelines", json: ["dag": dag("p-\(suffix)")], headers: user))
        let system = try await created(
            server.send("POST", "/pipelines", json: ["dag": dag("system-\(suffix)"), "system_owned": true]))
        let started = try await server.send("POST", "/executions", json: ["workflow_id": .string(pipeline)], headers: user)
        let execution = try #require(started.json["execution_id"]?.stringValue, "\(started.text)")
        _ = try await server.finished(execution)
        let schedule = try await created(
            server.send(
                "POST", "/schedules",
                json: [
                    "workflow_id": .string(pipeline), "name": "nightly",
                    "schedule": ["type": "cron", "expression": "0 3 * * *", "timezone": "UTC"],
                ], headers: user))
        let webhook = try await created(
            server.send("POST", "/webhooks", json: ["workflow_id": .string(pipeline), "name": "hook"], headers: user))
        let eventTrigger = try await created(
            server.send(
                "POST", "/event-triggers",
                json: ["workflow_id": .string(pipeline), "name": "on-onboard", "event_type": "model.onboarded"], headers: user))
        return Fixture(
            owner: owner, other: other, pipeline: pipeline, systemPipeline: system, execution: execution, schedule: schedule,
            webhook: webhook, eventTrigger: eventTrigger)
    }

    private static func created(_ reply: APIReply) throws -> String {
        guard (200..<300).contains(reply.status), let id = reply.json["id"]?.stringValue else {
            throw ServerError("could not create a fixture: \(reply.status) \(reply.text)")
        }
        return id
    }

    /// One route on the owner's resources.
    struct Route: CustomStringConvertible, Sendable {
        var method: String
        var path: @Sendable (Fixture) -> String
        var body: @Sendable (Fixture) -> JSONValue? = { _ in nil }
        /// Changes, runs or deletes (the owner and the service get a fresh fixture for it).
        var changes: Bool
        var label: String
        var description: String { label }
    }

    static let routes: [Route] = [
        Route(method: "GET", path: { "/pipelines/\($0.pipeline)" }, changes: false, label: "get pipeline"),
        Route(method: "GET", path: { "/budpipeline/\($0.pipeline)" }, changes: false, label: "get pipeline (budapp alias)"),
        Route(
            method: "PUT", path: { "/pipelines/\($0.pipeline)" }, body: { _ in ["dag": dag("renamed-\(UUID().uuidString.prefix(6))")] },
            changes: true, label: "update pipeline"),
        Route(method: "DELETE", path: { "/pipelines/\($0.pipeline)" }, changes: true, label: "delete pipeline"),
        Route(
            method: "POST", path: { _ in "/executions" }, body: { ["workflow_id": .string($0.pipeline)] }, changes: true,
            label: "start execution"),
        Route(method: "POST", path: { "/budpipeline/\($0.pipeline)/execute" }, body: { _ in [:] }, changes: true, label: "execute (alias)"),
        Route(method: "GET", path: { "/executions/\($0.execution)" }, changes: false, label: "get execution"),
        Route(method: "GET", path: { "/budpipeline/executions/\($0.execution)" }, changes: false, label: "get execution (alias)"),
        Route(method: "GET", path: { "/executions/\($0.execution)/progress" }, changes: false, label: "execution progress"),
        Route(method: "GET", path: { "/executions/\($0.execution)/steps" }, changes: false, label: "execution steps"),
        Route(method: "GET", path: { "/executions/\($0.execution)/events" }, changes: false, label: "execution events"),
        Route(method: "GET", path: { "/executions/\($0.execution)/stream" }, changes: false, label: "execution stream"),
        Route(method: "POST", path: { "/executions/\($0.execution)/cancel" }, changes: true, label: "cancel execution"),
        Route(method: "POST", path: { "/executions/\($0.execution)/retry" }, changes: true, label: "retry execution"),
        Route(method: "GET", path: { "/schedules/\($0.schedule)" }, changes: false, label: "get schedule"),
        Route(method: "GET", path: { "/budpipeline/schedules/\($0.schedule)" }, changes: false, label: "get schedule (alias)"),
        Route(method: "GET", path: { "/schedules/\($0.schedule)/next-runs" }, changes: false, label: "schedule next runs"),
        Route(
            method: "PUT", path: { "/schedules/\($0.schedule)" }, body: { _ in ["name": "renamed"] }, changes: true,
            label: "update schedule"),
        Route(method: "DELETE", path: { "/schedules/\($0.schedule)" }, changes: true, label: "delete schedule"),
        Route(method: "POST", path: { "/schedules/\($0.schedule)/pause" }, changes: true, label: "pause schedule"),
        Route(method: "POST", path: { "/schedules/\($0.schedule)/resume" }, changes: true, label: "resume schedule"),
        Route(method: "POST", path: { "/schedules/\($0.schedule)/trigger" }, changes: true, label: "trigger schedule"),
        Route(
            method: "POST", path: { _ in "/schedules" },
            body: {
                [
                    "workflow_id": .string($0.pipeline), "name": "mine",
                    "schedule": ["type": "cron", "expression": "0 4 * * *", "timezone": "UTC"],
                ]
            }, changes: true, label: "create schedule on the pipeline"),
        Route(method: "GET", path: { "/webhooks/\($0.webhook)" }, changes: false, label: "get webhook"),
        Route(
            method: "PUT", path: { "/webhooks/\($0.webhook)" }, body: { _ in ["name": "renamed"] }, changes: true, label: "update webhook"),
        Route(method: "DELETE", path: { "/webhooks/\($0.webhook)" }, changes: true, label: "delete webhook"),
        Route(method: "POST", path: { "/webhooks/\($0.webhook)/rotate-secret" }, changes: true, label: "rotate webhook secret"),
        Route(
            method: "DELETE", path: { "/budpipeline/webhooks/\($0.webhook)" }, changes: true, label: "delete webhook (budapp alias)"),
        Route(
            method: "POST", path: { _ in "/webhooks" }, body: { ["workflow_id": .string($0.pipeline), "name": "mine"] }, changes: true,
            label: "create webhook on the pipeline"),
        Route(method: "GET", path: { "/event-triggers/\($0.eventTrigger)" }, changes: false, label: "get event trigger"),
        Route(
            method: "PUT", path: { "/event-triggers/\($0.eventTrigger)" }, body: { _ in ["name": "renamed"] }, changes: true,
            label: "update event trigger"),
        Route(method: "DELETE", path: { "/event-triggers/\($0.eventTrigger)" }, changes: true, label: "delete event trigger"),
        Route(
            method: "POST", path: { _ in "/event-triggers" },
            body: { ["workflow_id": .string($0.pipeline), "name": "mine", "event_type": "model.deleted"] }, changes: true,
            label: "create event trigger on the pipeline"),
    ]

    private static func send(_ route: Route, _ fixture: Fixture, as who: Who, on server: some APIServing) async throws
        -> APIReply
    {
        let caller = fixture.caller(who)
        if let body = route.body(fixture) {
            return try await server.send(
                route.method, route.path(fixture), json: body, headers: caller.headers, authenticated: caller.authenticated)
        }
        return try await server.send(route.method, route.path(fixture), headers: caller.headers, authenticated: caller.authenticated)
    }

    @Test("the owner and the service act; another user gets 404 and changes nothing; no token is 401", arguments: TestBackend.available)
    func ownedResources(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend, environment: Self.environment) { server in
            let shared = try await Self.make(on: server)
            for route in Self.routes {
                for who in [Who.otherUser, .anonymous] {
                    let reply = try await Self.send(route, shared, as: who, on: server)
                    let expected = who == .anonymous ? 401 : 404
                    #expect(reply.status == expected, "\(route) as \(who): \(reply.status) \(reply.text.prefix(300))")
                    #expect(reply.json["code"]?.stringValue != nil, "\(route) as \(who): \(reply.text.prefix(200))")
                }
                for who in [Who.owner, .service] {
                    let fixture = route.changes ? try await Self.make(on: server) : shared
                    let reply = try await Self.send(route, fixture, as: who, on: server)
                    // Allowed: whatever the route answers then (a finished execution cannot be
                    // cancelled: 409), but never a refusal of the caller.
                    #expect(![400, 401, 403, 404].contains(reply.status), "\(route) as \(who): \(reply.status) \(reply.text.prefix(300))")
                }
            }
            // What the other user and the anonymous caller tried changed nothing.
            let owner = ["X-User-ID": shared.owner]
            #expect(try await server.send("GET", "/pipelines/\(shared.pipeline)", headers: owner).json["version"] == "1")
            #expect(try await server.send("GET", "/schedules/\(shared.schedule)", headers: owner).json["version"] == 1)
            #expect(try await server.send("GET", "/webhooks/\(shared.webhook)", headers: owner).json["version"] == 1)
            #expect(try await server.send("GET", "/event-triggers/\(shared.eventTrigger)", headers: owner).json["version"] == 1)
            let executions = try await server.send("GET", "/executions?workflow_id=\(shared.pipeline)", headers: owner).json
            #expect(executions["pagination"]?["total_count"] == 1)
        }
    }

    @Test("listings show a user only its own (and system pipelines when asked); the service sees all", arguments: TestBackend.available)
    func listings(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend, environment: Self.environment) { server in
            let fixture = try await Self.make(on: server)
            let owner = ["X-User-ID": fixture.owner]
            let other = ["X-User-ID": fixture.other]
            func ids(_ reply: APIReply, _ key: String? = nil) -> Set<String> {
                let items = key.map { reply.json[$0]?.arrayValue ?? [] } ?? reply.json.arrayValue ?? []
                return Set(items.compactMap { $0["id"]?.stringValue })
            }
            for (path, key, id) in [
                ("/pipelines", nil, fixture.pipeline), ("/executions", "executions", fixture.execution),
                ("/schedules", "schedules", fixture.schedule), ("/webhooks", nil, fixture.webhook),
                ("/event-triggers", nil, fixture.eventTrigger), ("/budpipeline/schedules", "schedules", fixture.schedule),
                ("/budpipeline/webhooks", nil, fixture.webhook), ("/budpipeline/event-triggers", nil, fixture.eventTrigger),
            ] as [(String, String?, String)] {
                #expect(ids(try await server.send("GET", path, headers: owner), key).contains(id), "\(path) as owner")
                #expect(!ids(try await server.send("GET", path, headers: other), key).contains(id), "\(path) as another user")
                #expect(ids(try await server.send("GET", path), key).contains(id), "\(path) as the service")
                #expect(try await server.send("GET", path, authenticated: false).status == 401, "\(path) without the token")
            }
            let withSystem = ids(try await server.send("GET", "/pipelines?include_system=true", headers: other))
            #expect(withSystem == [fixture.systemPipeline])
        }
    }

    @Test("system pipelines: users read and run them, only the service changes them", arguments: TestBackend.available)
    func systemOwned(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend, environment: Self.environment) { server in
            let fixture = try await Self.make(on: server)
            let user = ["X-User-ID": fixture.other]
            let path = "/pipelines/\(fixture.systemPipeline)"
            #expect(try await server.send("GET", path, headers: user).status == 200)
            let update = try await server.send("PUT", path, json: ["dag": Self.dag("taken")], headers: user)
            #expect(update.status == 403 && update.json["code"] == "SYSTEM_OWNED")
            let delete = try await server.send("DELETE", path, headers: user)
            #expect(delete.status == 403 && delete.json["code"] == "SYSTEM_OWNED")
            let started = try await server.send(
                "POST", "/executions", json: ["workflow_id": .string(fixture.systemPipeline)], headers: user)
            #expect(started.status == 201)
            let execution = try #require(started.json["id"]?.stringValue)
            // The run is the user's: the system pipeline's other readers do not see it.
            #expect(try await server.send("GET", "/executions/\(execution)", headers: user).status == 200)
            let owner = ["X-User-ID": fixture.owner]
            #expect(try await server.send("GET", "/executions/\(execution)", headers: owner).status == 404)
            #expect(try await server.send("PUT", path, json: ["dag": Self.dag("service-renamed")]).status == 200)
            #expect(try await server.send("DELETE", path).status == 204)
        }
    }

    @Test("only the service acts for another user or creates system-owned resources", arguments: TestBackend.available)
    func actingForOthers(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend, environment: Self.environment) { server in
            let fixture = try await Self.make(on: server)
            let other = ["X-User-ID": fixture.other]
            let planted = try await server.send(
                "POST", "/pipelines", json: ["dag": Self.dag("planted"), "user_id": .string(fixture.owner)], headers: other)
            #expect(planted.status == 403 && planted.json["code"] == "OWNER_NOT_ALLOWED")
            let system = try await server.send("POST", "/pipelines", json: ["dag": Self.dag("mine"), "system_owned": true], headers: other)
            #expect(system.status == 403 && system.json["code"] == "SYSTEM_OWNED")
            let asOwner = try await server.send(
                "POST", "/executions", json: ["workflow_id": .string(fixture.systemPipeline), "user_id": .string(fixture.owner)],
                headers: other)
            #expect(asOwner.status == 403 && asOwner.json["code"] == "OWNER_NOT_ALLOWED")
            let inParams = try await server.send(
                "POST", "/executions",
                json: ["workflow_id": .string(fixture.systemPipeline), "params": ["user_id": .string(fixture.owner)]], headers: other)
            #expect(inParams.status == 403)

            // The service (budapp) names the user in the body; the resource is that user's.
            let forOwner = try await server.send(
                "POST", "/pipelines", json: ["dag": Self.dag("for-owner"), "user_id": .string(fixture.owner)])
            #expect(forOwner.status == 201 && forOwner.json["user_id"]?.stringValue == fixture.owner)
            let id = try #require(forOwner.json["id"]?.stringValue)
            #expect(try await server.send("GET", "/pipelines/\(id)", headers: ["X-User-ID": fixture.owner]).status == 200)
            #expect(try await server.send("GET", "/pipelines/\(id)", headers: other).status == 404)
            let run = try await server.send("POST", "/executions", json: ["workflow_id": .string(id), "user_id": .string(fixture.owner)])
            let execution = try #require(run.json["id"]?.stringValue)
            #expect(try await server.send("GET", "/executions/\(execution)", headers: ["X-User-ID": fixture.owner]).status == 200)
            #expect(try await server.send("GET", "/executions/\(execution)", headers: other).status == 404)
            let schedule = try await server.send(
                "POST", "/schedules",
                json: [
                    "workflow_id": .string(id), "name": "for-owner", "user_id": .string(fixture.owner),
                    "schedule": ["type": "cron", "expression": "0 5 * * *"],
                ])
            let scheduleID = try #require(schedule.json["id"]?.stringValue)
            #expect(try await server.send("GET", "/schedules/\(scheduleID)", headers: ["X-User-ID": fixture.owner]).status == 200)

            // A malformed user header is refused, never read as "no user" (the service).
            let malformed = try await server.send("GET", "/pipelines/\(fixture.pipeline)", headers: ["X-User-ID": "not-a-uuid"])
            #expect(malformed.status == 400 && malformed.json["code"] == "INVALID_USER_ID")
            // So is an empty or blank one, as a gateway forwarding a missing user might send it:
            // read as absent, it would make the caller the service (everything, no rate limit).
            for blank in ["", " ", "\t"] {
                let connection = try RawConnection(port: server.port)
                connection.send(
                    "GET /pipelines HTTP/1.1\r\nHost: test\r\ndapr-api-token: \(Self.token)\r\nX-User-ID:\(blank)\r\n"
                        + "Connection: close\r\n\r\n")
                let response = await connection.response(timeout: .seconds(10))
                #expect(
                    response?.status == 400 && response?.body.contains("INVALID_USER_ID") == true,
                    "'\(blank)': \(String(describing: response))")
            }
            // The same on routes that do not scope by user.
            for path in ["/actions", "/event-triggers/event-types", "/openapi.json", "/health"] {
                let reply = try await server.send("GET", path, headers: ["X-User-ID": "garbage"])
                #expect(reply.status == 400 && reply.json["code"] == "INVALID_USER_ID", "\(path): \(reply.text)")
            }
            // Only the service posts events: a user could otherwise fire another user's triggers.
            let event = try await server.send(
                "POST", "/workflow-events", json: ["id": "e-user", "type": "model.onboarded", "data": ["user_id": .string(fixture.owner)]],
                headers: other)
            #expect(event.status == 403 && event.json["code"] == "SERVICE_ONLY", "\(event.text)")
            #expect(try await server.send("GET", "/dapr/subscribe", headers: other).status == 403)
        }
    }

    @Test("without the token only the open routes answer; a wrong token is 401 too")
    func openRoutes() async throws {
        try await InProcessAPIServer.with(.sqlite, environment: Self.environment) { server in
            for path in ["/health", "/ready", "/openapi.json"] {
                #expect(try await server.send("GET", path, authenticated: false).status == 200, "\(path)")
            }
            // Probes may use HEAD: the same status, no body.
            for path in ["/health", "/ready"] {
                let head = try await server.send("HEAD", path, authenticated: false)
                #expect(head.status == 200 && head.text.isEmpty, "HEAD \(path): \(head.status) \(head.text)")
            }
            let fixture = try await Self.make(on: server)
            // The webhook trigger is open to the app token's absence: its own secret decides.
            let trigger = try await server.send("POST", "/trigger/\(fixture.webhook)", authenticated: false)
            #expect(trigger.status == 401 && trigger.json["code"] == "INVALID_SECRET")
            for (name, value) in [("dapr-api-token", "wrong"), ("x-app-api-token", "wrong"), ("Authorization", "Bearer wrong")] {
                let reply = try await server.send("GET", "/pipelines", headers: [name: value], authenticated: false)
                #expect(reply.status == 401 && reply.json["code"] == "INVALID_TOKEN", "\(name)")
            }
            for (name, value) in [("x-app-api-token", Self.token), ("Authorization", "Bearer \(Self.token)")] {
                #expect(try await server.send("GET", "/pipelines", headers: [name: value], authenticated: false).status == 200, "\(name)")
            }
            let missing = try await server.send("GET", "/no/such/route", authenticated: false)
            #expect(missing.status == 401)

            // Every operation the OpenAPI document lists, without the token: 401 but the open ones.
            let document = try await server.send("GET", "/openapi.json", authenticated: false).json
            let open: Set<String> = ["/health", "/ready", "/openapi.json", "/workflow-events", "/ui", "/ui/{asset}"]
            var checked = 0
            for (path, item) in document["paths"]?.objectValue ?? [:] {
                let concrete = path.replacingOccurrences(of: "{id}", with: fixture.pipeline).replacingOccurrences(
                    of: "{type}", with: "log")
                for method in item.objectValue?.keys ?? [] {
                    let verb = method.uppercased()
                    let body = verb == "GET" || verb == "DELETE" ? nil : "{}"
                    let reply = try await server.send(verb, concrete, body: body, authenticated: false)
                    if open.contains(path) || path.hasSuffix("/trigger/{id}") {
                        #expect(reply.status != 401 || reply.json["code"] != "AUTHENTICATION_REQUIRED", "\(method) \(path)")
                    } else {
                        #expect(
                            reply.status == 401 && reply.json["code"] == "AUTHENTICATION_REQUIRED", "\(method) \(path): \(reply.status)")
                    }
                    checked += 1
                }
            }
            #expect(checked > 100)
        }
    }
}

/// `serve` without a token on an address others can reach.
@Suite("Unauthenticated exposure")
struct UnauthenticatedExposureTests {
    @Test("serve refuses a non-loopback address without APP_API_TOKEN, in one line, unless told to run open")
    func refusesToServeOpen() async throws {
        let database = try await TestDatabase.make(.sqlite, migrated: false)
        defer { Task { await database.close() } }
        let environment = ["DATABASE_URL": database.url, "BUDPIPELINE_PLUGIN_DIRS": Repository.productsDirectory, "LOG_LEVEL": "notice"]
        let refused = try await ProcessRunner.run(
            Repository.executable, ["serve", "--migrate", "--host", "0.0.0.0", "--port", "0"], environment: environment,
            removingEnvironment: ["APP_API_TOKEN"], timeout: .seconds(60))
        let output = refused.standardOutput + refused.standardError
        #expect(refused.status != 0)
        let lines = output.split(separator: "\n").filter { $0.contains("APP_API_TOKEN") }
        #expect(lines.count == 1 && lines.first?.hasPrefix("Error: refusing to serve 0.0.0.0:0 without APP_API_TOKEN") == true, "\(output)")

        let open = try BackgroundProcess(
            Repository.executable, ["serve", "--migrate", "--host", "0.0.0.0", "--port", "0"],
            environment: environment.merging(["BUDPIPELINE_ALLOW_UNAUTHENTICATED": "true"]) { _, new in new })
        let served = await open.waitForOutput("serving HTTP")
        let status = await open.stop()
        #expect(served && status == 0, "\(open.output)")
        #expect(open.output.contains("SERVING WITHOUT AUTHENTICATION"))
    }
}
