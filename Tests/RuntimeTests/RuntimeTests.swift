import BudJSON
import Foundation
import PipelineEngine
import PipelineRuntime
import PluginSchema
import Storage
import Synchronization
import Testing
import _BudPipelineTestSupport

/// The runtime driving real plugins against both backends, in one process.
@Suite("Runtime")
struct RuntimeTests {
    static func step(_ id: String, _ action: String, params: JSONObject = [:], after: [String] = [], extra: JSONObject = [:]) -> JSONValue {
        var step: JSONObject = ["id": .string(id), "name": .string("Step \(id)"), "action": .string(action), "params": .object(params)]
        if !after.isEmpty { step["depends_on"] = .array(after.map(JSONValue.string)) }
        return .object(step.merging(extra))
    }

    static func dag(_ steps: [JSONValue], outputs: JSONObject = [:], settings: JSONObject = [:], parameters: [JSONValue] = []) -> JSONValue
    {
        var dag: JSONObject = ["name": "runtime-test", "steps": .array(steps)]
        if !outputs.isEmpty { dag["outputs"] = .object(outputs) }
        if !settings.isEmpty { dag["settings"] = .object(settings) }
        if !parameters.isEmpty { dag["parameters"] = .array(parameters) }
        return .object(dag)
    }

    /// Leases that run out only after a test is over: work is never taken over by the sweep.
    static func longLeases(_ configuration: inout RuntimeConfiguration) {
        configuration.leaseDuration = .seconds(60)
    }

    /// The connection fails after a transition committed, before its answer: the retry finds the
    /// transition stored and does what follows a commit — the next step is called at once and the
    /// live stream gets its events — instead of dropping the inputs as stale.
    @Test("a transition stored though its commit reported an error is carried on", arguments: TestBackend.available)
    func aCommitWithALostAcknowledgementIsCarriedOn(backend: TestBackend) async throws {
        let losing = LosingAcknowledgementDatabase.Made()
        try await RuntimeHarness.with(backend, configure: Self.longLeases, storeDatabase: losing.wrap) { harness in
            let database = try #require(losing.database)
            let bus = harness.recordBus()
            // The first transition after the start is the first step's result.
            database.arm()
            let dag = Self.dag([Self.step("first", "probe_echo"), Self.step("second", "probe_echo", after: ["first"])])
            let started = ContinuousClock.now
            let (execution, steps) = try await harness.run(dag, timeout: .seconds(20))
            #expect(database.lostCount == 1)
            #expect(execution.status == .completed)
            #expect(steps.map(\.state.status) == [.completed, .completed])
            // Without carrying on, the second step would wait for its lease (60 s) to run out.
            #expect(ContinuousClock.now - started < .seconds(10))
            let events = try await bus.eventTypes(of: execution.id, through: "workflow_completed", timeout: .seconds(5))
            #expect(events.filter { $0 == "step_completed" }.count == 2)
        }
    }

    /// The same for the commit that stores a new execution: the start succeeds and the execution
    /// runs at once, instead of the caller getting an error for an execution that exists.
    @Test("a new execution stored though its commit reported an error starts", arguments: TestBackend.available)
    func aStartWithALostAcknowledgementRuns(backend: TestBackend) async throws {
        let losing = LosingAcknowledgementDatabase.Made()
        try await RuntimeHarness.with(backend, configure: Self.longLeases, storeDatabase: losing.wrap) { harness in
            let database = try #require(losing.database)
            database.arm(spotting: "INSERT INTO pipeline_execution")
            let started = ContinuousClock.now
            let (execution, steps) = try await harness.run(
                Self.dag([Self.step("first", "probe_echo"), Self.step("second", "probe_echo", after: ["first"])]),
                timeout: .seconds(20))
            #expect(database.lostCount == 1)
            #expect(execution.status == .completed)
            #expect(steps.map(\.state.status) == [.completed, .completed])
            #expect(ContinuousClock.now - started < .seconds(10))
        }
    }

