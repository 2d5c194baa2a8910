import BudJSON
import BudPipelineHost
import Foundation
import Testing
import _BudPipelineTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Reloading plugins in a running server: `POST /plugins/reload` (the service only) and SIGHUP
/// load an upgraded library without a restart; new steps run the new version.
@Suite("Plugin reloads in the server", .serialized)
struct PluginReloadServerTests {
    private func install(_ library: String, at destination: URL) throws {
        let staging = destination.deletingLastPathComponent().appendingPathComponent(".staging-\(UUID().uuidString)")
        try FileManager.default.copyItem(atPath: library, toPath: staging.path)
        guard rename(staging.path, destination.path) == 0 else { throw FixtureError("rename failed: errno \(errno)") }
    }

    @Test("the reload route and SIGHUP load an upgraded plugin; users may not reload", arguments: PluginIsolation.allCases)
    func reloads(isolation: PluginIsolation) async throws {
        let version1 = try await FixturePlugins.shared.library("reload_v1")
        let version2 = try await FixturePlugins.shared.library("reload_v2")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bp-reload-server-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let installed = directory.appendingPathComponent("libreload_probe.so")
        try install(version1, at: installed)
        let environment = ["BUDPIPELINE_PLUGIN_DIRS": directory.path, "BUDPIPELINE_PLUGIN_ISOLATION": isolation.rawValue]
        try await APIServerProcess.with(.sqlite, environment: environment) { server in
            let pid = server.process.pid
            #expect(try await server.send("GET", "/actions/reload_added").status == 404)

            let user = try await server.send("POST", "/plugins/reload", headers: ["X-User-ID": "11111111-1111-4111-8111-111111111111"])
            #expect(user.status == 403 && user.json["code"] == "SERVICE_ONLY", "\(user.text)")

            try install(version2, at: installed)
            let reload = try await server.send("POST", "/plugins/reload")
            #expect(reload.status == 200, "\(reload.text)")
            #expect(reload.json["replaced"] == [["name": "reload_probe", "from": "1.0.0", "to": "2.0.0"]], "\(reload.text)")
            #expect(try await server.send("GET", "/actions/reload_added").status == 200)
            let run = try await server.send(
                "POST", "/executions/run",
                json: ["pipeline_definition": ["name": "r", "steps": [["id": "v", "name": "v", "action": "reload_version"]]]])
            let id = try #require(run.json["execution_id"]?.stringValue, "\(run.text)")
            _ = try await server.finished(id)
            let steps = try await server.send("GET", "/executions/\(id)/steps").json["steps"]?.arrayValue ?? []
            #expect(steps.first?["outputs"]?["version"] == "2.0.0", "\(steps)")

            // SIGHUP: back to version 1, and the server keeps running.
            try install(version1, at: installed)
            kill(pid, SIGHUP)
            let deadline = ContinuousClock.now + .seconds(30)
            while try await server.send("GET", "/actions/reload_added").status != 404, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(try await server.send("GET", "/actions/reload_added").status == 404)
            #expect(server.process.isRunning && server.process.pid == pid)
        }
    }
}
