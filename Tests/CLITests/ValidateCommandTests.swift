import BudJSON
import Foundation
import Testing
import _BudPipelineTestSupport

/// `budpipeline validate FILE`.
@Suite struct ValidateCommandTests {
    private func write(_ text: String, extension suffix: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("dag-\(UUID().uuidString).\(suffix)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func validatesTheReferenceExamples() async throws {
        for name in ["sample_dag", "control_flow_dag", "ml_deployment_dag", "cluster_health_check"] {
            let file = Repository.path("Tests/Fixtures/dags/\(name).json")
            let result = try await ProcessRunner.run(Repository.executable, ["validate", file])
            #expect(result.status == 0, "\(name): \(result.standardOutput)")
            #expect(result.standardOutput.hasPrefix("\(file): valid ("))
        }
    }

    @Test func loadsPluginActionsForTheCheck() async throws {
        let file = try write(
            #"{"dag": {"name": "p", "steps": [{"id": "g", "name": "G", "action": "greet", "params": {"name": "Ada"}}]}}"#,
            extension: "json"
        )
        defer { try? FileManager.default.removeItem(atPath: file) }
        let withPlugins = try await ProcessRunner.run(
            Repository.executable,
            ["validate", file],
            environment: ["BUDPIPELINE_PLUGIN_DIRS": Repository.productsDirectory]
        )
        #expect(withPlugins.standardOutput == "\(file): valid (1 steps)\n")
        let builtinsOnly = try await ProcessRunner.run(Repository.executable, ["validate", "--builtins-only", file])
        #expect(builtinsOnly.standardOutput == "\(file): valid (1 steps)\nwarning: Action 'greet' is not registered\n")
    }

    @Test func reportsAnInvalidYAMLDAGAndExitsWithOne() async throws {
        let file = try write(
            """
            name: broken
            steps:
              - id: a
                name: A
                action: log
                depends_on: [b]
              - id: b
                name: B
                action: log
                depends_on: [a]
            """,
            extension: "yaml"
        )
        defer { try? FileManager.default.removeItem(atPath: file) }
        let text = try await ProcessRunner.run(Repository.executable, ["validate", "--builtins-only", file])
        #expect(text.status == 1)
        #expect(text.standardOutput == "\(file): invalid\nerror: Cyclic dependency detected: a -> b -> a\n")
        let json = try await ProcessRunner.run(Repository.executable, ["validate", "--builtins-only", "--json", file])
        #expect(json.status == 1)
        let report = try JSONValue(parsing: json.standardOutput)
        #expect(
            report == [
                "valid": false, "errors": ["Cyclic dependency detected: a -> b -> a"], "warnings": [], "step_count": 0, "has_cycles": true,
            ])
    }

    @Test func unreadableFilesFailInOneLine() async throws {
        let missing = try await ProcessRunner.run(Repository.executable, ["validate", "/nonexistent/dag.yaml"])
        #expect(missing.status == 1)
        #expect(missing.standardError == "Error: cannot read /nonexistent/dag.yaml\n")
        let file = try write("{\"name\": ", extension: "json")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let malformed = try await ProcessRunner.run(Repository.executable, ["validate", file])
        #expect(malformed.status == 1)
        #expect(malformed.standardError == "Error: \(file): invalid JSON: unexpected end of input at byte 9\n")
    }
}