    @Test("a chain of plugin and built-in steps completes and stores everything", arguments: TestBackend.available)
    func chainCompletes(backend: TestBackend) async throws {
        try await RuntimeHarness.with(backend) { harness in
            let dag = Self.dag(
                [
                    Self.step("first", "probe_echo"),
                    Self.step("note", "log", params: ["message": "first said {{ steps.first.outputs.key }}"], after: ["first"]),
                    Self.step("second", "probe_echo", params: ["sleep_ms": 10], after: ["note"]),
                ],
                outputs: ["first_key": "{{ steps.first.outputs.key }}", "who": "{{ params.who }}"],
                parameters: [["name": "who", "type": "string", "default": "tester"]]
            )
            let bus = harness.recordBus()
            let (execution, steps) = try await harness.run(dag)
            #expect(execution.status == .completed)
            #expect(execution.progress == 100)
            #expect(execution.finalOutputs?["first_key"] == .string("\(execution.id)/first/0"))
            #expect(execution.finalOutputs?["who"] == "tester")
            #expect(steps.map(\.state.status) == [.completed, .completed, .completed])
            #expect(steps.allSatisfy { $0.leaseOwner == nil && $0.dispatch == nil })
            #expect(steps[0].state.outputs?["attempt"] == 0)
            let timers = try await harness.store.timers.list(executionID: execution.id)
            #expect(timers.isEmpty)
            let events = try await harness.store.executions.progressEvents(executionID: execution.id)
            #expect(events.map(\.sequenceNumber) == Array(1...events.count))
            #expect(events.filter { $0.kind == .stepCompleted }.count == 3)
            #expect(events.last?.kind == .workflowCompleted)
            let outbox = try await bus.eventTypes(of: execution.id, through: "workflow_completed")
            #expect(outbox.first == "execution_started")
            #expect(outbox.last == "workflow_completed")
            #expect(outbox.filter { $0 == "step_started" }.count == 3)
            #expect(RuntimeHarness.probeCalls(for: execution.id).count == 2)
        }
    }

    /// Serialized: the probe counts calls across the whole process.
    @Test("independent branches run in parallel up to max_parallel_steps", .serialized, arguments: TestBackend.available)
    func parallelLimit(backend: TestBackend) async throws {
        try await RuntimeHarness.with(backend) { harness in
            let branches = (0..<8).map { Self.step("b\($0)", "probe_concurrency", params: ["sleep_ms": 150]) }
            let dag = Self.dag(branches, settings: ["max_parallel_steps": 3])
            let started = ContinuousClock.now
            let (execution, steps) = try await harness.run(dag)
            #expect(execution.status == .completed)
            let most = steps.compactMap { $0.state.outputs?["most_at_once"]?.intValue }.max() ?? 0
            #expect(most >= 2)
            #expect(most <= 3)
            // 8 steps of 150 ms, 3 at a time: at least 3 rounds.
            #expect(ContinuousClock.now - started >= .milliseconds(450))
        }
    }

    @Test("a retryable failure is retried with a new idempotency key per attempt", arguments: TestBackend.available)
    func retries(backend: TestBackend) async throws {
        try await RuntimeHarness.with(backend) { harness in
            let dag = Self.dag([
                Self.step(
                    "flaky", "probe_flaky", params: ["fail_times": 2],
                    extra: ["on_failure": "retry", "retry": ["max_attempts": 3, "backoff_seconds": 1, "backoff_multiplier": 1]])
            ])
            let bus = harness.recordBus()
            let (execution, steps) = try await harness.run(dag)
            #expect(execution.status == .completed)
            #expect(steps[0].state.attempt == 2)
            #expect(steps[0].state.outputs?["attempt"] == 2)
            let calls = RuntimeHarness.probeCalls(for: execution.id)
            #expect(calls == (0..<3).map { "execute \(execution.id)/flaky/\($0)" })
            let published = try await bus.eventTypes(of: execution.id, through: "workflow_completed")
            #expect(published.filter { $0 == "step_retrying" }.count == 2)
        }
    }

