import ArgumentParser
import BudJSON
import Foundation
import InboundEvents
import PipelineEngine
import PipelineRuntime
import PluginTesting
import Storage

/// Latency from an inbound event to the awaiting step completed and its dependant dispatched.
struct EventBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Event → step completed → dependants dispatched: latency percentiles at idle load, on SQLite or PostgreSQL.",
        discussion: """
            Each of --executions executions runs Greeter's await_approval followed by a greet step \
            (a plugin action). Once all await their event, the events are handled one at a time, as \
            /workflow-events hands them to the runtime: the time measured runs from the event to the \
            return of the handling, by which point the completion is committed and the greet call \
            has been started.
            """
    )

    @Option(help: "sqlite or postgres.")
    var backend: BenchmarkDatabase.Backend = .sqlite

    @Option(help: "PostgreSQL admin URL (default: BUDPIPELINE_TEST_POSTGRES_URL).")
    var postgresURL: String?

    @Option(help: "Executions, one event each.")
    var executions = 300

    func run() async throws {
        let bench = try await BenchmarkRuntime.start(
            backend, postgresURL: postgresURL, pluginFiles: [try BuildProducts.library(named: "Greeter")], label: "benchmark.events")
        let (runtime, store) = (bench.runtime, bench.store)
        var ids: [ExecutionID] = []
        for index in 0..<executions {
            let dag: JSONValue = [
                "name": "event-benchmark",
                "steps": [
                    ["id": "wait", "name": "Wait", "action": "await_approval", "params": ["request_id": .string("bench-\(index)")]],
                    ["id": "next", "name": "Next", "action": "greet", "depends_on": ["wait"], "params": ["name": "Ada"]],
                ],
            ]
            ids.append(try await runtime.startExecution(ExecutionRequest(dag: dag, initiator: "benchmark")).id)
        }
        for index in ids.indices {
            while try await store.inboundEvents.stepsAwaitingEvent(externalWorkflowID: "approval:bench-\(index)").isEmpty {
                try await Task.sleep(for: .milliseconds(5))
            }
        }

        var latencies: [Double] = []
        for index in ids.indices {
            let event = try InboundEvent(
                delivery: [
                    "id": .string("bench-event-\(index)"), "type": "approval", "workflow_id": .string("approval:bench-\(index)"),
                    "decision": "approved",
                ])
            let started = ContinuousClock.now
            let report = try await runtime.handle(event)
            latencies.append((ContinuousClock.now - started) / .milliseconds(1))
            guard report.stepCompleted else { throw ValidationError("event \(index) did not complete its step") }
            try await Task.sleep(for: .milliseconds(2))
        }
        for id in ids {
            let finished = try await runtime.waitUntilFinished(executionID: id, timeout: .seconds(30))
            guard finished.status == .completed else { throw ValidationError("execution \(id) ended \(finished.status)") }
        }
        latencies.sort()
        print("event → step completed → dependant dispatched on \(try await bench.describe())")
        print(
            String(
                format: "%d events, one at a time: p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms", latencies.count,
                latencies.percentile(0.5), latencies.percentile(0.9), latencies.percentile(0.99), latencies.percentile(1)))
        await bench.stop()
    }
}
