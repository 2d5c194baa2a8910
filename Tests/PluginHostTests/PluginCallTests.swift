import BudJSON
import BudPipelineHost
import Foundation
import InMemoryLogging
import Logging
import PluginSchema
import Synchronization
import Testing
import _BudPipelineTestSupport

/// Calls into real plugins through the host: the frozen ABI 1.0 fixture and the C example.
@Suite struct PluginCallTests {
    private func request(_ action: String, _ params: JSONObject) -> ExecuteRequest {
        ExecuteRequest(action: action, executionID: "exec-1", stepID: "step-a", idempotencyKey: "exec-1/step-a/0", params: params)
    }

    @Test func frozenV1FixtureUsesEveryHostService() async throws {
        let invoker = RecordingServiceInvoker { _ throws(ServiceInvocationError) in
            ServiceInvocationResponse(statusCode: 201, body: Array(#"{"id":7}"#.utf8))
        }
        let file = try await Libraries.fixture("frozen_v1", header: .frozenV1)
        let options = TestHost.Options(files: [file], settings: ["frozen_v1": ["greeting": "hej", "other": 1]], invoker: invoker)
        try await TestHost.with(options) { loaded in
            let reports = Mutex<[PluginProgress]>([])
            let context = PluginCallContext(executionID: "exec-1", stepID: "step-a") { progress in
                reports.withLock { $0.append(progress) }
            }
            let outcome = try await loaded.host.execute(request("frozen_probe", ["mode": "ok"]), context: context)
            guard case .completed(let outputs) = outcome else {
                Issue.record("expected a completed step, got \(outcome)")
                return
            }
            #expect(outputs["progress_status"] == 0)
            #expect(outputs["invalid_progress_status"] == 6)
            #expect(outputs["config_status"] == 0)
            #expect(outputs["greeting"] == "hej")
            #expect(outputs["missing_config_status"] == 4)
            #expect(outputs["service_status"] == 0)
            #expect(outputs["http_status"] == 201)
            #expect(outputs["service_body"] == ["id": 7])
            #expect(outputs["cancelled"] == 0)
            #expect(outputs["input_bytes"]?.intValue ?? 0 > 50)
            #expect(reports.withLock { $0 } == [PluginProgress(percent: 50, etaSeconds: 7, message: "half way")])
            let call = try #require(invoker.invocations.first)
            #expect(call.appID == "echo")
            #expect(call.method == "POST")
            #expect(call.path == "items?x=1")
            #expect(call.body == Array(#"{"q":1}"#.utf8))
            #expect(call.timeout == .milliseconds(2500))
            #expect(call.pluginName == "frozen_v1")
            #expect(call.executionID == "exec-1")
            let line = try #require(loaded.logs.entries.first { $0.message.description == "frozen probe running" })
            #expect(line.level == .info)
            #expect(line.metadata["plugin"] == "frozen_v1")
            #expect(line.metadata["action"] == "frozen_probe")
            #expect(line.metadata["execution_id"] == "exec-1")
            #expect(line.metadata["step_id"] == "step-a")
        }
    }

    @Test func frozenV1FixtureOutcomes() async throws {
        let file = try await Libraries.fixture("frozen_v1", header: .frozenV1)
        try await TestHost.with(.init(files: [file])) { loaded in
            let failed = try await loaded.host.execute(request("frozen_probe", ["mode": "fail"]))
            #expect(failed == .failed(message: "frozen failure", retryable: false, outputs: ["partial": 1]))
            #expect(
                try await loaded.host.execute(request("frozen_probe", ["mode": "retry"])) == .failed(message: "try later", retryable: true))
            let awaiting = try await loaded.host.execute(request("frozen_probe", ["mode": "await"]))
            #expect(awaiting == .awaitingEvent(externalWorkflowID: "frozen-42", timeoutSeconds: 90, outputs: ["state": "waiting"]))
            let outcome = try await loaded.host.execute(request("frozen_probe", [:]))
            guard case .completed(let outputs) = outcome else {
                Issue.record("expected a completed step, got \(outcome)")
                return
            }
            #expect(outputs["greeting"] == .null)
            #expect(outputs["service_status"] == 5)
            #expect(outputs["service_body"] == "service invocation is not configured on this host")
        }
    }

    @Test func frozenV1FixtureEventsValidationAndCleanup() async throws {
        let file = try await Libraries.fixture("frozen_v1", header: .frozenV1)
        try await TestHost.with(.init(files: [file])) { loaded in
            func event(_ body: JSONValue) -> EventRequest {
                EventRequest(
                    action: "frozen_probe", executionID: "e", stepID: "s", externalWorkflowID: "frozen-42", eventType: "x", event: body)
            }
            #expect(
                try await loaded.host.handleEvent(event(["decision": "go"])) == .complete(status: .completed, outputs: ["decided": "go"]))
            let stopped = try await loaded.host.handleEvent(event(["decision": "stop"]))
            #expect(stopped == .complete(status: .failed, outputs: [:], error: "stopped by event"))
            #expect(try await loaded.host.handleEvent(event(["percent": 1])) == .updateProgress(percent: 40, etaSeconds: 120))
            #expect(try await loaded.host.handleEvent(event(["other": true])) == .ignore)
            #expect(try await loaded.host.validateParams(action: "frozen_probe", params: ["mode": "bad"]) == ["frozen says no"])
            #expect(try await loaded.host.validateParams(action: "frozen_probe", params: ["mode": "ok"]) == [])
            let cleanup = CleanupRequest(
                action: "frozen_probe", executionID: "e", stepID: "s", externalWorkflowID: "frozen-42", reason: .cancelled)
            #expect(try await loaded.host.cleanup(cleanup) == nil)
            #expect(loaded.logs.entries.contains { $0.message.description == "frozen cleanup" && $0.level == .notice })
        }
    }

