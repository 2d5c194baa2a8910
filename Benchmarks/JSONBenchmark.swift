import ArgumentParser
import BudJSON
import PluginSchema

/// The JSON work around one plugin call, piece by piece.
struct JSONBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "json",
        abstract: "JSON codec: building, writing and reading the documents of a plugin call."
    )

    @Option(help: "Operations per round.")
    var iterations = 200_000

    func run() throws {
        let request = ExecuteRequest(
            action: "text_stats", executionID: "3f2b8c1e-0000-4000-8000-000000000001", stepID: "step_1",
            idempotencyKey: "3f2b8c1e-0000-4000-8000-000000000001/step_1/0", params: ["text": ""]
        )
        let document = request.json
        let requestBytes = document.serialized()
        let result = Array(#"{"outputs":{"characters":0,"bytes":0,"words":0,"lines":0}}"#.utf8)
        print("JSON codec (\(iterations) operations per round, median of 7 rounds)")
        print(Measurement.run("build the execute request document", iterations: iterations) { _ = request.json }.line)
        print(Measurement.run("write it (\(requestBytes.count) bytes)", iterations: iterations) { _ = document.serialized() }.line)
        print(try Measurement.run("parse it", iterations: iterations) { _ = try JSONValue(parsing: requestBytes) }.line)
        print(
            try Measurement.run("parse the result (\(result.count) bytes)", iterations: iterations) { _ = try JSONValue(parsing: result) }
                .line)
        print(
            try Measurement.run("parse the result into a StepOutcome", iterations: iterations) {
                _ = try StepOutcome(status: .ok, output: result, errorMessage: "")
            }.line
        )
    }
}
