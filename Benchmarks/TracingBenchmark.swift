import ArgumentParser
import Foundation
import PipelineEngine
import PipelineRuntime

/// `tracing`: what the tracing hooks cost when tracing is off (the default), per call of each kind
/// the runtime makes, and for one execution of a 5-step chain of plugin steps put together from
/// them.
struct TracingBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tracing",
        abstract: "Time the tracing hooks with tracing off (no tracer): spans not made, contexts passed on.",
        discussion: """
            Each figure is the mean of `--iterations` calls on one thread, after a warm-up. A 5-step \
            chain of plugin steps without callback topics makes, per execution: 5 plugin calls (each \
            derives the execution's context, asks for a span and passes a context on) and 5 ended \
            step attempts (each asks for a span).
            """
    )

    @Option(help: "Calls timed per figure.")
    var iterations = 1_000_000

    func run() {
        let tracing = ExecutionTracing.off
        let execution = ExecutionID.generate()
        let parent = TraceParent.derived(from: execution)
        var kept = 0
        let derive = time { kept &+= TraceParent.derived(from: execution) == nil ? 0 : 1 }
        let span = time { kept &+= tracing.startSpan("plugin.call", parent: parent) == nil ? 0 : 1 }
        let passOn = time { kept &+= tracing.traceParent(of: nil, else: parent) == nil ? 0 : 1 }
        let headers = time { kept &+= tracing.headers(of: nil, else: parent).count }
        print("tracing off, \(iterations) calls each, one thread (\(kept % 2))")
        print(String(format: "  derive the execution's context:             %6.1f ns", derive))
        print(String(format: "  ask for a span (none made):                 %6.1f ns", span))
        print(String(format: "  pass a context on to a plugin call:         %6.1f ns", passOn))
        print(String(format: "  headers for a publish or invocation:        %6.1f ns", headers))
        let perExecution = 5 * (derive + span + passOn) + 5 * span
        print(String(format: "  one 5-step chain execution costs about %.2f µs", perExecution / 1000))
    }

    private func time(_ body: () -> Void) -> Double {
        meanNanoseconds(iterations: iterations, body)
    }
}