    @Test func textStatsCountsAndValidates() async throws {
        let file = try Libraries.product("TextStats")
        try await TestHost.with(.init(files: [file], settings: ["text_stats": ["max_text_bytes": 64]])) { loaded in
            let outcome = try await loaded.host.execute(request("text_stats", ["text": "héllo wörld\nsecond line 😀"]))
            #expect(outcome == .completed(outputs: ["characters": 25, "bytes": 30, "words": 5, "lines": 2]))
            #expect(
                try await loaded.host.execute(request("text_stats", ["text": ""]))
                    == .completed(outputs: ["characters": 0, "bytes": 0, "words": 0, "lines": 0]))
            #expect(try await loaded.host.execute(request("text_stats", [:])) == .failed(message: "text is required"))
            #expect(try await loaded.host.execute(request("text_stats", ["text": 3])) == .failed(message: "text must be a string"))
            let long = String(repeating: "x", count: 65)
            let tooLong = try await loaded.host.execute(request("text_stats", ["text": .string(long)]))
            #expect(tooLong == .failed(message: "text is 65 bytes, more than max_text_bytes (64)"))
            #expect(try await loaded.host.validateParams(action: "text_stats", params: [:]) == ["text is required"])
            #expect(try await loaded.host.validateParams(action: "text_stats", params: ["text": "ok"]) == [])
            #expect(
                try await loaded.host.handleEvent(
                    EventRequest(action: "text_stats", executionID: "e", stepID: "s", externalWorkflowID: "x", eventType: "t", event: [:]))
                    == .ignore)
        }
    }

    @Test func textStatsRefusesABadConfiguration() async throws {
        let file = try Libraries.product("TextStats")
        try await TestHost.with(.init(files: [file], settings: ["text_stats": ["max_text_bytes": "lots"]])) { loaded in
            #expect(
                loaded.host.refusals == [
                    PluginRefusal(file: file, reason: "init failed (FATAL_ERROR): max_text_bytes must be a positive integer")
                ])
        }
    }

    @Test func unknownActionsAreErrors() async throws {
        try await TestHost.with(.init()) { loaded in
            await #expect(throws: PluginCallError(.unknownAction, "no loaded plugin provides action 'nothing'")) {
                try await loaded.host.execute(request("nothing", [:]))
            }
        }
    }

    @Test func resultsOverTheLimitFailTheCall() async throws {
        let file = try Libraries.product("TextStats")
        try await TestHost.with(.init(files: [file], limits: PluginLimits(maximumOutputBytes: 20))) { loaded in
            let overLimit = try await loaded.host.execute(request("text_stats", ["text": "abc"]))
            #expect(overLimit == .failed(message: "the plugin wrote more than the limit of 20 bytes"))
        }
    }
}

/// Timeouts, health and threading of plugin calls.
@Suite struct PluginCallTimeoutTests {
    private func request(_ action: String, _ params: JSONObject = [:]) -> ExecuteRequest {
        ExecuteRequest(action: action, executionID: "e", stepID: "s", idempotencyKey: "e/s/0", params: params)
    }

