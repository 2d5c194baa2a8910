import BudJSON
import BudPipelineHost
import Foundation
import Testing
import _BudPipelineTestSupport

/// A plugin's own parameter checks (`validate_params`) run where users see them: `POST
/// /validate`, saving a pipeline, starting an ephemeral one — for parameters written literally —
/// and, for parameters with templates, as the step runs (before `execute`). The Greeter plugin
/// refuses a language it does not speak, which the engine only warns about.
@Suite("Plugin parameter checks", .serialized)
struct ParameterCheckTests {
    static let literal: JSONValue = [
        "name": "checked",
        "steps": [["id": "g", "name": "g", "action": "greet", "params": ["name": "Ada", "language": "xx"]]],
    ]
    static let templated: JSONValue = [
        "name": "checked-later",
        "parameters": [["name": "lang", "default": "yy"]],
        "steps": [["id": "t", "name": "t", "action": "greet", "params": ["name": "Ada", "language": "{{ params.lang }}"]]],
    ]
    static let refusal = "Step 'g': language must be one of: de, en, es, fr"

    @Test("at validate, save, update and start; templated parameters when the step runs", arguments: PluginIsolation.allCases)
    func checkedWhereUsersSeeThem(isolation: PluginIsolation) async throws {
        try await APIServerProcess.with(.sqlite, environment: ["BUDPIPELINE_PLUGIN_ISOLATION": isolation.rawValue]) { server in
            let report = try await server.send("POST", "/validate", json: ["dag": Self.literal]).json
            #expect(report["valid"] == false && report["errors"] == [.string(Self.refusal)], "\(report)")

            let created = try await server.send("POST", "/pipelines", json: ["dag": Self.literal])
            #expect(created.status == 400 && created.json["detail"]?["errors"] == [.string(Self.refusal)], "\(created.text)")

            // A good pipeline saved, then updated with a bad language: refused, nothing changed.
            let good: JSONValue = [
                "name": "checked", "steps": [["id": "g", "name": "g", "action": "greet", "params": ["name": "Ada", "language": "fr"]]],
            ]
            let saved = try await server.send("POST", "/pipelines", json: ["dag": good])
            let id = try #require(saved.json["id"]?.stringValue, "\(saved.text)")
            let updated = try await server.send("PUT", "/pipelines/\(id)", json: ["dag": Self.literal])
            #expect(updated.status == 400 && updated.text.contains(Self.refusal), "\(updated.text)")
            let stored = try await server.send("GET", "/pipelines/\(id)").json
            #expect(stored["version"] == saved.json["version"] && stored["dag"]?["steps"]?[0]?["params"]?["language"] == "fr")

            let run = try await server.send("POST", "/executions/run", json: ["pipeline_definition": Self.literal])
            #expect(run.status == 400 && run.json["code"] == "INVALID_PIPELINE" && run.text.contains(Self.refusal), "\(run.text)")

            // With a template the language is known only when the step runs: checked then.
            let later = try await server.send("POST", "/executions/run", json: ["pipeline_definition": Self.templated])
            let laterID = try #require(later.json["execution_id"]?.stringValue, "\(later.text)")
            #expect(try await server.finished(laterID)["status"] == "FAILED")
            let steps = try await server.send("GET", "/executions/\(laterID)/steps").json["steps"]?.arrayValue ?? []
            let message = steps.first?["error_message"]?.stringValue ?? ""
            #expect(message == "invalid parameters: language must be one of: de, en, es, fr", "\(steps)")
            // And a good value passes both checks.
            let fine = try await server.send(
                "POST", "/executions/run", json: ["pipeline_definition": Self.templated, "params": ["lang": "de"]])
            let fineID = try #require(fine.json["execution_id"]?.stringValue, "\(fine.text)")
            let finished = try await server.finished(fineID)
            #expect(finished["status"] == "COMPLETED" && finished["final_outputs"]?["t"]?["greeting"] == "Hallo, Ada.", "\(finished)")
        }
    }
}
