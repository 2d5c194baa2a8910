import ArgumentParser
import BudJSON
import BudPipelineHost
import Foundation
import Logging
import PipelineEngine

/// `budpipeline validate FILE`: what `POST /validate` answers, from the command line.
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Validate a pipeline DAG written in JSON or YAML.",
        discussion: """
            Checks the DAG as POST /validate does, against the built-in actions and the plugins the \
            server would load (BUDPIPELINE_PLUGIN_DIRS). The file may hold the DAG itself or \
            {"dag": {...}}. Exits with status 1 when the DAG is invalid.
            """
    )

    @Argument(help: "The DAG file (.json, .yaml or .yml).")
    var file: String

    @Flag(help: "Print the POST /validate response body instead of text.")
    var json = false

    @Flag(help: "Check actions against the built-in actions only, without loading plugins.")
    var builtinsOnly = false

    func run() async throws {
        try CLILogging.bootstrap(defaultLevel: .error)
        let document = try Self.readDocument(file)
        let catalog = try await loadCatalog()
        let report = PipelineCompiler.compile(document, catalog: catalog).report
        if json {
            print(report.json.serializedString(options: [.prettyPrinted]))
        } else {
            print(Self.text(report, file: file))
        }
        if !report.valid { throw ExitCode(1) }
    }

    /// Reads a DAG document; `{"dag": {...}}` is unwrapped.
    static func readDocument(_ file: String) throws -> JSONValue {
        guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
        guard let text = String(data: data, encoding: .utf8) else { throw CLIError("\(file) is not UTF-8 text") }
        let document: JSONValue
        do {
            document = try PipelineDocument.read(text, format: PipelineDocument.format(forFileName: file))
        } catch {
            throw CLIError("\(file): \(error.message)")
        }
        if let dag = document["dag"], document["steps"] == nil { return dag }
        return document
    }

    private func loadCatalog() async throws -> StaticActionCatalog {
        guard !builtinsOnly else { return BuiltInActions.catalog }
        let host = await PluginHost.load(configuration: try .forCommandLine(), logger: Logger(label: "budpipeline.validate"))
        await host.shutdown()
        return StaticActionCatalog(BuiltInActions.all + host.actions.map(\.metadata))
    }

    static func text(_ report: ValidationReport, file: String) -> String {
        var lines = [report.valid ? "\(file): valid (\(report.stepCount) steps)" : "\(file): invalid"]
        lines += report.errors.map { "error: \($0)" }
        lines += report.warnings.map { "warning: \($0)" }
        return lines.joined(separator: "\n")
    }
}
