import BudJSON
import BudPipelineHost
import Foundation
import InMemoryLogging
import Logging
import PluginSchema
import PluginTesting
import Testing
import _BudPipelineTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Plugins in processes of their own (`isolation: process`): the same libraries answer the same
/// calls as in the server; a crash, an abort or a hang ends only the plugin's process, which
/// starts again, and a plugin that keeps crashing is quarantined; a plugin process sees none of
/// the server's secrets.
@Suite("Plugin isolation", .serialized)
struct PluginIsolationTests {
    private func request(_ action: String, _ params: JSONObject = [:], step: String = "s") -> ExecuteRequest {
        ExecuteRequest(action: action, executionID: "e", stepID: step, idempotencyKey: "e/\(step)/0", params: params)
    }

    @Test("the same example plugin gives the same answers in both modes", arguments: PluginIsolation.allCases)
    func sameAnswersInBothModes(isolation: PluginIsolation) async throws {
        let textStats = try Libraries.product("TextStats")
        let greeter = try Libraries.product("Greeter")
        let options = TestHost.Options(files: [textStats, greeter], settings: ["text_stats": ["max_text_bytes": 64]], isolation: isolation)
        try await TestHost.with(options) { loaded in
            #expect(loaded.host.refusals.isEmpty, "\(loaded.host.refusals)")
            #expect(loaded.host.plugins.allSatisfy { $0.isolation == isolation })
            let outcome = try await loaded.host.execute(request("text_stats", ["text": "héllo wörld\nsecond line 😀"]))
            #expect(outcome == .completed(outputs: ["characters": 25, "bytes": 30, "words": 5, "lines": 2]))
            let tooLong = try await loaded.host.execute(request("text_stats", ["text": .string(String(repeating: "x", count: 65))]))
            #expect(tooLong == .failed(message: "text is 65 bytes, more than max_text_bytes (64)"))
            #expect(try await loaded.host.validateParams(action: "text_stats", params: [:]) == ["text is required"])
            #expect(
                try await loaded.host.handleEvent(
                    EventRequest(action: "text_stats", executionID: "e", stepID: "s", externalWorkflowID: "x", eventType: "t", event: [:]))
                    == .ignore)
            let greeting = try await loaded.host.execute(request("greet", ["name": "Ada"]))
            #expect(greeting == .completed(outputs: ["greeting": "Hello, Ada.", "length": 11]))
            // Twenty calls at once, all answered.
            let answers = try await withThrowingTaskGroup(of: StepOutcome.self) { group in
                for index in 0..<20 {
                    group.addTask { try await loaded.host.execute(request("greet", ["name": .string("n\(index)")], step: "s\(index)")) }
                }
                return try await group.reduce(into: [StepOutcome]()) { $0.append($1) }
            }
            #expect(answers.count == 20 && answers.allSatisfy { if case .completed = $0 { true } else { false } })
        }
    }

    @Test(
        "the C and Rust example plugins give the same answers, in both modes; a Rust panic fails only its call",
        arguments: ["c", "rust"], PluginIsolation.allCases)
    func wordCountExamples(language: String, isolation: PluginIsolation) async throws {
        let built = language == "c" ? try await CPlugins.shared.wordCount() : try await RustPlugins.shared.wordCount()
        let library = try BuildProducts.isolatedCopy(of: built)
        try await TestHost.with(.init(files: [library], isolation: isolation)) { loaded in
            #expect(loaded.host.refusals.isEmpty, "\(loaded.host.refusals)")
            var request = request("word_count", ["text": "one two  three"])
            request.userID = "11111111-1111-4111-8111-111111111111"
            let outcome = try await loaded.host.execute(request)
            #expect(outcome == .completed(outputs: ["words": 3, "user_id": "11111111-1111-4111-8111-111111111111"]))
            #expect(try await loaded.host.validateParams(action: "word_count", params: [:]) == ["text is required"])
            #expect(try await loaded.host.validateParams(action: "word_count", params: ["text": 3]) == ["text must be a string"])
            #expect(try await loaded.host.validateParams(action: "word_count", params: ["text": "fine"]) == [])
            let missing = try await loaded.host.execute(self.request("word_count"))
            #expect(missing == .failed(message: "text is required"), "\(missing)")
            let waiting = try await loaded.host.execute(self.request("word_count", ["text": "a b", "wait_for": "wf-9"]))
            #expect(waiting == .awaitingEvent(externalWorkflowID: "wf-9", timeoutSeconds: 600, outputs: ["words": 2, "user_id": .null]))
            let event = EventRequest(
                action: "word_count", executionID: "e", stepID: "s", externalWorkflowID: "wf-9", eventType: "t", event: ["count": 7])
            #expect(try await loaded.host.handleEvent(event) == .complete(status: .completed, outputs: ["event_count": 7], error: nil))
            var unrelated = event
            unrelated.event = ["other": true]
            #expect(try await loaded.host.handleEvent(unrelated) == .ignore)
            if language == "rust" {
                // A panic is caught at the boundary: the call fails, the host (and the plugin) go on.
                let panicked = try await loaded.host.execute(self.request("rust_panic"))
                #expect(panicked == .failed(message: "panicked: no number at index 3: None"), "\(panicked)")
                #expect(try await loaded.host.execute(self.request("word_count", ["text": "still here"])) != .failed(message: ""))
            }
            #expect(loaded.host.plugins.first?.processStatus?.crashes ?? 0 == 0)
        }
    }

    @Test("a segfault or an abort fails only the call, names the plugin and the signal; the process starts again")
    func crashesEndOnlyThePluginProcess() async throws {
        let crash = try await Libraries.fixture("crash_probe")
        let env = try await Libraries.fixture("env_probe")
        try await TestHost.with(.init(files: [crash, env], isolation: .process)) { loaded in
            #expect(loaded.host.refusals.isEmpty, "\(loaded.host.refusals)")
            let plugin = try #require(loaded.host.plugins.first { $0.name == "crash_probe" })
            let firstPID = try #require(plugin.processStatus?.pid)
            for (action, signal) in [("crash_segv", "SIGSEGV"), ("crash_abort", "SIGABRT")] {
                await #expect {
                    try await loaded.host.execute(request(action))
                } throws: { error in
                    guard let error = error as? PluginCallError else { return false }
                    return error.kind == .pluginCrashed && error.isRetryable && error.message.contains("plugin 'crash_probe'")
                        && error.message.contains(signal) && error.message.contains(action)
                }
                // The other plugin never noticed.
                guard case .completed = try await loaded.host.execute(request("env_read")) else {
                    Issue.record("env_probe stopped answering")
                    return
                }
            }
            // The process came back, with another pid, and serves again.
            let late = try await loaded.host.execute(request("crash_late_write"))
            #expect(late == .completed(outputs: ["on_time": true]))
            let status = try #require(plugin.processStatus)
            #expect(status.crashes == 2 && status.restarts == 2 && status.pid != firstPID && status.pid != nil, "\(status)")
            #expect(plugin.healthStatus == .healthy)
            #expect(loaded.logs.entries.contains { $0.message.description == "plugin process ended; restarting" })
        }
    }

    @Test("a plugin that keeps crashing is quarantined: unhealthy, calls refused, others unaffected")
    func repeatedCrashesQuarantine() async throws {
        let crash = try await Libraries.fixture("crash_probe")
        let env = try await Libraries.fixture("env_probe")
        var options = TestHost.Options(files: [crash, env], isolation: .process)
        options.processSettings.quarantineAfterCrashes = 3
        options.processSettings.firstBackoff = .milliseconds(10)
        try await TestHost.with(options) { loaded in
            for _ in 0..<3 {
                await #expect(throws: PluginCallError.self) { try await loaded.host.execute(request("crash_segv")) }
            }
            let plugin = try #require(loaded.host.plugins.first { $0.name == "crash_probe" })
            guard case .unhealthy(let reason, _) = plugin.healthStatus else {
                Issue.record("not quarantined: \(plugin.healthStatus)")
                return
            }
            #expect(reason.contains("ended 3 times") && reason.contains("SIGSEGV"), "\(reason)")
            #expect(plugin.processStatus?.quarantined != nil && plugin.processStatus?.pid == nil)
            await #expect {
                try await loaded.host.execute(request("crash_late_write"))
            } throws: { ($0 as? PluginCallError)?.kind == .pluginUnhealthy }
            guard case .completed = try await loaded.host.execute(request("env_read")) else {
                Issue.record("env_probe stopped answering")
                return
            }
        }
    }

    @Test("a call past its timeout kills the plugin process; the next call is served by a new one")
    func hangsAreKilled() async throws {
        let slow = try await Libraries.fixture("slow")
        var options = TestHost.Options(files: [slow], callTimeout: .milliseconds(300), isolation: .process)
        options.processSettings.firstBackoff = .milliseconds(10)
        try await TestHost.with(options) { loaded in
            let plugin = try #require(loaded.host.plugins.first)
            let firstPID = try #require(plugin.processStatus?.pid)
            let started = ContinuousClock.now
            await #expect {
                try await loaded.host.execute(request("sleep_ms", ["ms": 600_000]))
            } throws: { error in
                guard let error = error as? PluginCallError else { return false }
                return error.kind == .timedOut && error.message.contains("plugin 'slow'")
            }
            #expect(ContinuousClock.now - started < .seconds(30))
            // The stuck process is gone (once reaped): no thread stays stuck anywhere.
            let reaped = ContinuousClock.now + .seconds(5)
            while kill(firstPID, 0) == 0, ContinuousClock.now < reaped { try await Task.sleep(for: .milliseconds(10)) }
            #expect(kill(firstPID, 0) != 0)
            // The next call waits at most the 300 ms call timeout for the new process: wait
            // until it has restarted, so that a loaded machine's slow start does not count.
            let restarted = ContinuousClock.now + .seconds(20)
            while (plugin.processStatus?.restarts ?? 0) < 1, ContinuousClock.now < restarted {
                try await Task.sleep(for: .milliseconds(10))
            }
            let quick = try await loaded.host.execute(request("sleep_ms", ["ms": 1]))
            #expect(quick == .completed(outputs: ["slept": true]))
            #expect(plugin.processStatus?.pid != firstPID)
        }
    }

    @Test("a plugin process sees none of the server's secrets and runs under its own pid")
    func scrubbedEnvironment() async throws {
        let env = try await Libraries.fixture("env_probe")
        setenv("BUDPIPELINE_TEST_SECRET", "s3cret", 1)
        setenv("DATABASE_URL", "postgresql://u:pw@db/x", 1)
        defer {
            unsetenv("BUDPIPELINE_TEST_SECRET")
            unsetenv("DATABASE_URL")
        }
        for isolation in PluginIsolation.allCases {
            try await TestHost.with(.init(files: [env], isolation: isolation)) { loaded in
                guard case .completed(let outputs) = try await loaded.host.execute(request("env_read")) else {
                    Issue.record("env_read failed")
                    return
                }
                let isolated = isolation == .process
                #expect(
                    outputs["database_url"] == .bool(!isolated) && outputs["test_secret"] == .bool(!isolated), "\(isolation): \(outputs)")
                #expect(outputs["path"] == true)
                #expect((outputs["pid"]?.intValue == Int(getpid())) == !isolated)
            }
        }
    }

    @Test(
        "a plugin process cannot read the server's environment, memory or descriptors, signal it, or leave its group",
        arguments: [PluginProcessUsers.automatic, .server])
    func cannotReachTheServer(users: PluginProcessUsers) async throws {
        let reach = try await Libraries.fixture("reach_probe")
        let env = try await Libraries.fixture("env_probe")
        var options = TestHost.Options(files: [reach, env], isolation: .process)
        options.processSettings.users = users
        try await TestHost.with(options) { loaded in
            #expect(loaded.host.refusals.isEmpty, "\(loaded.host.refusals)")
            let sibling = try #require(loaded.host.plugins.first { $0.name == "env_probe" }?.processStatus?.pid)
            func probe(_ name: String, _ extra: JSONObject = [:]) async throws -> JSONObject {
                var params: JSONObject = ["probe": .string(name)]
                for (key, value) in extra { params[key] = value }
                guard case .completed(let outputs) = try await loaded.host.execute(request("reach", params)) else {
                    Issue.record("probe \(name) did not complete")
                    return [:]
                }
                return outputs
            }
            for name in [
                "parent_environ", "parent_mem", "parent_vm", "parent_fds", "signal_parent", "signal_everyone", "signal_server_thread",
                "new_session", "privileged_thread",
            ] {
                let outputs = try await probe(name)
                #expect(outputs["allowed"] == false, "\(name): \(outputs)")
            }
            let identity = try await probe("identity")
            if geteuid() == 0, users == .automatic {
                // A server that may switch users gives each plugin process a user of its own:
                // the processes of other plugins are out of its reach too.
                #expect(identity["uid"]?.intValue.map { $0 >= Int(PluginProcessUsers.defaultFirstID) } == true, "\(identity)")
                let signal = try await probe("signal_pid", ["pid": .string("\(sibling)")])
                #expect(signal["allowed"] == false, "\(signal)")
            }
            // The probes broke nothing: the process that ran them still serves.
            #expect(loaded.host.plugins.first { $0.name == "reach_probe" }?.processStatus?.crashes == 0)
        }
    }

    @Test("a crash is reported at once even when something the plugin started holds its sockets, and that is ended too")
    func crashWithADescendantHoldingTheSockets() async throws {
        let reach = try await Libraries.fixture("reach_probe")
        var options = TestHost.Options(files: [reach], callTimeout: .seconds(120), isolation: .process)
        options.processSettings.firstBackoff = .milliseconds(10)
        let pidFile = "/tmp/bp-reach-\(UUID().uuidString)"
        defer { unlink(pidFile) }
        try await TestHost.with(options) { loaded in
            let started = ContinuousClock.now
            await #expect {
                try await loaded.host.execute(request("fork_and_crash", ["path": .string(pidFile)]))
            } throws: { error in
                guard let error = error as? PluginCallError else { return false }
                return error.kind == .pluginCrashed && error.message.contains("SIGSEGV")
            }
            // Not the call's timeout: the end of the process itself was seen.
            #expect(ContinuousClock.now - started < .seconds(60))
            let text = try String(contentsOfFile: pidFile, encoding: .utf8)
            let descendant = try #require(Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)))
            defer { if Self.isAlive(descendant) { kill(descendant, SIGKILL) } }
            let gone = ContinuousClock.now + .seconds(20)
            while Self.isAlive(descendant), ContinuousClock.now < gone { try await Task.sleep(for: .milliseconds(20)) }
            #expect(!Self.isAlive(descendant), "the process the plugin started still runs")
            let again = try await loaded.host.execute(request("reach", ["probe": "identity"]))
            guard case .completed = again else {
                Issue.record("no new plugin process: \(again)")
                return
            }
        }
    }

    /// Whether `pid` runs (a zombie, ended but not yet reaped by its new parent, does not).
    private static func isAlive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let closing = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(after: closing)...].trimmingCharacters(in: .whitespaces).prefix(1)
        return state != "Z" && state != "X"
    }
}