    @Test("retries run out and the failure ends the execution", arguments: TestBackend.available)
    func retriesRunOut(backend: TestBackend) async throws {
        try await RuntimeHarness.with(backend) { harness in
            let dag = Self.dag([
                Self.step(
                    "flaky", "probe_flaky", params: ["fail_times": 5],
                    extra: ["on_failure": "retry", "retry": ["max_attempts": 2, "backoff_seconds": 1]]),
                Self.step("after", "probe_echo", after: ["flaky"]),
            ])
            let (execution, steps) = try await harness.run(dag)
            #expect(execution.status == .failed)
            #expect(execution.errorInfo?["step_id"] == "flaky")
            #expect(execution.errorInfo?["message"] == "flaky failure on attempt 1")
            #expect(steps.map(\.state.status) == [.failed, .skipped])
        }
    }

    @Test("a fatal failure with on_failure continue lets the others finish", arguments: TestBackend.available)
    func toleratedFailure(backend: TestBackend) async throws {
        try await RuntimeHarness.with(backend) { harness in
            let dag = Self.dag([
                Self.step("bad", "probe_fatal", extra: ["on_failure": "continue"]),
                Self.step("good", "probe_echo", after: ["bad"]),
            ])
            let (execution, steps) = try await harness.run(dag)
            #expect(execution.status == .completed)
            #expect(steps[0].state.status == .failed)
            #expect(steps[0].state.failureTolerated)
            #expect(steps[0].state.error == "probe failure")
            #expect(steps[1].state.status == .completed)
        }
    }

    @Test("a plugin call past the step's timeout times the step out", arguments: TestBackend.available)
    func stepTimeout(backend: TestBackend) async throws {
        try await RuntimeHarness.with(backend) { harness in
            let dag = Self.dag([Self.step("slow", "probe_echo", params: ["sleep_ms": 30_000], extra: ["timeout_seconds": 1])])
            let started = ContinuousClock.now
            let (execution, steps) = try await harness.run(dag)
            // Well before the call's own 30 s: the timeout cut it. The bound is wide because CI runs
            // every suite at once on 2 cores; the lag itself is benchmarked.
            #expect(ContinuousClock.now - started < .seconds(20))
            #expect(execution.status == .failed)
            #expect(steps[0].state.status == .timedOut)
            #expect(steps[0].state.error?.contains("timed out") == true)
        }
    }

