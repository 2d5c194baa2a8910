import ArgumentParser
import BudJSON
import CoreMetrics
import Foundation
import PipelineEngine
import PipelineGraph
import Storage

#if canImport(Glibc)
    import Glibc
#endif

/// `budpipeline graph FILE|PIPELINE_ID [--execution ID]`: the DAG as DOT, SVG or Mermaid.
struct GraphCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph",
        abstract: "Draw a pipeline's DAG (or an execution's, with each step's status) as DOT, SVG or Mermaid.",
        discussion: """
            SOURCE is a DAG file (.json, .yaml, .yml) or the id of a stored pipeline. With \
            --execution, the graph is that execution's: its own copy of the DAG with each step's \
            status, duration and what a waiting step waits for (SOURCE may then be omitted; if \
            given it must be the execution's pipeline). SVG is laid out by Graphviz's dot \
            (apt-get install graphviz); DOT and Mermaid need nothing else.
            """
    )

    @Argument(help: "A DAG file or a stored pipeline's id.")
    var source: String?

    @Option(help: "Draw this execution's steps and statuses.")
    var execution: String?

    @Option(help: "dot, svg or mermaid.", transform: Self.format)
    var format: GraphFormat = .dot

    @Option(name: .shortAndLong, help: "Write to this file instead of standard output.")
    var output: String?

    @OptionGroup var database: DatabaseOptions

    static func format(_ text: String) throws -> GraphFormat {
        guard let format = GraphFormat(rawValue: text) else { throw ValidationError("--format \(text): write dot, svg or mermaid") }
        return format
    }

    func validate() throws {
        guard source != nil || execution != nil else {
            throw ValidationError("name a DAG file or a pipeline id, or give --execution")
        }
    }

    func run() async throws {
        // Output piped into a program that stops reading (`| head`) ends the write, not the process.
        signal(SIGPIPE, SIG_IGN)
        try database.settings.apply()
        let graph = try await self.graph()
        let text: String
        switch format {
        case .dot: text = graph.dot()
        case .mermaid: text = graph.mermaid()
        case .svg:
            do {
                text = try await GraphvizLayout().svg(graph.dot())
            } catch {
                throw CLIError("\(error)")
            }
        }
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: Data(text.utf8)) else {
                throw CLIError("cannot write \(output)")
            }
        } else {
            print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
        }
    }

    /// The graph SOURCE and --execution name: a file is read without opening the store.
    private func graph() async throws -> PipelineGraph {
        if execution == nil, let source, PipelineID(parsing: source) == nil || FileManager.default.fileExists(atPath: source) {
            return PipelineGraph(definition: try Self.definition(ValidateCommand.readDocument(source), origin: source))
        }
        let (db, _) = try await database.open()
        let store = PipelineStore(database: db, metrics: NOOPMetricsHandler.instance)
        do {
            let graph = try await graph(from: store)
            await db.close()
            return graph
        } catch {
            await db.close()
            throw error
        }
    }

    private func graph(from store: PipelineStore) async throws -> PipelineGraph {
        if let execution {
            guard let id = ExecutionID(parsing: execution) else { throw CLIError("--execution \(execution): not an execution id (a UUID)") }
            guard let (record, steps) = try await store.executions.findWithSteps(id: id) else {
                throw CLIError("no execution \(id.rawValue) in the database")
            }
            if let source {
                guard PipelineID(parsing: source) == record.pipelineID else {
                    throw CLIError("execution \(id.rawValue) does not run pipeline \(source)")
                }
            }
            let dag = record.definitionSnapshot["dag"] ?? .object([:])
            return PipelineGraph(definition: try Self.definition(dag, origin: "execution \(id.rawValue)"), steps: steps.map(\.state))
        }
        guard let source, let id = PipelineID(parsing: source) else { throw CLIError("cannot read \(source ?? "")") }
        guard let record = try await store.definitions.summary(id: id)?.record else {
            throw CLIError("\(source) is neither a file nor a stored pipeline's id")
        }
        return PipelineGraph(definition: try Self.definition(record.dag, origin: "pipeline \(id.rawValue)"))
    }

    /// The definition a DAG document describes; one without steps (a draft) is an empty graph.
    static func definition(_ dag: JSONValue, origin: String) throws -> PipelineDefinition {
        do {
            return try PipelineGraph.definition(drawing: dag, fallbackName: "")
        } catch {
            throw CLIError("\(origin): \(error.errors.joined(separator: "; "))")
        }
    }
}