    @Test func anOverrunFailsTheCallAndQuarantinesThePluginUntilItReturns() async throws {
        let slow = try await Libraries.fixture("slow")
        let textStats = try Libraries.product("TextStats")
        try await TestHost.with(.init(files: [slow, textStats], threads: 1)) { loaded in
            let started = ContinuousClock.now
            await #expect(
                throws: PluginCallError(
                    .timedOut,
                    "plugin 'slow': execute of action 'sleep_ms' did not return within 0.2s; the plugin is marked unhealthy until it returns"
                )
            ) {
                // Long enough that the plugin is still stuck, on a loaded machine, when the checks below run.
                try await loaded.host.execute(request("sleep_ms", ["ms": 10_000]), timeout: .milliseconds(200))
            }
            // Well before the call's own 10 s; the bound is wide because CI runs every suite at once on 2 cores.
            #expect(ContinuousClock.now - started < .seconds(5))
            let slowPlugin = try #require(loaded.host.plugins.first { $0.name == "slow" })
            #expect(!slowPlugin.healthStatus.isHealthy)
            // Another plugin keeps working although the only pool thread is stuck: the pool replaced it.
            #expect(
                try await loaded.host.execute(request("text_stats", ["text": "a b"]))
                    == .completed(outputs: ["characters": 3, "bytes": 3, "words": 2, "lines": 1]))
            await #expect(throws: PluginCallError.self) { try await loaded.host.execute(request("sleep_ms", ["ms": 1])) }
            do {
                _ = try await loaded.host.execute(request("sleep_ms", ["ms": 1]))
            } catch let error as PluginCallError {
                #expect(error.kind == .pluginUnhealthy)
                #expect(error.message.hasPrefix("plugin 'slow' is unhealthy: execute of action 'sleep_ms' did not return within 0.2s"))
            }
            try await eventually { slowPlugin.healthStatus.isHealthy }
            #expect(try await loaded.host.execute(request("sleep_ms", ["ms": 1])) == .completed(outputs: ["slept": true]))
            #expect(loaded.logs.entries.contains { $0.message.description == "plugin call overran its timeout; plugin marked unhealthy" })
            #expect(loaded.logs.entries.contains { $0.message.description == "plugin call returned after its timeout" })
        }
    }

    @Test func aCooperativePluginSeesTheCancellation() async throws {
        let slow = try await Libraries.fixture("slow")
        try await TestHost.with(.init(files: [slow])) { loaded in
            await #expect(throws: PluginCallError.self) {
                try await loaded.host.execute(request("wait_for_cancel"), timeout: .milliseconds(100))
            }
            let plugin = try #require(loaded.host.plugins.first)
            try await eventually { plugin.healthStatus.isHealthy }
        }
    }

    @Test func callsOfAPluginThatIsNotThreadSafeNeverOverlap() async throws {
        let file = try await Libraries.fixture("not_thread_safe")
        try await TestHost.with(.init(files: [file], threads: 8)) { loaded in
            let outcomes = try await withThrowingTaskGroup(of: StepOutcome.self) { group in
                for _ in 0..<16 {
                    group.addTask { try await loaded.host.execute(request("overlap")) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.count == 16)
            #expect(outcomes.allSatisfy { $0 == .completed(outputs: ["highest": 1]) })
        }
    }

    @Test func threadSafePluginsRunInParallel() async throws {
        // The probe counts the calls running at once (a private copy of the library: its own count).
        let file = try await Libraries.fixture("runtime_probe")
        try await TestHost.with(.init(files: [file], threads: 8)) { loaded in
            let outcomes = try await withThrowingTaskGroup(of: StepOutcome.self) { group in
                for _ in 0..<8 {
                    group.addTask { try await loaded.host.execute(request("probe_concurrency", ["sleep_ms": 300])) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let mostAtOnce =
                outcomes.compactMap { outcome -> Int? in
                    guard case .completed(let outputs) = outcome else { return nil }
                    return outputs["most_at_once"]?.intValue
                }.max() ?? 0
            #expect(mostAtOnce > 1, "calls of a thread-safe plugin overlap")
        }
    }

    @Test func aCallThatFindsNoThreadTimesOutWithoutBlamingThePlugin() async throws {
        let file = try await Libraries.fixture("slow")
        try await TestHost.with(.init(files: [file], threads: 1, maximumThreads: 1)) { loaded in
            // The only thread is held until the call is cancelled, however slow the machine; the
            // second call is tried until the first holds the thread (it may not have started yet).
            let busy = Task { try await loaded.host.execute(request("wait_for_cancel")) }
            var refusal: PluginCallError?
            for _ in 0..<200 where refusal == nil {
                do {
                    _ = try await loaded.host.execute(request("sleep_ms", ["ms": 1]), timeout: .milliseconds(100))
                } catch let error as PluginCallError {
                    refusal = error
                }
            }
            #expect(
                refusal
                    == PluginCallError(
                        .timedOutWaiting, "plugin 'slow': execute of action 'sleep_ms' found no free plugin thread within 0.1s"))
            busy.cancel()
            _ = await busy.result
            #expect(loaded.host.plugins.first?.healthStatus == .healthy)
        }
    }

    @Test func cancellingTheCallerEndsTheWait() async throws {
        let file = try await Libraries.fixture("slow")
        try await TestHost.with(.init(files: [file])) { loaded in
            let task = Task { try await loaded.host.execute(request("wait_for_cancel")) }
            try await Task.sleep(for: .milliseconds(50))
            task.cancel()
            await #expect(throws: PluginCallError(.cancelled, "the call to action 'wait_for_cancel' was cancelled")) {
                try await task.value
            }
        }
    }
}
