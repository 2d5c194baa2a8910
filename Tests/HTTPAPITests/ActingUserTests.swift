import BudJSON
import BudServicesSimulator
import DaprSidecar
import Foundation
import Testing
import _BudPipelineTestSupport

/// Plugins act for the execution's owner and nobody else: whatever `user_id` the parameters of a
/// run say — from a DAG default, a schedule's trigger body, a webhook sender, an event trigger's
/// stored params — the domain plugins call budapp as the run's owner (the recording sidecar shows
/// the `user_id` of every call). And a user's event triggers see only events about that user.
@Suite("Plugins act for the execution's owner", .serialized)
struct ActingUserTests {
    static let victim = "11111111-1111-4111-8111-111111111111"
    static let attacker = "22222222-2222-4222-8222-222222222222"

    /// A pipeline deleting the model its `mid` parameter names, declaring a `user_id` parameter
    /// whose default names the victim.
    static let deleting: JSONValue = [
        "name": "delete-as-someone-else",
        "parameters": [["name": "mid", "default": "m-default"], ["name": "user_id", "default": .string(victim)]],
        "steps": [["id": "d", "name": "d", "action": "model_delete", "params": ["model_id": "{{ params.mid }}"]]],
    ]

    /// The `user_id` of the budapp model deletion the sidecar received for `modelID`, once the
    /// execution has finished; `""` when the call carried none, `nil` when no call was made.
    static func deletionUser(of modelID: String, execution: String, server: some APIServing, sidecar: DaprSidecar) async throws
        -> String?
    {
        _ = try await server.finished(execution)
        let prefix = "/v1.0/invoke/budapp/method/models/\(modelID)?"
        guard let target = sidecar.receivedRequests.first(where: { $0.method == "DELETE" && $0.target.hasPrefix(prefix) })?.target
        else { return nil }
        let query = URLComponents(string: "http://x" + target)?.queryItems ?? []
        return query.first { $0.name == "user_id" }?.value ?? ""
    }

    static func asUser(_ user: String) -> [String: String] { ["X-User-ID": user] }

    @Test("DAG defaults, schedule bodies, webhook senders and trigger params cannot name the acting user", arguments: TestBackend.available)
    func parametersNeverNameTheActingUser(backend: TestBackend) async throws {
        try await DomainPluginTests.withServices(backend) { server, sidecar, _ in
            let attacker = Self.asUser(Self.attacker)

            // A user's own run, with a DAG default naming the victim: budapp sees the runner.
            let ephemeral = try await server.send(
                "POST", "/executions/run", json: ["pipeline_definition": Self.deleting, "params": ["mid": "m-eph"]], headers: attacker)
            #expect(ephemeral.status == 201, "\(ephemeral.text)")
            let ephemeralID = try #require(ephemeral.json["execution_id"]?.stringValue)
            #expect(try await Self.deletionUser(of: "m-eph", execution: ephemeralID, server: server, sidecar: sidecar) == Self.attacker)
            // The parameters the run shows name its owner too, not the default.
            let shown = try await server.send("GET", "/executions/\(ephemeralID)", headers: attacker).json
            #expect(shown["pipeline_definition"]?["params"]?["user_id"] == .string(Self.attacker), "\(shown)")

            // A saved pipeline and a manual schedule, triggered with a body naming the victim.
            let pipeline = try await server.send("POST", "/pipelines", json: ["dag": Self.deleting], headers: attacker)
            let pipelineID = try #require(pipeline.json["id"]?.stringValue, "\(pipeline.text)")
            let schedule = try await server.send(
                "POST", "/schedules",
                json: [
                    "workflow_id": .string(pipelineID), "name": "s", "schedule": ["type": "manual"],
                    "params": ["user_id": .string(Self.victim)],
                ],
                headers: attacker)
            let scheduleID = try #require(schedule.json["id"]?.stringValue, "\(schedule.text)")
            let fired = try await server.send(
                "POST", "/schedules/\(scheduleID)/trigger", json: ["user_id": .string(Self.victim), "mid": "m-sched"], headers: attacker)
            let scheduledID = try #require(fired.json["execution_id"]?.stringValue, "\(fired.text)")
            #expect(try await Self.deletionUser(of: "m-sched", execution: scheduledID, server: server, sidecar: sidecar) == Self.attacker)

            // A webhook the service made for the attacker, open to anyone: the sender names the victim.
            let hook = try await server.send(
                "POST", "/webhooks",
                json: [
                    "workflow_id": .string(pipelineID), "name": "w", "user_id": .string(Self.attacker),
                    "config": ["auth_mode": "none"],
                ])
            let hookID = try #require(hook.json["id"]?.stringValue, "\(hook.text)")
            let delivered = try await server.send(
                "POST", "/trigger/\(hookID)", json: ["params": ["user_id": .string(Self.victim), "mid": "m-hook"]], authenticated: false)
            let hookRunID = try #require(delivered.json["execution_id"]?.stringValue, "\(delivered.text)")
            #expect(try await Self.deletionUser(of: "m-hook", execution: hookRunID, server: server, sidecar: sidecar) == Self.attacker)

            // The attacker's event trigger with params naming the victim, fired by an event about the attacker.
            let trigger = try await server.send(
                "POST", "/event-triggers",
                json: [
                    "workflow_id": .string(pipelineID), "name": "t", "config": ["event_type": "model.onboarded"],
                    "params": ["user_id": .string(Self.victim), "mid": "m-event"],
                ],
                headers: attacker)
            #expect(trigger.status == 201, "\(trigger.text)")
            let event = try await server.send(
                "POST", "/workflow-events",
                json: ["id": "evt-own", "type": "model.onboarded", "data": ["type": "model.onboarded", "user_id": .string(Self.attacker)]])
            let firings = event.json["triggers"]?.arrayValue ?? []
            let eventRunID = try #require(firings.first?["execution_id"]?.stringValue, "\(event.text)")
            #expect(try await Self.deletionUser(of: "m-event", execution: eventRunID, server: server, sidecar: sidecar) == Self.attacker)

            // Nothing reached budapp as the victim.
            let victimCalls = sidecar.receivedRequests.filter { $0.target.contains(Self.victim) }
            #expect(victimCalls.isEmpty, "\(victimCalls)")
        }
    }