    @Test("wait_until wakes on time, without blocking other branches", arguments: TestBackend.available)
    func waitUntil(backend: TestBackend) async throws {
        try await RuntimeHarness.with(backend) { harness in
            let wake = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 6).rounded(.up))
            let formatter = ISO8601DateFormatter()
            let dag = Self.dag([
                Self.step("wait", "wait_until", params: ["until_time": .string(formatter.string(from: wake))]),
                Self.step("other", "probe_echo"),
                Self.step("after", "probe_echo", after: ["wait"]),
            ])
            let (execution, steps) = try await harness.run(dag)
            #expect(execution.status == .completed)
            let woke = try #require(steps[0].state.endedAt)
            let lag = woke.timeIntervalSince(wake)
            #expect(lag >= 0)
            #expect(lag < 5, "on time, give or take a loaded test machine (the lag is benchmarked)")
            let otherEnded = try #require(steps[1].state.endedAt)
            #expect(otherEnded < wake)
        }
    }

    @Test("an awaited event that never comes times the step out", arguments: TestBackend.available)
    func awaitTimeout(backend: TestBackend) async throws {
        try await RuntimeHarness.with(backend) { harness in
            let dag = Self.dag([Self.step("await", "probe_await", params: ["await_seconds": 1])])
            let (execution, steps) = try await harness.run(dag)
            #expect(execution.status == .failed)
            #expect(steps[0].state.status == .timedOut)
            #expect(steps[0].state.externalWorkflowID == "ext-\(execution.id)/await/0")
            let waited = try #require(steps[0].state.endedAt).timeIntervalSince(try #require(steps[0].state.startedAt))
            #expect(waited >= 1 && waited < 15, "the timeout fires, not the default 30 minutes later (waited \(waited) s)")
            let cleanedUp = await RuntimeHarness.probeLogs("cleanup \(execution.id)/await", for: execution.id)
            #expect(cleanedUp)
        }
    }

    @Test("cancelling stops awaiting steps, skips waiting ones and calls cleanup", arguments: TestBackend.available)
    func cancel(backend: TestBackend) async throws {
        try await RuntimeHarness.with(backend) { harness in
            let dag = Self.dag([Self.step("await", "probe_await"), Self.step("later", "probe_echo", after: ["await"])])
            let started = try await harness.runtime.startExecution(ExecutionRequest(dag: dag))
            _ = try await harness.waitForSteps(of: started.id) { $0.first?.state.status == .awaitingEvent }
            try await harness.runtime.cancel(executionID: started.id, reason: "operator said stop")
            let finished = try await harness.runtime.waitUntilFinished(executionID: started.id, timeout: .seconds(5))
            #expect(finished.status == .cancelled)
            #expect(finished.errorInfo?["message"] == "operator said stop")
            let steps = try await harness.store.executions.steps(executionID: started.id)
            #expect(steps.map(\.state.status) == [.cancelled, .skipped])
            #expect(try await harness.store.timers.list(executionID: started.id).isEmpty)
            let cleanedUp = await RuntimeHarness.probeLogs("cleanup \(started.id)/await", for: started.id)
            #expect(cleanedUp)
        }
    }

    @Test("another runtime continues an execution from the store", arguments: TestBackend.available)
    func continuesFromStore(backend: TestBackend) async throws {
        let first = try await RuntimeHarness.start(backend)
        let dag = Self.dag([Self.step("await", "probe_await"), Self.step("later", "probe_echo", after: ["await"])])
        let started = try await first.runtime.startExecution(ExecutionRequest(dag: dag))
        _ = try await first.waitForSteps(of: started.id) { $0.first?.state.status == .awaitingEvent }
        await first.stop(keepDatabase: true)

        let second = try await RuntimeHarness.start(backend, database: first.database)
        try await second.runtime.apply(
            .eventCompletedStep(stepID: "await", status: .completed, outputs: ["done": true], error: nil), to: started.id)
        let finished = try await second.runtime.waitUntilFinished(executionID: started.id, timeout: .seconds(10))
        #expect(finished.status == .completed)
        let steps = try await second.store.executions.steps(executionID: started.id)
        #expect(steps[0].state.outputs == ["waiting": true, "done": true])
        #expect(steps[1].state.status == .completed)
        #expect(second.runtime.statisticsSnapshot.loads >= 1)
        await second.stop()
    }

    @Test("an execution that cannot start is refused with the reason", arguments: TestBackend.available)
    func refusedStarts(backend: TestBackend) async throws {
        try await RuntimeHarness.with(backend) { harness in
            await #expect(throws: ExecutionStartError.unregisteredActions(["no_such_action"])) {
                _ = try await harness.runtime.startExecution(ExecutionRequest(dag: Self.dag([Self.step("x", "no_such_action")])))
            }
            let typed = Self.dag(
                [Self.step("x", "log", params: ["message": "hi"])], parameters: [["name": "count", "type": "integer", "required": true]])
            await #expect {
                _ = try await harness.runtime.startExecution(ExecutionRequest(dag: typed, params: ["count": "many"]))
            } throws: { error in
                guard case ExecutionStartError.invalidParameters(let problems) = error else { return false }
                return problems.contains { $0.contains("count") }
            }
            await #expect {
                _ = try await harness.runtime.startExecution(ExecutionRequest(dag: ["name": "x", "steps": "nope"]))
            } throws: { error in
                if case ExecutionStartError.invalidPipeline = error { return true }
                return false
            }
            let counts = try await harness.store.executions.counts()
            #expect(counts.isEmpty)
        }
    }

    @Test("retention deletes finished executions past the retention period and never a running one", arguments: TestBackend.available)
    func retention(backend: TestBackend) async throws {
        let oneDay: (inout RuntimeConfiguration) -> Void = { $0.retentionDays = 1 }
        try await RuntimeHarness.with(backend, configure: oneDay) { harness in
            let (finished, _) = try await harness.run(Self.dag([Self.step("a", "probe_echo")]))
            let waiting = try await harness.runtime.startExecution(ExecutionRequest(dag: Self.dag([Self.step("await", "probe_await")])))
            _ = try await harness.waitForSteps(of: waiting.id) { $0.first?.state.status == .awaitingEvent }
            let service = RetentionService(runtime: harness.runtime)
            #expect(await service.runOnce(now: Date()) == 0)
            #expect(await service.runOnce(now: Date().addingTimeInterval(2 * 86_400)) == 1)
            #expect(try await harness.store.executions.find(id: finished.id) == nil)
            #expect(try await harness.store.executions.find(id: waiting.id)?.status == .running)
        }
    }

    @Test("many concurrent executions all finish", arguments: TestBackend.available)
    func manyConcurrent(backend: TestBackend) async throws {
        try await RuntimeHarness.with(backend) { harness in
            let dag = Self.dag([
                Self.step("a", "probe_echo"), Self.step("b", "probe_echo", after: ["a"]),
                Self.step("c", "log", params: ["message": "x"], after: ["a"]),
                Self.step("d", "probe_echo", after: ["b", "c"]),
            ])
            let ids = try await withThrowingTaskGroup(of: ExecutionID.self) { group in
                for _ in 0..<40 { group.addTask { try await harness.runtime.startExecution(ExecutionRequest(dag: dag)).id } }
                return try await group.reduce(into: [ExecutionID]()) { $0.append($1) }
            }
            for id in ids {
                let finished = try await harness.runtime.waitUntilFinished(executionID: id, timeout: .seconds(30))
                #expect(finished.status == .completed)
                #expect(RuntimeHarness.probeCalls(for: id).count == 3)
            }
        }
    }

    @Test("the runtime's services end when their group is cancelled, not only on graceful shutdown")
    func servicesEndOnCancellation() async throws {
        let harness = try await RuntimeHarness.start(.sqlite)
        try await Task.sleep(for: .milliseconds(200))
        let started = ContinuousClock.now
        harness.groupTask.cancel()
        _ = try? await harness.groupTask.value
        #expect(ContinuousClock.now - started < .seconds(20), "a service ignored cancellation")
        await harness.stop()
    }
}

