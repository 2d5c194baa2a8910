import ArgumentParser
import BudJSON
import Foundation
import PipelineEngine
import PluginSchema

/// Engine CPU per step transition: the state machine alone, no storage, no plugin calls.
struct EngineBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Execution state machine: CPU per step transition for chains, fan-outs and built-in steps."
    )

    @Option(help: "Steps per pipeline.")
    var steps = 1000

    @Option(help: "Executions run per measurement.")
    var executions = 20

    func run() throws {
        let catalog = StaticActionCatalog(
            BuiltInActions.all + [ActionMetadata(type: "work", name: "Work", category: "Benchmark", description: "A plugin action.")]
        )
        print("execution state machine (\(steps) steps, \(executions) executions per round, median of 7 rounds)")
        print("a transition is one input handled: a step result that settles a step and starts the next ready ones")
        for shape in [Shape.chain, .fanOut, .builtInChain] {
            let pipeline = try compile(shape, catalog: catalog)
            var transitions = 0
            let measurement = try Measurement.run(shape.label, iterations: executions) {
                transitions = try runExecution(pipeline, shape: shape)
            }
            let perTransition = measurement.nanosecondsPerOperation / Double(max(1, transitions))
            print(
                String(format: "%8.2f µs per transition  %@ (%d transitions per execution)", perTransition / 1000, shape.label, transitions)
            )
        }
        let large = try document(.chain)
        let compile = Measurement.run("validate and compile the \(steps)-step chain", iterations: 5) {
            _ = PipelineCompiler.compile(large, catalog: catalog)
        }
        print(String(format: "%8.2f ms  %@", compile.nanosecondsPerOperation / 1_000_000, compile.name))
    }

    enum Shape {
        case chain, fanOut, builtInChain

        var label: String {
            switch self {
            case .chain: "chain of plugin steps, each reading the previous step's output"
            case .fanOut: "fan-out of plugin steps after one root, max_parallel_steps 10"
            case .builtInChain: "chain of built-in set_output steps (settled inside the engine)"
            }
        }
    }

    private func document(_ shape: Shape) throws -> JSONValue {
        var list: [JSONValue] = [
            ["id": "s0", "name": "S0", "action": shape == .builtInChain ? "set_output" : "work", "params": ["outputs": ["n": 0]]]
        ]
        for index in 1..<steps {
            let dependency = shape == .fanOut ? "s0" : "s\(index - 1)"
            let params: JSONValue =
                shape == .builtInChain
                ? ["outputs": ["n": .string("{{ steps.\(dependency).outputs.n + 1 }}")]]
                : ["input": .string("{{ steps.\(dependency).outputs.n }}"), "label": .string("step \(index) of {{ params.name }}")]
            list.append(
                [
                    "id": .string("s\(index)"), "name": .string("S\(index)"), "action": shape == .builtInChain ? "set_output" : "work",
                    "depends_on": [.string(dependency)], "params": params,
                ]
            )
        }
        return [
            "name": "bench", "parameters": [["name": "name", "default": "bench"]], "settings": ["max_parallel_steps": 10],
            "steps": .array(list),
        ]
    }

    private func compile(_ shape: Shape, catalog: StaticActionCatalog) throws -> CompiledPipeline {
        guard let pipeline = PipelineCompiler.compile(try document(shape), catalog: catalog).pipeline else {
            throw ValidationError("the benchmark DAG did not compile")
        }
        return pipeline
    }

    /// Runs one execution to completion, answering every dispatch at once; returns the inputs handled.
    private func runExecution(_ pipeline: CompiledPipeline, shape: Shape) throws -> Int {
        var machine = ExecutionStateMachine(pipeline: pipeline, executionID: "bench", params: ["name": "bench"])
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var queue: [StepDispatch] = []
        var transitions = 1
        for case .dispatch(let dispatch) in machine.handle(.start, at: now) { queue.append(dispatch) }
        while !queue.isEmpty {
            let dispatch = queue.removeFirst()
            transitions += 1
            let n = dispatch.params["input"]?.intValue ?? 0
            for case .dispatch(let next) in machine.handle(
                .stepSucceeded(stepID: dispatch.stepID, attempt: 0, outputs: ["n": .int(n + 1)]), at: now)
            {
                queue.append(next)
            }
        }
        guard machine.execution.status == .completed else { throw ValidationError("the benchmark execution did not complete") }
        return shape == .builtInChain ? steps : transitions
    }
}
