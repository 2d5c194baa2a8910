import ArgumentParser
import Foundation
import PipelineEngine
import PipelineGraph

/// `graph`: what drawing a pipeline costs: the graph value and its DOT and Mermaid text (in
/// process), and an SVG layout by Graphviz's `dot` (a child process), for DAGs of growing size.
struct GraphBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph",
        abstract: "Time drawing DAGs: the graph value, DOT, Mermaid, and SVG by Graphviz.",
        discussion: """
            The DAGs are layered: steps in ranks of four, each depending on two steps of the rank \
            before, as an execution's graph (statuses, durations, waits) — the console's case. \
            Text figures are medians of 7 rounds; SVG figures are the median of `--layouts` runs \
            of dot, each a new process reading a file.
            """
    )

    @Option(help: "Step counts to draw.")
    var sizes: [Int] = [7, 50, 200]

    @Option(help: "SVG layouts timed per size.")
    var layouts = 9

    func run() async throws {
        let layout = GraphvizLayout(deadline: .seconds(60))
        print("graph drawing, median per operation")
        for size in sizes {
            let (definition, states) = Self.dag(steps: size)
            let iterations = max(5, 20_000 / max(1, size))
            let model = Measurement.run("graph value, \(size) steps (an execution's)", iterations: iterations) {
                _ = PipelineGraph(definition: definition, steps: states)
            }
            let graph = PipelineGraph(definition: definition, steps: states)
            let dot = Measurement.run("DOT text, \(size) steps", iterations: iterations) { _ = graph.dot() }
            let mermaid = Measurement.run("Mermaid text, \(size) steps", iterations: iterations) { _ = graph.mermaid() }
            for measurement in [model, dot, mermaid] { print("  " + measurement.line) }
            var timings: [Duration] = []
            var bytes = 0
            let text = graph.dot()
            for _ in 0..<max(1, layouts) {
                let started = ContinuousClock.now
                bytes = try await layout.svg(text).utf8.count
                timings.append(ContinuousClock.now - started)
            }
            let median = timings.sorted()[timings.count / 2]
            print(String(format: "  %8.1f ms  SVG by dot, %d steps (%d KB of SVG)", median / .milliseconds(1), size, bytes / 1024))
        }
    }

    /// A layered DAG of `steps` steps with every status represented, as an execution mid-way.
    static func dag(steps count: Int) -> (PipelineDefinition, [StepState]) {
        let now = Date()
        var steps: [PipelineStep] = []
        var states: [StepState] = []
        let statuses: [StepStatus] = [.completed, .completed, .running, .awaitingEvent, .pending, .retrying, .failed, .skipped]
        for index in 0..<count {
            let rank = index / 4
            let dependencies = rank == 0 ? [] : Array(Set([(rank - 1) * 4 + index % 4, (rank - 1) * 4 + (index + 1) % 4]))
            steps.append(
                PipelineStep(
                    id: "step_\(index)", name: "Step number \(index)", action: "log",
                    dependsOn: dependencies.map { "step_\($0)" }.sorted(), condition: index % 5 == 0 ? "{{ params.enabled }}" : nil))
            var state = StepState(stepID: "step_\(index)", name: "Step number \(index)", action: "log", sequence: index + 1)
            state.status = statuses[index % statuses.count]
            state.startedAt = now.addingTimeInterval(-Double(index))
            if state.status.isSettled { state.endedAt = now }
            if state.status == .awaitingEvent {
                state.externalWorkflowID = "wf-\(index)"
                state.deadline = now.addingTimeInterval(600)
            }
            states.append(state)
        }
        return (PipelineDefinition(name: "benchmark-\(count)", steps: steps), states)
    }
}
