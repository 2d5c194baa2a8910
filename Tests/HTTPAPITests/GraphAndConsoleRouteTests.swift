import BudJSON
import Foundation
import Testing
import _BudPipelineTestSupport

@testable import HTTPAPI

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
#if canImport(FoundationXML)
    import FoundationXML
#endif

/// `GET /pipelines/{id}/graph`, `GET /executions/{id}/graph`, `GET /plugins` and the console's
/// files under `/ui`, over real HTTP.
@Suite("Graph, plugin and console routes")
struct GraphAndConsoleRouteTests {
    static let owner = "7d1f0c8e-2b5a-4c1e-9a7b-3e6f8d2c1b0a"
    static let stranger = "0e9d8c7b-6a5f-4e3d-8c2b-1a0f9e8d7c6b"

    static let dag: JSONValue = [
        "name": "graph-me",
        "steps": [
            ["id": "first", "name": "First \"quoted\" <b>", "action": "log", "params": ["message": "a"]],
            [
                "id": "second", "name": "Second", "action": "log", "depends_on": ["first"], "condition": "{{ true }}",
                "params": ["message": "b"],
            ],
        ],
    ]

    /// Whether `svg` parses as XML with an `svg` root.
    static func parses(_ svg: String) -> Bool {
        final class Root: NSObject, XMLParserDelegate {
            var name: String?
            func parser(
                _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]
            ) {
                if self.name == nil { self.name = name }
            }
        }
        let root = Root()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = root
        return parser.parse() && root.name == "svg"
    }

    @Test("a pipeline's and an execution's graph in each format, with the owner's access rules", arguments: TestBackend.available)
    func graphs(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend) { server in
            let owner = ["X-User-ID": Self.owner]
            let created = try await server.send("POST", "/pipelines", json: ["dag": Self.dag], headers: owner)
            #expect(created.status == 201)
            let pipeline = try #require(created.json["id"]?.stringValue)

            let dot = try await server.send("GET", "/pipelines/\(pipeline)/graph?format=dot", headers: owner)
            #expect(dot.status == 200)
            #expect(dot.headers["content-type"]?.hasPrefix("text/vnd.graphviz") == true)
            #expect(dot.text.contains("s0 -> s1"))
            #expect(dot.text.contains("First \\\"quoted\\\" <b>"))
            let mermaid = try await server.send("GET", "/pipelines/\(pipeline)/graph?format=mermaid", headers: owner)
            #expect(mermaid.status == 200)
            #expect(mermaid.text.contains("flowchart TD") && mermaid.text.contains("s0 --> s1"))
            if Graphviz.isUsable {
                let svg = try await server.send("GET", "/pipelines/\(pipeline)/graph", headers: owner)
                #expect(svg.status == 200)
                #expect(svg.headers["content-type"] == "image/svg+xml")
                #expect(Self.parses(svg.text))
                #expect(svg.text.contains("id=\"step&#45;1\"") || svg.text.contains("id=\"step-1\""))
            }

            // Another user cannot tell the pipeline exists; a bad format is a 422.
            let hidden = try await server.send("GET", "/pipelines/\(pipeline)/graph?format=dot", headers: ["X-User-ID": Self.stranger])
            #expect(hidden.status == 404)
            #expect(hidden.json["code"] == "PIPELINE_NOT_FOUND")
            let badFormat = try await server.send("GET", "/pipelines/\(pipeline)/graph?format=png", headers: owner)
            #expect(badFormat.status == 422)
            #expect(badFormat.json["code"] == "REQUEST_INVALID")
            let unknown = try await server.send("GET", "/pipelines/\(UUID().uuidString)/graph?format=dot")
            #expect(unknown.status == 404)

            // An execution's graph carries the steps' statuses.
            let started = try await server.send("POST", "/executions", json: ["workflow_id": .string(pipeline)], headers: owner)
            let execution = try #require(started.json["execution_id"]?.stringValue)
            _ = try await server.finished(execution)
            let executionDOT = try await server.send("GET", "/executions/\(execution)/graph?format=dot", headers: owner)
            #expect(executionDOT.status == 200)
            #expect(executionDOT.text.contains("class=\"step status-completed\""))
            #expect(executionDOT.text.contains("COMPLETED in"))
            #expect(executionDOT.headers["cache-control"] == "no-store")
            let executionMermaid = try await server.send("GET", "/executions/\(execution)/graph?format=mermaid", headers: owner)
            #expect(executionMermaid.text.contains("class s0,s1 status_completed"))
            let foreign = try await server.send("GET", "/executions/\(execution)/graph?format=dot", headers: ["X-User-ID": Self.stranger])
            #expect(foreign.status == 404)
            let malformed = try await server.send("GET", "/executions/not-a-uuid/graph")
            #expect(malformed.status == 422)
            if Graphviz.isUsable {
                let svg = try await server.send("GET", "/executions/\(execution)/graph?format=svg", headers: owner)
                #expect(svg.status == 200 && Self.parses(svg.text))
                #expect(svg.text.contains("status&#45;completed") || svg.text.contains("status-completed"))
            }

            // A draft (no steps) draws as an empty graph.
            let draft = try await server.send("POST", "/pipelines", json: ["dag": ["name": "draft-only", "steps": []]], headers: owner)
            let draftID = try #require(draft.json["id"]?.stringValue)
            let empty = try await server.send("GET", "/pipelines/\(draftID)/graph?format=mermaid", headers: owner)
            #expect(empty.status == 200)
            #expect(empty.text == "---\ntitle: draft-only\n---\nflowchart TD\n")
        }
    }

    @Test("GET /plugins lists loaded plugins with health and ABI; users see no paths", arguments: [TestBackend.sqlite])
    func pluginInventory(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend) { server in
            let service = try await server.send("GET", "/plugins")
            #expect(service.status == 200)
            let plugins = service.json["plugins"]?.arrayValue ?? []
            let greeter = try #require(plugins.first { $0["name"] == "greeter" })
            #expect(greeter["abi"] == "1.0")
            #expect(greeter["healthy"] == .bool(true))
            #expect(greeter["actions"]?.arrayValue?.contains("greet") == true)
            #expect(greeter["file"]?.stringValue?.hasPrefix("/") == true)
            #expect(service.json["host_abi"]?.stringValue?.isEmpty == false)
            #expect(service.json["directories"]?.arrayValue?.isEmpty == false)
            #expect(service.json["refused"]?.arrayValue != nil)

            let user = try await server.send("GET", "/plugins", headers: ["X-User-ID": Self.owner])
            #expect(user.status == 200)
            #expect(user.json["directories"] == nil)
            let files = (user.json["plugins"]?.arrayValue ?? []).compactMap { $0["file"]?.stringValue }
            #expect(!files.isEmpty && files.allSatisfy { !$0.contains("/") })
        }
    }

    @Test("the console loads without the token, with a strict content policy; the API behind it needs the token")
    func consoleFiles() async throws {
        try await InProcessAPIServer.with(.sqlite, environment: ["APP_API_TOKEN": "console-secret"]) { server in
            let page = try await server.send("GET", "/ui", authenticated: false)
            #expect(page.status == 200)
            #expect(page.headers["content-type"] == "text/html; charset=utf-8")
            #expect(page.text.contains("<script src=\"/ui/console.js\" defer></script>"))
            let policy = try #require(page.headers["content-security-policy"])
            #expect(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline") && policy.contains("frame-ancestors 'none'"))
            #expect(page.headers["x-content-type-options"] == "nosniff")
            for (name, type) in [("console.js", "text/javascript"), ("console.css", "text/css"), ("favicon.svg", "image/svg+xml")] {
                let asset = try await server.send("GET", "/ui/\(name)", authenticated: false)
                #expect(asset.status == 200, "\(name)")
                #expect(asset.headers["content-type"]?.hasPrefix(type) == true, "\(name)")
                let tag = try #require(asset.headers["etag"])
                let again = try await server.send("GET", "/ui/\(name)", headers: ["If-None-Match": tag], authenticated: false)
                #expect(again.status == 304, "\(name)")
                #expect(again.text.isEmpty)
            }
            for missing in ["/ui/nothing.js", "/ui/..%2Fopenapi.json", "/ui/%00", "/ui/index.html%00.js"] {
                let reply = try await server.send("GET", missing, authenticated: false)
                #expect(reply.status == 404, "\(missing)")
                #expect(reply.json["code"] == "FILE_NOT_FOUND", "\(missing)")
            }
            // What the console shows still needs the token.
            let plugins = try await server.send("GET", "/plugins", authenticated: false)
            let pipelines = try await server.send("GET", "/pipelines", authenticated: false)
            #expect(plugins.status == 401 && pipelines.status == 401)
        }
    }

    @Test("BUDPIPELINE_CONSOLE=false turns the console off; other values are refused")
    func consoleSetting() async throws {
        try await InProcessAPIServer.with(.sqlite, environment: ["BUDPIPELINE_CONSOLE": "false"]) { server in
            let page = try await server.send("GET", "/ui")
            let script = try await server.send("GET", "/ui/console.js")
            let plugins = try await server.send("GET", "/plugins")
            #expect(page.status == 404 && script.status == 404)
            #expect(plugins.status == 200)
        }
        let result = try await ProcessRunner.run(
            Repository.executable, ["config", "check"], environment: ["BUDPIPELINE_CONSOLE": "maybe"])
        #expect(result.status != 0)
        #expect(result.standardError.contains("BUDPIPELINE_CONSOLE=maybe is not true or false"))
    }
}

@Suite("Plugin inventory for users")
struct PluginInventoryTextTests {
    @Test("absolute paths in loader messages are cut to their last component")
    func paths() {
        #expect(
            PluginRoutes.withoutDirectories("cannot load the library: /srv/plugins/libJunk.so: file too short")
                == "cannot load the library: libJunk.so: file too short")
        #expect(
            PluginRoutes.withoutDirectories("action text_stats is already used by /opt/bp/lib/libTextStats.so")
                == "action text_stats is already used by libTextStats.so")
        #expect(
            PluginRoutes.withoutDirectories("plugin directory /work/nonexistent-dir/ does not exist")
                == "plugin directory nonexistent-dir does not exist")
        #expect(PipelineRoutesPlain.untouched == PluginRoutes.withoutDirectories(PipelineRoutesPlain.untouched))
    }

    enum PipelineRoutesPlain {
        static let untouched = "version 2.0 needs ABI 1.x (this host: 1.0); name a/b is fine"
    }
}
