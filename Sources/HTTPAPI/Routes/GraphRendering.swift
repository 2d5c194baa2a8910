import BudJSON
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PipelineEngine
import PipelineGraph
import Storage

/// What `GET /pipelines/{id}/graph` and `GET /executions/{id}/graph` share: the format from the
/// query, the definition read from what is stored, and the answer in DOT, Mermaid or SVG.
///
/// SVG is laid out by Graphviz's `dot` in a child process with a deadline; at most
/// ``GraphRendering/concurrentLayouts`` run at once across the server, at most 8 requests wait
/// for a turn, each at most 5 s (then 503 `GRAPH_BUSY` with `Retry-After`), and recent pictures
/// are remembered by their DOT text, so graph requests cannot turn into a burst of processes or
/// a queue that delays everyone's graphs.
struct GraphRendering: Sendable {
    /// Layouts running at once (each is one `dot` process).
    static let concurrentLayouts = 2

    let layout: GraphvizLayout
    let gate: GraphvizGate

    init(layout: GraphvizLayout = GraphvizLayout(), gate: GraphvizGate = GraphvizGate(limit: concurrentLayouts)) {
        self.layout = layout
        self.gate = gate
    }

    /// The `format` query parameter: `svg` (the default), `dot` or `mermaid`.
    static func format(_ request: Request) throws -> GraphFormat {
        var reader = FieldReader(query: request)
        let format = reader.choice("format", as: GraphFormat.self, among: GraphFormat.allCases)
        try reader.finish()
        return format ?? .svg
    }

    /// The definition a stored DAG describes; a draft (no steps) draws as an empty graph.
    static func definition(_ dag: JSONValue?, fallbackName: String) throws -> PipelineDefinition {
        do {
            return try PipelineGraph.definition(drawing: dag, fallbackName: fallbackName)
        } catch {
            throw APIError.validationFailed(error.errors, title: "The stored DAG cannot be drawn", code: "INVALID_PIPELINE")
        }
    }

    /// The graph in `format`, with its content type; `Cache-Control: no-store` for an execution's
    /// (it changes as the execution runs).
    func response(_ graph: PipelineGraph, format: GraphFormat) async throws -> Response {
        let text: String
        switch format {
        case .dot: text = graph.dot()
        case .mermaid: text = graph.mermaid()
        case .svg:
            do {
                text = try await gate.svg(graph.dot(), layout: layout)
            } catch let failure as GraphvizLayout.Failure {
                throw Self.apiError(failure)
            } catch is GraphvizGate.Busy {
                throw APIError(
                    .serviceUnavailable, code: "GRAPH_BUSY", message: "Graphviz is busy with other graphs; try again shortly",
                    headers: [.retryAfter: "2"])
            }
        }
        var headers = HTTPFields()
        headers[.contentType] = format.contentType
        headers[.cacheControl] = "no-store"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    static func apiError(_ failure: GraphvizLayout.Failure) -> APIError {
        let code =
            switch failure {
            case .unavailable: "GRAPHVIZ_UNAVAILABLE"
            case .timedOut: "GRAPH_LAYOUT_TIMEOUT"
            case .outputTooLarge: "GRAPH_TOO_LARGE"
            case .failed: "GRAPH_LAYOUT_FAILED"
            }
        return APIError(.serviceUnavailable, code: code, message: failure.description)
    }
}

/// `GET /pipelines/{id}/graph` and `GET /executions/{id}/graph` (`?format=svg|dot|mermaid`):
/// the DAG as a picture, for an execution with each step's status, duration and wait. The same
/// access rules as reading the pipeline or the execution.
struct GraphRoutes: Sendable {
    let pipelines: PipelineRoutes
    let executions: ExecutionRoutes
    let rendering: GraphRendering

    func pipeline(_ request: Request, context: some RequestContext) async throws -> Response {
        let format = try GraphRendering.format(request)
        let record = try await pipelines.summary(request, context: context, .read).record
        let definition = try GraphRendering.definition(record.dag, fallbackName: record.name)
        return try await rendering.response(PipelineGraph(definition: definition), format: format)
    }

    func execution(_ request: Request, context: some RequestContext) async throws -> Response {
        let format = try GraphRendering.format(request)
        let id = try executions.executionID(request, context: context)
        let (record, steps) = try await executions.executionWithSteps(id, request, .read)
        let name = record.definitionSnapshot["workflow_name"]?.stringValue ?? "execution"
        let definition = try GraphRendering.definition(record.definitionSnapshot["dag"], fallbackName: name)
        let graph = PipelineGraph(definition: definition, steps: steps.map(\.state), now: Date())
        return try await rendering.response(graph, format: format)
    }
}
