import BudJSON
import BudPipelineHost
import Foundation
import HTTPAPI
import Hummingbird
import Logging
import PipelineRuntime
import Testing
import _BudPipelineTestSupport

/// The OpenAPI document and the server agree: the same routes, and every documented operation
/// answers with a status the document lists.
@Suite("OpenAPI document")
struct OpenAPIAgreementTests {
    private static let document = OpenAPIDocument.document(version: "test")

    /// `post /executions/{id}/cancel`, for every operation of the document.
    private static var documentedRoutes: Set<String> {
        var routes = Set<String>()
        for (path, item) in document["paths"]?.objectValue ?? [:] {
            for method in item.objectValue?.keys ?? [] { routes.insert("\(method) \(path)") }
        }
        return routes
    }

    @Test("the router serves exactly the documented routes")
    func routesMatch() async throws {
        let database = try await TestDatabase.make(.sqlite)
        let plugins = await PluginHost.load(configuration: PluginHostConfiguration(pluginDirectories: []), logger: Logger(label: "test"))
        let runtime = ExecutionRuntime(
            store: database.store, plugins: plugins, configuration: RuntimeConfiguration(), logger: Logger(label: "test"))
        let router = APIServer.router(runtime: runtime, configuration: APIConfiguration(), version: "test")
        let served = Set(
            router.routes.map { route in
                let path = "\(route.path)"
                return "\(route.method.rawValue.lowercased()) \(path.hasPrefix("/") ? path : "/" + path)"
            })
        await plugins.shutdown()
        await database.close()
        #expect(served.subtracting(Self.documentedRoutes).sorted() == [], "served but not documented")
        #expect(Self.documentedRoutes.subtracting(served).sorted() == [], "documented but not served")
        #expect(served.count > 100)
    }

    @Test("the document is well formed: unique operation ids, declared path parameters, resolvable references")
    func wellFormed() throws {
        var operationIDs: [String] = []
        let schemas = Self.document["components"]?["schemas"]?.objectValue ?? [:]
        let text = Self.document.serializedString()
        for (path, item) in Self.document["paths"]?.objectValue ?? [:] {
            for (_, operation) in item.objectValue ?? [:] {
                operationIDs.append(try #require(operation["operationId"]?.stringValue))
                let declared = Set(
                    (operation["parameters"]?.arrayValue ?? []).filter { $0["in"] == "path" }.compactMap { $0["name"]?.stringValue })
                let inPath = Set(path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) })
                #expect(declared == inPath, "\(path)")
            }
        }
        #expect(Set(operationIDs).count == operationIDs.count)
        var references = Set<String>()
        var rest = Substring(text)
        while let range = rest.range(of: "#/components/schemas/") {
            rest = rest[range.upperBound...]
            references.insert(String(rest.prefix { $0 != "\"" }))
        }
        #expect(references.subtracting(schemas.keys).sorted() == [])
        #expect(Self.document["openapi"] == "3.1.0")
    }

    @Test("the running server serves the document, and each documented operation answers with a documented status")
    func liveAnswers() async throws {
        try await InProcessAPIServer.with(.sqlite) { server in
            let served = try await server.send("GET", "/openapi.json")
            #expect(served.status == 200 && served.json["paths"] == Self.document["paths"])
            let printed = try await ProcessRunner.run(Repository.executable, ["openapi"])
            #expect(try JSONValue(parsing: Array(printed.standardOutput.utf8))["paths"] == Self.document["paths"])
            for (path, item) in Self.document["paths"]?.objectValue ?? [:] {
                let concrete = path.replacingOccurrences(of: "{id}", with: UUID().uuidString.lowercased())
                    .replacingOccurrences(of: "{type}", with: "no-such-action")
                for (method, operation) in item.objectValue ?? [:] {
                    let body = method == "post" || method == "put" ? "{}" : nil
                    let reply = try await server.send(method.uppercased(), concrete, body: body)
                    let documented = operation["responses"]?.objectValue?.keys ?? []
                    #expect(reply.json["code"] != "ROUTE_NOT_FOUND" && reply.status != 405, "\(method) \(path)")
                    #expect(documented.contains(String(reply.status)), "\(method) \(path) answered \(reply.status): \(reply.text)")
                }
            }
        }
    }
}
