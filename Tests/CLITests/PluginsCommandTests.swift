import BudJSON
import Foundation
import Testing
import _BudPipelineTestSupport

/// `budpipeline plugins ...` as an operator runs it.
@Suite struct PluginsCommandTests {
    static let brokenFixtures = [
        "no_entry", "entry_v2_only", "wrong_major", "wrong_signature", "small_struct", "bad_metadata_json", "invalid_metadata",
        "duplicate_action", "init_failure",
    ]

    @Test func listsTheExamplePluginsAndRefusesEveryBrokenFixture() async throws {
        let fixtures = try await FixturePlugins.shared.directory(with: Self.brokenFixtures)
        let result = try await ProcessRunner.run(
            Repository.executable,
            ["plugins", "list"],
            environment: ["BUDPIPELINE_PLUGIN_DIRS": "\(Repository.productsDirectory):\(fixtures)"]
        )
        #expect(result.status == 0, "\(result.standardError)")
        let lines = result.standardOutput.split(separator: "\n").map(String.init)
        let actions = lines.compactMap { line -> String? in
            let columns = line.split(separator: " ", omittingEmptySubsequences: true)
            return columns.count == 6 && line.hasPrefix("  ") ? String(columns[0]) : nil
        }
        #expect(
            Array(actions.dropFirst()) == [
                "await_approval", "cluster_health", "deployment_create", "deployment_delete", "deployment_scale", "greet", "model_add",
                "model_benchmark", "model_delete", "notification", "simulation_run", "text_stats",
            ])
        #expect(result.standardOutput.contains("Loaded actions (12) from 6 plugin(s); host plugin ABI 1.0:"))
        #expect(lines.contains { $0.hasPrefix("  greet ") && $0.contains(" in-process ") }, "the RUNS column")
        #expect(result.standardOutput.contains("Refused (\(Self.brokenFixtures.count)):"))
        let expected = [
            "libno_entry.so: no entry symbol bp_plugin_entry_v1: not a BudPipeline plugin",
            "libentry_v2_only.so: no entry symbol bp_plugin_entry_v1: not a BudPipeline plugin for ABI major 1; it exports bp_plugin_entry_v2",
            "libwrong_major.so: built for ABI major 2; this host supports ABI major 1",
            "libwrong_signature.so: build signature mismatch: pointer_size is 4, the host's is 8",
            "libsmall_struct.so: descriptor struct_size 56 is smaller than the ABI 1.0 minimum of 72 bytes",
            "libbad_metadata_json.so: action[0] metadata is not valid JSON",
            "libinvalid_metadata.so: action[1] ('invalid_metadata_unlabelled') metadata: param[0].label is required",
            "libduplicate_action.so: action type 'greet' is already provided by \(Repository.productsDirectory)/libGreeter.so",
            "libinit_failure.so: init failed (FATAL_ERROR): database unreachable at db:5432",
        ]
        for reason in expected {
            #expect(lines.contains { $0.hasPrefix("  \(fixtures)/") && $0.contains(reason) }, "missing refusal: \(reason)")
        }
    }

    @Test func printsJSONAndFailsInStrictMode() async throws {
        let fixtures = try await FixturePlugins.shared.directory(with: ["no_entry"])
        let environment = ["BUDPIPELINE_PLUGIN_DIRS": "\(Repository.productsDirectory):\(fixtures)"]
        let result = try await ProcessRunner.run(Repository.executable, ["plugins", "list", "--json"], environment: environment)
        #expect(result.status == 0)
        let document = try JSONValue(parsing: result.standardOutput)
        #expect(
            document["plugins"]?.arrayValue?.compactMap { $0["name"]?.stringValue }.sorted() == [
                "cluster_deploy", "greeter", "model_benchmark", "model_operations", "notification", "text_stats",
            ])
        #expect(document["refused"]?[0]?["reason"] == "no entry symbol bp_plugin_entry_v1: not a BudPipeline plugin")
        #expect(document["host_abi"] == "1.0")
        #expect(document["plugins"]?.arrayValue?.allSatisfy { $0["isolation"] == "in-process" && $0["healthy"] == true } == true)
        let strict = try await ProcessRunner.run(Repository.executable, ["plugins", "list", "--strict"], environment: environment)
        #expect(strict.status == 1)
        // Isolated, the same plugins load in processes of their own.
        let isolated = try await ProcessRunner.run(
            Repository.executable, ["plugins", "list", "--json"],
            environment: ["BUDPIPELINE_PLUGIN_DIRS": Repository.productsDirectory, "BUDPIPELINE_PLUGIN_ISOLATION": "process"])
        let isolatedDocument = try JSONValue(parsing: isolated.standardOutput)
        #expect(isolatedDocument["plugins"]?.arrayValue?.count == 6 && isolatedDocument["refused"] == [], "\(isolated.standardOutput)")
        #expect(isolatedDocument["plugins"]?.arrayValue?.allSatisfy { $0["isolation"] == "process" } == true)
    }

    @Test func theVersionNamesThePluginABI() async throws {
        let result = try await ProcessRunner.run(Repository.executable, ["--version"])
        #expect(result.standardOutput == "0.1.0 (plugin ABI 1.0, Swift 6.3)\n")
    }

    @Test func serveRefusesToStartWithARefusedPluginWhenStrict() async throws {
        let fixtures = try await FixturePlugins.shared.directory(with: ["init_failure"])
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("strict-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: data) }
        let environment = ["BUDPIPELINE_PLUGIN_DIRS": "\(Repository.productsDirectory):\(fixtures)", "BUDPIPELINE_DATA_DIR": data]
        for arguments in [["serve", "--migrate", "--port", "0", "--strict-plugins"], ["worker", "--migrate", "--strict-plugins"]] {
            let result = try await ProcessRunner.run(Repository.executable, arguments, environment: environment, timeout: .seconds(60))
            #expect(result.status == 1, "\(arguments): \(result.standardError)")
            let lastLine = result.standardError.split(separator: "\n").last.map(String.init) ?? ""
            #expect(
                lastLine.hasPrefix("Error: plugin refused with --strict-plugins: ") && lastLine.contains("init failed (FATAL_ERROR)"),
                "\(arguments): \(result.standardError)")
        }
        let byEnvironment = try await ProcessRunner.run(
            Repository.executable, ["worker", "--migrate"], environment: environment.merging(["BUDPIPELINE_STRICT_PLUGINS": "true"]) { $1 },
            timeout: .seconds(60))
        #expect(byEnvironment.status == 1 && byEnvironment.standardError.contains("--strict-plugins"))
    }

    @Test func reportsBadConfigurationInOneLine() async throws {
        let result = try await ProcessRunner.run(
            Repository.executable,
            ["plugins", "list"],
            environment: ["BUDPIPELINE_PLUGIN_CALL_TIMEOUT_SECONDS": "soon"]
        )
        #expect(result.status == 1)
        #expect(result.standardError == "Error: BUDPIPELINE_PLUGIN_CALL_TIMEOUT_SECONDS must be a positive number, got 'soon'\n")
    }

    @Test func refusesAnUnknownLogLevel() async throws {
        let result = try await ProcessRunner.run(Repository.executable, ["plugins", "list"], environment: ["LOG_LEVEL": "loud"])
        #expect(result.status == 1)
        #expect(result.standardError == "Error: LOG_LEVEL=loud is not one of trace, debug, info, notice, warning, error, critical\n")
        let accepted = try await ProcessRunner.run(Repository.executable, ["plugins", "list"], environment: ["LOG_LEVEL": "DEBUG"])
        #expect(accepted.status == 0)
    }

    @Test func inspectsOneLibrary() async throws {
        let greeter = "\(Repository.productsDirectory)/libGreeter.so"
        let text = try await ProcessRunner.run(Repository.executable, ["plugins", "inspect", greeter])
        #expect(text.status == 0)
        #expect(text.standardOutput.hasPrefix("Plugin greeter 1.0.0: Example Swift plugin built with PluginKit.\n"))
        #expect(text.standardOutput.contains("Action await_approval — Await Approval (Examples, v1.0.0, event_driven)"))
        let json = try await ProcessRunner.run(Repository.executable, ["plugins", "inspect", "--json", greeter])
        let document = try JSONValue(parsing: json.standardOutput)
        #expect(document["abi"] == "1.0")
        #expect(document["actions"]?[0]?["type"] == "greet")
        #expect(document["actions"]?[0]?["params"]?[1]?["options"]?[1]?["value"] == "fr")
    }

    @Test func inspectRefusesABrokenLibraryWithItsReason() async throws {
        let broken = try await FixturePlugins.shared.library("wrong_signature")
        let result = try await ProcessRunner.run(Repository.executable, ["plugins", "inspect", broken])
        #expect(result.status == 1)
        #expect(result.standardError == "Error: \(broken): build signature mismatch: pointer_size is 4, the host's is 8\n")
        let missing = try await ProcessRunner.run(Repository.executable, ["plugins", "inspect", "/nonexistent/libx.so"])
        #expect(missing.status == 1)
        #expect(missing.standardError.hasPrefix("Error: /nonexistent/libx.so: cannot load the library: "))
        #expect(missing.standardError.split(separator: "\n").count == 1)
    }

    @Test(arguments: ["in-process", "process"])
    func callMakesOneCallAndPrintsTheAnswer(isolation: String) async throws {
        let library = "\(Repository.productsDirectory)/libTextStats.so"
        let executed = try await ProcessRunner.run(
            Repository.executable,
            [
                "plugins", "call", library, "execute", "--action", "text_stats", "--request", #"{"params":{"text":"a b"}}"#,
                "--isolation", isolation,
            ])
        #expect(executed.status == 0, "\(executed.standardError)")
        let answer = try JSONValue(parsing: Array(executed.standardOutput.utf8))
        #expect(answer["status"] == "OK" && answer["status_code"] == 0 && answer["error"] == "", "\(answer)")
        let output = try JSONValue(parsing: Array((answer["output"]?.stringValue ?? "").utf8))
        #expect(output["outputs"]?["words"] == 2)
        let configured = try await ProcessRunner.run(
            Repository.executable,
            [
                "plugins", "call", library, "execute", "--action", "text_stats", "--request", #"{"params":{"text":"abcdef"}}"#,
                "--config", #"{"max_text_bytes":4}"#, "--isolation", isolation,
            ])
        let refused = try JSONValue(parsing: Array(configured.standardOutput.utf8))
        #expect(refused["status"] == "FATAL_ERROR" && refused["error"]?.stringValue?.contains("max_text_bytes (4)") == true, "\(refused)")
        for (arguments, message) in [
            (["nope", "--action", "text_stats"], "Error: FUNCTION must be one of execute, on_event, validate_params, cleanup, got 'nope'"),
            (["execute", "--action", "missing"], "Error: no loaded plugin provides action 'missing'"),
            (["execute", "--action", "text_stats", "--request", "[1]"], "Error: --request must be a JSON object"),
            (
                ["execute", "--action", "text_stats", "--request", String(repeating: "[", count: 5000)],
                "Error: --request is not valid JSON: "
            ),
            (["execute", "--action", "text_stats", "--config", "{"], "Error: --config is not valid JSON: "),
        ] {
            let failed = try await ProcessRunner.run(Repository.executable, ["plugins", "call", library] + arguments)
            #expect(failed.status != 0 && failed.standardError.hasPrefix(message), "\(failed.standardError)")
        }
    }
}