    @Test("a run without an owner acts for nobody, however its parameters name a user", arguments: TestBackend.available)
    func ownerlessRunsActForNobody(backend: TestBackend) async throws {
        try await DomainPluginTests.withServices(backend) { server, sidecar, _ in
            // The service's own pipeline and an open webhook on it, owned by nobody.
            let pipeline = try await server.send("POST", "/pipelines", json: ["dag": Self.deleting])
            let pipelineID = try #require(pipeline.json["id"]?.stringValue, "\(pipeline.text)")
            let hook = try await server.send(
                "POST", "/webhooks", json: ["workflow_id": .string(pipelineID), "name": "w", "config": ["auth_mode": "none"]])
            let hookID = try #require(hook.json["id"]?.stringValue, "\(hook.text)")
            let delivered = try await server.send(
                "POST", "/trigger/\(hookID)", json: ["params": ["user_id": .string(Self.victim), "mid": "m-nobody"]],
                authenticated: false)
            let runID = try #require(delivered.json["execution_id"]?.stringValue, "\(delivered.text)")
            #expect(try await Self.deletionUser(of: "m-nobody", execution: runID, server: server, sidecar: sidecar) == nil)
            let steps = try await DomainPluginTests.steps(of: runID, on: server)
            let error = steps["d"]?["error_message"]?.stringValue ?? ""
            #expect(steps["d"]?["status"] == "FAILED" && error.contains("no user to act as"), "\(steps)")
            let shown = try await server.send("GET", "/executions/\(runID)").json
            #expect(shown["pipeline_definition"]?["params"]?["user_id"] == nil, "\(shown)")

            // The service names the user a run is for: that run acts for it.
            let named = try await server.send(
                "POST", "/executions",
                json: ["workflow_id": .string(pipelineID), "params": ["mid": "m-named"], "user_id": .string(Self.victim)])
            let namedID = try #require(named.json["execution_id"]?.stringValue, "\(named.text)")
            #expect(try await Self.deletionUser(of: "m-named", execution: namedID, server: server, sidecar: sidecar) == Self.victim)
        }
    }

    @Test("a user's event triggers fire only for events about that user", arguments: TestBackend.available)
    func eventTriggersSeeOnlyTheirOwnersEvents(backend: TestBackend) async throws {
        // /workflow-events takes deliveries only with the app token.
        try await InProcessAPIServer.with(backend, environment: ["APP_API_TOKEN": "acting-user-token"]) { server in
            let dag: JSONValue = ["name": "on-event", "steps": [["id": "l", "name": "l", "action": "log", "params": ["message": "seen"]]]]
            var triggers: [String: String] = [:]
            for (owner, headers) in [("attacker", Self.asUser(Self.attacker)), ("service", [:])] {
                let pipeline = try await server.send(
                    "POST", "/pipelines", json: ["dag": dag, "name": .string("on-event-\(owner)")], headers: headers)
                let pipelineID = try #require(pipeline.json["id"]?.stringValue, "\(pipeline.text)")
                let trigger = try await server.send(
                    "POST", "/event-triggers",
                    json: ["workflow_id": .string(pipelineID), "name": .string(owner), "config": ["event_type": "model.onboarded"]],
                    headers: headers)
                triggers[owner] = try #require(trigger.json["id"]?.stringValue, "\(trigger.text)")
            }
            /// The names of the triggers an event fired.
            func fired(_ id: String, _ data: JSONValue) async throws -> Set<String> {
                let answer = try await server.send(
                    "POST", "/workflow-events", json: ["id": .string(id), "type": "model.onboarded", "data": data])
                #expect(answer.status == 200, "\(answer.text)")
                let ids = Set((answer.json["triggers"]?.arrayValue ?? []).compactMap { $0["trigger_id"]?.stringValue })
                return Set(triggers.filter { ids.contains($0.value) }.keys)
            }
            // About the victim: only the service's trigger sees it.
            #expect(
                try await fired("e1", ["type": "model.onboarded", "model_id": "secret-model", "user_id": .string(Self.victim)]) == [
                    "service"
                ])
            // About nobody: only the service's trigger.
            #expect(try await fired("e2", ["type": "model.onboarded", "model_id": "m"]) == ["service"])
            // About the attacker (any case, or in the payload): both.
            #expect(
                try await fired("e3", ["type": "model.onboarded", "user_id": .string(Self.attacker.uppercased())]) == [
                    "service", "attacker",
                ])
            #expect(
                try await fired("e4", ["type": "model.onboarded", "payload": ["user_id": .string(Self.attacker)]]) == [
                    "service", "attacker",
                ])
        }
    }
}
