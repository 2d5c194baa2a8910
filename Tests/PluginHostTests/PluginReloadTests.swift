import BudJSON
import BudPipelineHost
import Foundation
import InMemoryLogging
import Logging
import PluginSchema
import Testing
import _BudPipelineTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Reloading plugins without a restart (docs/plugins.md, "Reloading plugins"): an upgraded
/// library serves new calls while calls under way finish on the old one, which is then shut
/// down (its process ends); a refused upgrade keeps the loaded version; a removed file drops the
/// plugin; an unchanged one is left alone. In both isolation modes.
@Suite("Plugin reloads", .serialized)
struct PluginReloadTests {
    private func request(_ action: String, _ params: JSONObject = [:], step: String = "s") -> ExecuteRequest {
        ExecuteRequest(action: action, executionID: "e", stepID: step, idempotencyKey: "e/\(step)/0", params: params)
    }

    /// Puts `library` at `destination` as a new file (a new inode), as an installer would.
    private func install(_ library: String, at destination: URL) throws {
        let staging = destination.deletingLastPathComponent().appendingPathComponent(".staging-\(UUID().uuidString)")
        try FileManager.default.copyItem(atPath: library, toPath: staging.path)
        guard rename(staging.path, destination.path) == 0 else { throw FixtureError("rename failed: errno \(errno)") }
    }

    @Test(
        "an upgrade serves new calls, calls under way finish on the old version, which is then shut down",
        arguments: PluginIsolation.allCases)
    func upgrade(isolation: PluginIsolation) async throws {
        let version1 = try await FixturePlugins.shared.library("reload_v1")
        let version2 = try await FixturePlugins.shared.library("reload_v2")
        let textStats = try Libraries.product("TextStats")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bp-reload-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let installed = directory.appendingPathComponent("libreload_probe.so")
        try install(version1, at: installed)
        try install(textStats, at: directory.appendingPathComponent("libTextStats.so"))

        var options = TestHost.Options(directories: [directory.path], isolation: isolation)
        options.callTimeout = .seconds(60)
        try await TestHost.with(options) { loaded in
            let host = loaded.host
            #expect(try await host.execute(request("reload_version")) == .completed(outputs: ["version": "1.0.0"]))
            let oldPlugin = try #require(host.plugins.first { $0.name == "reload_probe" })
            let oldPID = oldPlugin.processStatus?.pid
            let textStatsBefore = try #require(host.plugins.first { $0.name == "text_stats" })

            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await host.runRetirements() }
                // A call under way on version 1 when the upgrade lands.
                let slow = Task { try await host.execute(request("reload_version", ["ms": 1500], step: "slow")) }
                try await Task.sleep(for: .milliseconds(300))

                try install(version2, at: installed)
                let report = try await host.reload()
                #expect(report.replaced == [.init(name: "reload_probe", from: "1.0.0", to: "2.0.0")], "\(report.json)")
                #expect(report.unchanged == ["text_stats"] && report.added.isEmpty && report.removed.isEmpty && report.refused.isEmpty)
                // New calls reach version 2, and its new action; the unchanged plugin is the same object.
                #expect(try await host.execute(request("reload_version")) == .completed(outputs: ["version": "2.0.0"]))
                #expect(try await host.execute(request("reload_added")) == .completed(outputs: ["ok": true]))
                #expect(host.plugins.first { $0.name == "text_stats" } === textStatsBefore)
                // The call under way finished on version 1.
                #expect(try await slow.value == .completed(outputs: ["version": "1.0.0"]))
                // Once idle, version 1 is shut down: in a process of its own, that process ends.
                if let oldPID {
                    let gone = ContinuousClock.now + .seconds(20)
                    while kill(oldPID, 0) == 0, ContinuousClock.now < gone { try await Task.sleep(for: .milliseconds(20)) }
                    #expect(kill(oldPID, 0) != 0, "the replaced plugin process still runs")
                    #expect(host.plugins.first { $0.name == "reload_probe" }?.processStatus?.pid != oldPID)
                }
                try await eventually { loaded.logs.entries.contains { $0.message.description == "retired plugin shut down" } }

                // A broken upgrade is refused and the loaded version stays.
                let broken = try await FixturePlugins.shared.library("wrong_major")
                try install(broken, at: installed)
                let refused = try await host.reload()
                #expect(refused.kept == ["reload_probe"] && refused.refused.count == 1, "\(refused.json)")
                #expect(refused.refused.first?.reason.contains("ABI major 2") == true)
                #expect(try await host.execute(request("reload_version")) == .completed(outputs: ["version": "2.0.0"]))

                // A removed file drops the plugin: its actions are gone for new calls.
                try FileManager.default.removeItem(at: installed)
                let removed = try await host.reload()
                #expect(removed.removed == ["reload_probe"], "\(removed.json)")
                await #expect {
                    try await host.execute(request("reload_version"))
                } throws: { ($0 as? PluginCallError)?.kind == .unknownAction }
                #expect(host.plugins.map(\.name) == ["text_stats"])

                host.stopRetirements()
                try await group.waitForAll()
            }
        }
    }

    @Test("a second reload while one runs is refused")
    func oneAtATime() async throws {
        let version1 = try await FixturePlugins.shared.library("reload_v1")
        try await TestHost.with(.init(files: [version1])) { loaded in
            func attempt() async -> Result<PluginReload, PluginHost.ReloadRefused> {
                do { return .success(try await loaded.host.reload()) } catch { return .failure(error) }
            }
            async let first = attempt()
            async let second = attempt()
            let outcomes = await [first, second]
            // Both may finish one after the other; if they overlapped, one was refused.
            #expect(outcomes.contains { if case .success = $0 { true } else { false } })
            for case .failure(let error) in outcomes { #expect(error.description.contains("under way")) }
        }
    }

    @Test("no reload once the host shuts down")
    func noReloadAfterShutdown() async throws {
        let version1 = try await FixturePlugins.shared.library("reload_v1")
        try await TestHost.with(.init(files: [version1], isolation: .process)) { loaded in
            await loaded.host.shutdown()
            await #expect {
                _ = try await loaded.host.reload()
            } throws: { ($0 as? PluginHost.ReloadRefused)?.isShuttingDown == true }
            // Nothing was started again: the plugin's process is gone for good.
            #expect(loaded.host.plugins.first?.processStatus?.pid == nil)
        }
    }

    @Test("a plugin process restarts from the library it loaded, not whatever the path names by then")
    func restartsFromTheLoadedFile() async throws {
        let version1 = try await FixturePlugins.shared.library("reload_v1")
        let broken = try await FixturePlugins.shared.library("wrong_major")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bp-restart-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let installed = directory.appendingPathComponent("libreload_probe.so")
        try install(version1, at: installed)
        var options = TestHost.Options(files: [installed.path], isolation: .process)
        options.processSettings.firstBackoff = .milliseconds(10)
        try await TestHost.with(options) { loaded in
            let plugin = try #require(loaded.host.plugins.first)
            // A refused upgrade sits at the path, never reloaded; then the process dies.
            try install(broken, at: installed)
            let first = try #require(plugin.processStatus?.pid)
            kill(first, SIGKILL)
            try await eventually { plugin.processStatus?.pid != nil && plugin.processStatus?.pid != first }
            #expect(try await loaded.host.execute(request("reload_version")) == .completed(outputs: ["version": "1.0.0"]))
            #expect(plugin.healthStatus == .healthy && plugin.processStatus?.quarantined == nil)
        }
    }
}