@Suite("Publishing outbox events")
struct OutboxPublishingTests {
    @Test("events no transport accepts are retried, then kept as DEAD without holding up the outbox", arguments: TestBackend.available)
    func deadLetters(backend: TestBackend) async throws {
        try await RuntimeHarness.with(backend) { configuration in
            // Nothing listens on port 1: every publish is refused, each after the outbound
            // client's one-second connect deadline (it keeps trying until then).
            configuration.publishing = PublishingConfiguration(
                daprEndpoint: "http://127.0.0.1:1", maximumAttempts: 2, maximumBackoff: .milliseconds(100),
                pollInterval: .milliseconds(100))
        } _: { harness in
            let dag = RuntimeTests.dag([RuntimeTests.step("only", "log", params: ["message": "hi"])])
            let started = try await harness.runtime.startExecution(
                ExecutionRequest(dag: dag, initiator: "test", callbackTopics: ["budAppMessages"]))
            _ = try await harness.runtime.waitUntilFinished(executionID: started.id, timeout: .seconds(30))
            // Six refused attempts take about six seconds alone, and several times that on a
            // loaded CI machine; the loop ends as soon as nothing is pending.
            let deadline = ContinuousClock.now + .seconds(90)
            var counts = try await harness.store.outbox.counts()
            while counts.pending > 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                counts = try await harness.store.outbox.counts()
            }
            #expect(counts.pending == 0)
            #expect(counts.dead == 3, "step started, step completed, workflow completed; the rest notify no topic")
        }
    }
}
