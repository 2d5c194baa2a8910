public import BudJSON
import Foundation
import Logging
public import PluginSchema
import Synchronization

/// `budpipeline plugins check FILE`: a plugin library put through what the server will do with
/// it, before it is deployed (see docs/plugins.md, "Checking a plugin before deployment").
///
/// The library is loaded in a plugin process (a crash, a hang or a leak costs only that
/// process), with every load-time check; then each action's optional functions — `validate_params`,
/// `on_event`, `cleanup`, and `execute` when asked — are called with inputs made from its
/// metadata, and every answer is held to the protocol: one valid result, statuses the function
/// may return, within the time allowed, no use of a call handle after its call.
public enum PluginCheck {
    /// What was checked and how it went.
    public struct Report: Sendable {
        public var file: String
        public var plugin: String?
        public var abi: String?
        /// Why the library was refused, when it was.
        public var refusal: String?
        public var actions: [ActionReport] = []
        /// Faults the host logged during the calls (a call handle used late, a broken frame, ...).
        public var loggedFaults: [String] = []

        /// Whether anything failed.
        public var failed: Bool { refusal != nil || !loggedFaults.isEmpty || actions.contains { $0.failed } }

        public var json: JSONValue {
            [
                "file": .string(file), "plugin": plugin.map(JSONValue.string) ?? .null, "abi": abi.map(JSONValue.string) ?? .null,
                "refusal": refusal.map(JSONValue.string) ?? .null, "passed": .bool(!failed),
                "actions": .array(actions.map(\.json)), "logged_faults": .array(loggedFaults.map(JSONValue.string)),
            ]
        }

        /// The report for a terminal: one line per call, then the verdict.
        public var text: String {
            var lines: [String] = []
            if let refusal {
                lines.append("\(file): refused: \(refusal)")
            } else {
                lines.append("\(file): plugin \(plugin ?? "?") (ABI \(abi ?? "?")) loaded in a plugin process")
                for action in actions {
                    lines.append("  \(action.type)")
                    for call in action.calls {
                        let mark = call.outcome == .passed ? "ok  " : call.outcome == .failed ? "FAIL" : "--  "
                        let time = call.milliseconds.map { String(format: " (%.1f ms)", $0) } ?? ""
                        lines.append("    \(mark) \(call.function): \(call.detail)\(time)")
                    }
                }
                for fault in loggedFaults { lines.append("  FAIL \(fault)") }
            }
            lines.append(failed ? "FAILED" : "passed")
            return lines.joined(separator: "\n")
        }
    }

    public struct ActionReport: Sendable {
        public var type: String
        public var calls: [CallReport] = []
        public var failed: Bool { calls.contains { $0.outcome == .failed } }

        var json: JSONValue { ["type": .string(type), "calls": .array(calls.map(\.json))] }
    }

    public struct CallReport: Sendable {
        public enum Outcome: String, Sendable { case passed, failed, skipped }
        public var function: String
        public var outcome: Outcome
        public var detail: String
        public var milliseconds: Double?

        var json: JSONValue {
            [
                "function": .string(function), "outcome": .string(outcome.rawValue), "detail": .string(detail),
                "milliseconds": milliseconds.map(JSONValue.double) ?? .null,
            ]
        }
    }

    /// Checks `file`. `configuration` is the plugin's configuration (as in the server's plugin
    /// configuration file); `timeout` bounds each call; `execute` also calls `execute`, which
    /// may have effects outside the plugin, so it is off unless asked.
    public static func run(
        file: String, configuration: JSONObject = [:], timeout: Duration = .seconds(10), execute: Bool = false,
        processSettings: PluginProcessSettings = PluginProcessSettings()
    ) async -> Report {
        let faults = FaultLog()
        var logger = Logger(label: "budpipeline.plugins.check") { _ in faults }
        logger.logLevel = .warning
        var settings = PluginHostConfiguration(pluginDirectories: [], pluginFiles: [file], callTimeout: timeout, initTimeout: timeout)
        settings.isolation = .process
        settings.shutdownTimeout = timeout
        settings.processSettings = processSettings
        // Every crash is reported; none quarantines the plugin in the middle of the check.
        settings.processSettings.quarantineAfterCrashes = 1000
        settings.processSettings.firstBackoff = .milliseconds(10)
        settings.pluginSettings = ["*": configuration]
        var report = Report(file: file)
        // The plugin's name is known once it is open; its configuration is sent then.
        let probe = await PluginHost.load(configuration: settings, logger: logger)
        if let plugin = probe.plugins.first, !configuration.isEmpty {
            await probe.shutdown()
            settings.pluginSettings = [plugin.name: configuration]
            let host = await PluginHost.load(configuration: settings, logger: logger)
            return await check(host, file: file, timeout: timeout, execute: execute, faults: faults)
        }
        if probe.plugins.isEmpty {
            report.refusal = probe.refusals.first?.reason ?? "no plugin was loaded"
            await probe.shutdown()
            return report
        }
        return await check(probe, file: file, timeout: timeout, execute: execute, faults: faults)
    }

