import BudJSON
import Foundation
import Testing
import _BudPipelineTestSupport

/// `budpipeline plugins check FILE`, as a team runs it in its own CI: the example plugins pass,
/// every broken fixture fails with the fault named, and the exit status says which.
@Suite struct PluginsCheckTests {
    static func check(_ file: String, _ extra: [String] = []) async throws -> ProcessOutput {
        try await ProcessRunner.run(Repository.executable, ["plugins", "check", file] + extra, timeout: .seconds(120))
    }

    @Test func theExamplePluginsPass() async throws {
        for name in ["Greeter", "TextStats", "ClusterDeploy", "ModelOperations", "ModelBenchmark", "Notification"] {
            let result = try await Self.check("\(Repository.productsDirectory)/lib\(name).so")
            #expect(result.status == 0, "\(name): \(result.standardOutput)\(result.standardError)")
            #expect(result.standardOutput.hasSuffix("passed\n") && result.standardOutput.contains("loaded in a plugin process"))
        }
        let executed = try await Self.check("\(Repository.productsDirectory)/libTextStats.so", ["--execute", "--json"])
        let report = try JSONValue(parsing: executed.standardOutput)
        #expect(report["passed"] == true && report["plugin"] == "text_stats" && report["abi"] == "1.0")
        let calls = report["actions"]?[0]?["calls"]?.arrayValue ?? []
        #expect(calls.contains { $0["function"] == "execute (generated parameters)" && $0["outcome"] == "passed" }, "\(calls)")
    }

    @Test func eachProtocolFaultIsCaught() async throws {
        let file = try await FixturePlugins.shared.library("check_faults")
        let result = try await Self.check(file, ["--timeout", "1"])
        #expect(result.status == 1)
        let output = result.standardOutput
        let expectations: [(action: String, line: String)] = [
            ("bad_validate", "FAIL validate_params (generated parameters): plugin 'check_faults' action 'bad_validate' validate_params"),
            (
                "slow_validate",
                "FAIL validate_params (generated parameters): plugin 'check_faults': validate_params of action 'slow_validate' did not return within 1s"
            ),
            ("abort_cleanup", "FAIL cleanup (a cancelled step): plugin 'check_faults': its process ended (signal 6 (SIGABRT))"),
            ("await_from_event", "FAIL on_event (an unrelated event): plugin 'check_faults' action 'await_from_event' on_event"),
        ]
        for expectation in expectations {
            #expect(output.contains(expectation.line), "\(expectation.action): \(output)")
        }
        #expect(output.contains("FAIL a plugin used a call handle after its call had returned"), "\(output)")
        #expect(output.hasSuffix("FAILED\n"))
    }

    @Test func aShutdownThatNeverReturnsFailsTheCheckAndLeavesNothingRunning() async throws {
        let file = try await FixturePlugins.shared.library("shutdown_hang")
        let started = ContinuousClock.now
        let result = try await Self.check(file, ["--timeout", "1"])
        #expect(result.status == 1)
        #expect(
            result.standardOutput.contains("FAIL plugin shutdown did not return in time; its process was ended"), "\(result.standardOutput)"
        )
        // Ended at the timeout, not waited for (the command itself would hang otherwise).
        #expect(ContinuousClock.now - started < .seconds(60))
    }

    @Test func aRefusedLibraryFailsWithItsReason() async throws {
        for (name, reason) in [
            ("wrong_major", "built for ABI major 2; this host supports ABI major 1"),
            ("init_failure", "init failed (FATAL_ERROR): database unreachable at db:5432"),
            ("crash_probe", ""),
        ] {
            let file = try await FixturePlugins.shared.library(name)
            let result = try await Self.check(file)
            if reason.isEmpty {
                // crash_probe's faults are in on_event (an answer that is not JSON).
                #expect(result.status == 1 && result.standardOutput.contains("FAIL on_event"), "\(result.standardOutput)")
            } else {
                #expect(result.status == 1 && result.standardOutput.contains("refused: \(reason)"), "\(name): \(result.standardOutput)")
            }
        }
    }
}