    private static func check(_ host: PluginHost, file: String, timeout: Duration, execute: Bool, faults: FaultLog) async -> Report {
        var report = Report(file: file)
        guard let plugin = host.plugins.first else {
            report.refusal = host.refusals.first?.reason ?? "no plugin was loaded"
            await host.shutdown()
            return report
        }
        report.plugin = plugin.name
        report.abi = plugin.image.abiVersion
        for action in host.actions {
            var actionReport = ActionReport(type: action.metadata.type)
            let params = sampleParams(for: action.metadata)
            let functions = action.functions
            if functions.validateParams {
                for (label, input) in [("validate_params (generated parameters)", params), ("validate_params (no parameters)", [:])] {
                    actionReport.calls.append(
                        await timed(label, plugin: plugin) {
                            let errors = try await host.validateParams(action: action.metadata.type, params: input, timeout: timeout)
                            return errors.isEmpty ? "no errors" : "errors: \(errors.joined(separator: "; "))"
                        })
                }
            } else {
                actionReport.calls.append(CallReport(function: "validate_params", outcome: .skipped, detail: "not implemented"))
            }
            if functions.onEvent {
                let request = EventRequest(
                    action: action.metadata.type, executionID: "plugins-check", stepID: "check",
                    externalWorkflowID: "plugins-check-\(action.metadata.type)", eventType: "plugins.check",
                    event: ["type": "plugins.check", "workflow_id": .string("plugins-check-\(action.metadata.type)")])
                actionReport.calls.append(
                    await timed("on_event (an unrelated event)", plugin: plugin) {
                        do {
                            return "\(try await host.handleEvent(request, timeout: timeout))"
                        } catch let error as PluginCallError where error.kind == .retryRequested {
                            return "asked for the event again later"
                        }
                    })
            } else {
                actionReport.calls.append(CallReport(function: "on_event", outcome: .skipped, detail: "not implemented"))
            }
            if functions.cleanup {
                let request = CleanupRequest(
                    action: action.metadata.type, executionID: "plugins-check", stepID: "check",
                    externalWorkflowID: "plugins-check-\(action.metadata.type)", reason: .cancelled)
                actionReport.calls.append(
                    await timed("cleanup (a cancelled step)", plugin: plugin) {
                        try await host.cleanup(request, timeout: timeout).map { "reported: \($0)" } ?? "done"
                    })
            } else {
                actionReport.calls.append(CallReport(function: "cleanup", outcome: .skipped, detail: "not implemented"))
            }
            if execute {
                let request = ExecuteRequest(
                    action: action.metadata.type, executionID: "plugins-check", stepID: "check", idempotencyKey: "plugins-check/check/0",
                    params: params)
                actionReport.calls.append(
                    await timed("execute (generated parameters)", plugin: plugin) { "\(try await host.execute(request, timeout: timeout))" }
                )
            }
            report.actions.append(actionReport)
        }
        await host.shutdown()
        report.loggedFaults = faults.entries
        return report
    }

    /// Runs one call and reports it: passed with what it answered, or failed with why. After a
    /// failure, waits (up to 30 s) for the plugin to take calls again, so that a call that ended
    /// the plugin process is not charged to the next one too (restarting a process on a busy
    /// machine can outlast `--timeout`, which is about the plugin's own calls).
    private static func timed(_ function: String, plugin: LoadedPlugin, _ body: () async throws -> String) async -> CallReport {
        let started = ContinuousClock.now
        do {
            let detail = try await body()
            return CallReport(function: function, outcome: .passed, detail: detail, milliseconds: milliseconds(since: started))
        } catch {
            let report = CallReport(function: function, outcome: .failed, detail: "\(error)", milliseconds: milliseconds(since: started))
            let deadline = ContinuousClock.now + .seconds(30)
            while !plugin.takesCalls, plugin.processStatus?.quarantined == nil, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(20))
            }
            return report
        }
    }

    private static func milliseconds(since started: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - started
        return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    }

    /// Parameters an action should accept: its first example's, and for every other parameter its
    /// default or a value of its type within its rules.
    public static func sampleParams(for metadata: ActionMetadata) -> JSONObject {
        var params = metadata.examples.first?.params ?? [:]
        for param in metadata.params where params[param.name] == nil {
            if let value = param.defaultValue {
                params[param.name] = value
                continue
            }
            let rules = param.validation
            switch param.type {
            case .number:
                var number = rules?.min ?? 1
                if let maximum = rules?.max, number > maximum { number = maximum }
                params[param.name] = number == number.rounded() && abs(number) < 1e15 ? .int(Int(number)) : .double(number)
            case .boolean: params[param.name] = false
            case .select: params[param.name] = param.options?.first.map { .string($0.value) } ?? "x"
            case .multiselect: params[param.name] = .array(param.options?.first.map { [.string($0.value)] } ?? [])
            case .json: params[param.name] = [:]
            case .branches: params[param.name] = []
            case .range: params[param.name] = [.int(Int(rules?.min ?? 1)), .int(Int(rules?.max ?? 2))]
            case .string, .template, .modelRef, .clusterRef, .projectRef, .endpointRef, .providerRef, .credentialRef, .cloudModelRef:
                let length = min(max(rules?.minLength ?? 5, 1), rules?.maxLength ?? 64)
                params[param.name] = .string(String(repeating: "x", count: max(1, length)))
            }
        }
        return params
    }
}

/// Collects the warnings and errors logged while the plugin is checked: the host logs protocol
/// faults it survives (a call handle used after its call, a frame that breaks the protocol).
private final class FaultLog: LogHandler, @unchecked Sendable {
    // @unchecked: the entries are behind a Mutex; the other properties are set once, before use.
    private let collected = Mutex<[String]>([])
    var logLevel: Logger.Level = .warning
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    var entries: [String] { collected.withLock { $0 } }

    func log(event: LogEvent) {
        let text = "\(event.message)"
        // The faults a plugin commits that do not fail a call outright.
        let faults = ["call handle after its call", "broke the plugin protocol", "wrote more than", "shutdown did not return in time"]
        guard faults.contains(where: text.contains) else { return }
        let details = (event.metadata ?? [:]).filter { ["action", "plugin_call", "reason", "error", "timeout"].contains($0.key) }
            .map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")
        collected.withLock { $0.append(details.isEmpty ? text : "\(text) (\(details))") }
    }
}
