import BudJSON
import Foundation
import Logging
import PluginSchema
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// How a plugin process is started and kept: where the runner is, what the process may use, and
/// how crashes are answered.
public struct PluginProcessSettings: Sendable, Equatable {
    /// The runner: an executable and the arguments that put it in plugin-process mode
    /// (`budpipeline plugin-process`). The library's path is added after them.
    public var runner: [String]
    /// Address space limit of a plugin process, in bytes; `nil`: none.
    public var memoryLimitBytes: Int?
    /// Open files limit of a plugin process.
    public var openFilesLimit: Int
    /// CPU time limit of a plugin process, in seconds; `nil`: none. A process that reaches it is
    /// killed (SIGXCPU, then SIGKILL) and restarted like after a crash.
    public var cpuSecondsLimit: Int?
    /// Crashes within ``crashWindow`` after which the plugin is quarantined instead of restarted.
    public var quarantineAfterCrashes: Int
    public var crashWindow: Duration
    /// Wait before the first restart; doubles with each crash in the window, up to ``maximumBackoff``.
    public var firstBackoff: Duration
    public var maximumBackoff: Duration
    /// Environment variables a plugin process keeps (their values from the server's environment);
    /// everything else — database credentials, tokens — is left out.
    public var keptEnvironment: [String]

    public init(
        runner: [String] = PluginProcessSettings.defaultRunner,
        memoryLimitBytes: Int? = 2 << 30,
        openFilesLimit: Int = 256,
        cpuSecondsLimit: Int? = nil,
        quarantineAfterCrashes: Int = 5,
        crashWindow: Duration = .seconds(300),
        firstBackoff: Duration = .milliseconds(100),
        maximumBackoff: Duration = .seconds(30),
        keptEnvironment: [String] = PluginProcessSettings.defaultKeptEnvironment
    ) {
        self.runner = runner
        self.memoryLimitBytes = memoryLimitBytes
        self.openFilesLimit = openFilesLimit
        self.cpuSecondsLimit = cpuSecondsLimit
        self.quarantineAfterCrashes = quarantineAfterCrashes
        self.crashWindow = crashWindow
        self.firstBackoff = firstBackoff
        self.maximumBackoff = maximumBackoff
        self.keptEnvironment = keptEnvironment
    }

    /// This executable in plugin-process mode.
    public static var defaultRunner: [String] {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return [executable, "plugin-process"]
    }

    /// What a library may reasonably need from the environment: locale, time zone, paths, and
    /// the settings the bundled plugins read (app ids and the system user).
    public static let defaultKeptEnvironment = [
        "PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "HOME", "TMPDIR", "BUDAPP_APP_ID", "BUDCLUSTER_APP_ID", "BUDSIM_APP_ID",
        "BUDNOTIFY_APP_ID", "SYSTEM_USER_ID",
    ]
}

/// How a plugin process is doing, for `/health` and `plugins list`.
public struct PluginProcessStatus: Sendable, Equatable {
    /// Its process id, while one runs.
    public var pid: Int32?
    /// Times it was started again after a crash or a kill.
    public var restarts: Int
    /// Crashes (and kills for an overrun) since the server started.
    public var crashes: Int
    /// The last way it ended, e.g. `signal 11 (SIGSEGV)`.
    public var lastExit: String?
    /// Why it no longer runs, when quarantined.
    public var quarantined: String?
}

/// What a library reported when it opened in a plugin process.
struct OpenedLibrary: Sendable {
    var image: PluginImage
}

/// The server's side of one plugin process: starts it, sends it calls and carries out its host
/// services, and restarts it after a crash (see docs/plugins.md, "Isolation").
///
/// Everything the process sends is checked as hostile input. A crash, a protocol fault or a call
/// past its timeout ends the process; the calls under way fail with a retryable error naming the
/// plugin and the way it ended, and the process starts again after a backoff — unless it ended
/// too often within the crash window, in which case the plugin is quarantined (unhealthy, calls
/// refused) and the server keeps serving.
final class PluginProcess: Sendable {
    let file: String
    private let settings: PluginProcessSettings
    private let limits: PluginLimits
    private let serviceInvoker: (any ServiceInvoker)?
    private let logger: Logger

    private struct Pending {
        var continuation: CheckedContinuation<RawCallResult, any Error>
        var context: PluginCallContext
        var kind: PluginCallKind
        var action: String?
        var deadline: ContinuousClock.Instant
        var timeout: Duration
    }

    private enum Phase {
        case notStarted
        case starting
        case ready
        case restarting
        case quarantined(String)
        case stopped
    }

    private struct State {
        var phase = Phase.notStarted
        var pid: Int32?
        var channel: PluginChannel?
        /// Starts so far; a reader only acts while its generation is the current one.
        var generation = 0
        var nextID: UInt64 = 0
        var pending: [UInt64: Pending] = [:]
        /// Waiting for the first frame of a start (`opened`, `ready` or `refused`).
        var handshake: CheckedContinuation<PluginFrame, any Error>?
        /// Calls waiting for the process to be ready again.
        var waitingForReady: [UInt64: CheckedContinuation<Void, any Error>] = [:]
        var crashTimes: [ContinuousClock.Instant] = []
        var restarts = 0
        var crashes = 0
        var lastExit: String?
        /// Why the current process is being ended, when the server ends it.
        var endReason: String?
        /// The plugin's name and configuration, once known: a restart sends them again.
        var name: String?
        var configuration: JSONObject = [:]
        var openedImage: PluginImage?
    }

    private let state = Mutex(State())

    init(file: String, settings: PluginProcessSettings, limits: PluginLimits, serviceInvoker: (any ServiceInvoker)?, logger: Logger) {
        self.file = file
        self.settings = settings
        self.limits = limits
        self.serviceInvoker = serviceInvoker
        self.logger = logger
    }

    var status: PluginProcessStatus {
        state.withLock { state in
            var quarantined: String?
            if case .quarantined(let reason) = state.phase { quarantined = reason }
            return PluginProcessStatus(
                pid: state.pid, restarts: state.restarts, crashes: state.crashes, lastExit: state.lastExit, quarantined: quarantined)
        }
    }

    var quarantineReason: String? {
        state.withLock { state in
            if case .quarantined(let reason) = state.phase { return reason }
            return nil
        }
    }

    private var pluginLabel: String { state.withLock { $0.name } ?? URL(fileURLWithPath: file).lastPathComponent }

    // MARK: Starting

    /// Starts the process and waits for the library to open; throws a refusal naming the reason.
    func open(timeout: Duration) async throws(PluginRefusal) -> PluginImage {
        let frame = try await start(timeout: timeout)
        guard frame.kind == .opened else { throw refusal(from: frame, while: "opening") }
        do {
            let image = try Self.image(from: frame, file: file)
            state.withLock { $0.openedImage = image }
            return image
        } catch {
            stop()
            throw PluginRefusal(file: file, reason: "the plugin process reported the library badly: \(error)")
        }
    }

    /// Sends the plugin its configuration and waits for its `init`.
    func configure(name: String, configuration: JSONObject, timeout: Duration) async throws(PluginRefusal) {
        state.withLock { state in
            state.name = name
            state.configuration = configuration
        }
        let frame: PluginFrame
        do {
            frame = try await handshake(timeout: timeout) { channel in
                try channel.write(self.configureFrame(configuration))
            }
        } catch {
            stop()
            throw PluginRefusal(file: file, reason: "init in the plugin process failed: \(error)")
        }
        guard frame.kind == .ready else { throw refusal(from: frame, while: "init") }
        state.withLock { $0.phase = .ready }
    }

    private func configureFrame(_ configuration: JSONObject) -> PluginFrame {
        PluginFrame(
            .configure,
            header: [
                "configuration": .object(configuration), "log_level": .string(logger.logLevel.rawValue),
                "maximum_output_bytes": .int(limits.maximumOutputBytes), "maximum_error_bytes": .int(limits.maximumErrorBytes),
                "maximum_log_line_bytes": .int(limits.maximumLogLineBytes),
            ])
    }

    private func refusal(from frame: PluginFrame, while step: String) -> PluginRefusal {
        stop()
        if frame.kind == .refused, let reason = frame.header["reason"]?.stringValue {
            return PluginRefusal(file: file, reason: reason)
        }
        return PluginRefusal(file: file, reason: "the plugin process answered \(frame.kind) while \(step)")
    }

    /// Spawns a process and waits for its first frame.
    private func start(timeout: Duration) async throws(PluginRefusal) -> PluginFrame {
        do {
            return try await handshake(timeout: timeout) { _ in }
        } catch {
            throw PluginRefusal(file: file, reason: "the plugin process did not start: \(error)")
        }
    }

    /// Runs `send` on the live channel (spawning a process first when none runs) and waits for
    /// the next handshake frame.
    private func handshake(timeout: Duration, send: @escaping @Sendable (PluginChannel) throws -> Void) async throws -> PluginFrame {
        let channel: PluginChannel
        if let live = state.withLock({ $0.channel }) {
            channel = live
        } else {
            channel = try spawn()
        }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            guard !Task.isCancelled, let self else { return }
            let waiting = self.state.withLock { state -> CheckedContinuation<PluginFrame, any Error>? in
                defer { state.handshake = nil }
                return state.handshake
            }
            waiting?.resume(throwing: PluginFrameError("no answer within \(PluginHost.format(timeout))"))
            self.kill(reason: "it did not answer within \(PluginHost.format(timeout))")
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            state.withLock { $0.handshake = continuation }
            do {
                try send(channel)
            } catch {
                let waiting = state.withLock { state -> CheckedContinuation<PluginFrame, any Error>? in
                    defer { state.handshake = nil }
                    return state.handshake
                }
                waiting?.resume(throwing: error)
            }
        }
    }

    /// Starts a plugin process with a fresh socket pair and its reader thread.
    private func spawn() throws -> PluginChannel {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw PluginFrameError("socketpair failed: errno \(errno)")
        }
        let (serverEnd, childEnd) = (pair[0], pair[1])
        let arguments = settings.runner + limitArguments + [file]
        let environment =
            settings.keptEnvironment.compactMap { name in ProcessInfo.processInfo.environment[name].map { "\(name)=\($0)" } }
            + ["BUDPIPELINE_PLUGIN_PROCESS=1"]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, childEnd, 3)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        // The plugin's own prints go where the server's diagnostics go.
        posix_spawn_file_actions_adddup2(&actions, 2, 1)
        var pid: pid_t = 0
        let result = Self.withCStrings(arguments) { argv in
            Self.withCStrings(environment) { envp in
                posix_spawn(&pid, arguments[0], &actions, nil, argv, envp)
            }
        }
        Glibc.close(childEnd)
        guard result == 0 else {
            Glibc.close(serverEnd)
            throw PluginFrameError("could not start \(arguments[0]): \(String(cString: strerror(result)))")
        }
        let channel = PluginChannel(descriptor: serverEnd)
        let generation = state.withLock { state in
            state.generation += 1
            state.pid = pid
            state.channel = channel
            if case .notStarted = state.phase { state.phase = .starting }
            return state.generation
        }
        let spawned = pid
        let thread = Thread { [self] in readLoop(channel: channel, pid: spawned, generation: generation) }
        thread.name = "bp-plugin-reader"
        thread.start()
        return channel
    }

    private var limitArguments: [String] {
        var arguments = ["--open-files", "\(settings.openFilesLimit)"]
        if let memory = settings.memoryLimitBytes { arguments += ["--memory-bytes", "\(memory)"] }
        if let cpu = settings.cpuSecondsLimit { arguments += ["--cpu-seconds", "\(cpu)"] }
        return arguments
    }

    private static func withCStrings<Result>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> Result) -> Result {
        let pointers = strings.map { strdup($0) } + [nil]
        defer { pointers.forEach { free($0) } }
        return body(pointers)
    }

    private static func image(from frame: PluginFrame, file: String) throws -> PluginImage {
        let manifest = try PluginManifest(json: frame.header["manifest"] ?? .null)
        guard case .array(let actionDocuments)? = frame.header["actions"], case .array(let functionDocuments)? = frame.header["functions"],
            actionDocuments.count == functionDocuments.count, !actionDocuments.isEmpty, actionDocuments.count <= 10_000
        else { throw PluginFrameError("the actions are missing or do not match their functions") }
        let actions = try actionDocuments.map { try ActionMetadata(json: $0) }
        let functions = functionDocuments.map { document in
            ActionFunctions(
                onEvent: document["on_event"]?.boolValue == true, validateParams: document["validate_params"]?.boolValue == true,
                cleanup: document["cleanup"]?.boolValue == true)
        }
        guard let major = frame.header["abi_major"]?.intValue, let minor = frame.header["abi_minor"]?.intValue,
            let abiMajor = UInt32(exactly: major), let abiMinor = UInt32(exactly: minor)
        else { throw PluginFrameError("the ABI version is missing") }
        return PluginImage(
            file: file, manifest: manifest, abiMajor: abiMajor, abiMinor: abiMinor,
            isThreadSafe: frame.header["thread_safe"]?.boolValue == true, actions: actions, functions: functions, entryPoints: nil)
    }

    // MARK: Calls

    /// Makes one call in the plugin process and waits for its result, at most `timeout`.
    func call(
        kind: PluginCallKind, actionIndex: Int, action: String, input: [UInt8], context: PluginCallContext, timeout: Duration
    ) async throws(PluginCallError) -> RawCallResult {
        let deadline = ContinuousClock.now + timeout
        try await waitUntilReady(before: deadline, action: action)
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        var header: JSONObject = [
            "kind": .string(kind.rawValue), "action_index": .int(actionIndex),
            "timeout_ms": .int(Int((timeout / .milliseconds(1)).clamped(to: 0...1e12))),
            "progress": .bool(context.progressHandler != nil),
        ]
        header["execution_id"] = context.executionID.map(JSONValue.string)
        header["step_id"] = context.stepID.map(JSONValue.string)
        let frame = PluginFrame(.call, id: id, header: header, blob: input)
        let label = pluginLabel
        // Overruns are found by the shared deadline watch (``DeadlineWatch``), not by a timer per call.
        DeadlineWatch.shared.watch(self)
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    let channel = state.withLock { state -> PluginChannel? in
                        state.pending[id] = Pending(
                            continuation: continuation, context: context, kind: kind, action: action, deadline: deadline, timeout: timeout)
                        return state.channel
                    }
                    do {
                        guard let channel else { throw PluginFrameError("the plugin process is not running") }
                        try channel.write(frame)
                    } catch {
                        _ = finish(
                            id,
                            with: .failure(
                                PluginCallError(.pluginCrashed, "plugin '\(label)': its process could not take the call: \(error)")))
                    }
                }
            } onCancel: {
                if self.finish(id, with: .failure(PluginCallError(.cancelled, "the call to action '\(action)' was cancelled"))) {
                    let channel = self.state.withLock { $0.channel }
                    try? channel?.write(PluginFrame(.cancel, id: id))
                }
            }
        } catch let error as PluginCallError {
            throw error
        } catch {
            throw PluginCallError(.pluginCrashed, "plugin '\(label)': \(error)")
        }
    }

    /// Fails the calls past their deadline and ends the process they overran in; called by the
    /// deadline watch. Returns whether calls are still waiting.
    func failOverdueCalls(now: ContinuousClock.Instant) -> Bool {
        let (overdue, more) = state.withLock { state -> ([(UInt64, Pending)], Bool) in
            let overdue = state.pending.filter { $0.value.deadline <= now }
            for (id, _) in overdue { state.pending.removeValue(forKey: id) }
            return (Array(overdue), !state.pending.isEmpty)
        }
        guard !overdue.isEmpty else { return more }
        let label = pluginLabel
        for (_, pending) in overdue {
            let what = "\(pending.kind.rawValue) of action '\(pending.action ?? "-")'"
            pending.continuation.resume(
                throwing: PluginCallError(
                    .timedOut,
                    "plugin '\(label)': \(what) did not return within \(PluginHost.format(pending.timeout)); "
                        + "its plugin process was stopped and starts again"))
        }
        if let first = overdue.first?.1 {
            kill(
                reason:
                    "\(first.kind.rawValue) of action '\(first.action ?? "-")' overran its timeout of \(PluginHost.format(first.timeout))")
        }
        return more
    }

    /// Resumes the waiting call `id` once; `false` when it was already finished.
    @discardableResult
    private func finish(_ id: UInt64, with result: Result<RawCallResult, PluginCallError>) -> Bool {
        guard let pending = state.withLock({ $0.pending.removeValue(forKey: id) }) else { return false }
        pending.continuation.resume(with: result.mapError { $0 as any Error })
        return true
    }

    /// Waits while the process restarts; throws when the plugin is quarantined or stopped, or
    /// when it is not ready by `deadline`.
    private func waitUntilReady(before deadline: ContinuousClock.Instant, action: String) async throws(PluginCallError) {
        if case .ready = state.withLock({ $0.phase }) { return }
        let label = pluginLabel
        do {
            let ticket = state.withLock { state -> UInt64 in
                state.nextID += 1
                return state.nextID
            }
            let timer = Task { [weak self] in
                try? await Task.sleep(until: deadline)
                guard !Task.isCancelled, let self else { return }
                let waiter = self.state.withLock { $0.waitingForReady.removeValue(forKey: ticket) }
                waiter?.resume(
                    throwing: PluginCallError(
                        .timedOutWaiting, "plugin '\(label)': its process was not ready in time for action '\(action)'"))
            }
            defer { timer.cancel() }
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome = state.withLock { state -> Result<Void, PluginCallError>? in
                    switch state.phase {
                    case .ready: return .success(())
                    case .quarantined(let reason):
                        return .failure(PluginCallError(.pluginUnhealthy, "plugin '\(label)' is quarantined: \(reason)"))
                    case .stopped: return .failure(PluginCallError(.shuttingDown, "the plugin host is shutting down"))
                    case .notStarted, .starting, .restarting:
                        state.waitingForReady[ticket] = continuation
                        return nil
                    }
                }
                if let outcome { continuation.resume(with: outcome.mapError { $0 as any Error }) }
            }
        } catch let error as PluginCallError {
            throw error
        } catch {
            throw PluginCallError(.cancelled, "the call to action '\(action)' was cancelled")
        }
    }

    // MARK: Reading what the process sends

    private func readLoop(channel: PluginChannel, pid: Int32, generation: Int) {
        var fault: String?
        while true {
            let frame: PluginFrame?
            do {
                frame = try channel.read()
            } catch {
                fault = "it broke the plugin protocol: \(error)"
                break
            }
            guard let frame else { break }
            if let problem = handle(frame, channel: channel) {
                fault = "it broke the plugin protocol: \(problem)"
                break
            }
        }
        if fault != nil { Glibc.kill(pid, SIGKILL) }
        let exit = Self.waitForExit(pid)
        channel.close()
        ended(generation: generation, exit: exit, fault: fault)
    }

    /// Acts on one frame; returns a problem when the frame breaks the protocol.
    private func handle(_ frame: PluginFrame, channel: PluginChannel) -> String? {
        switch frame.kind {
        case .opened, .ready, .refused:
            let waiting = state.withLock { state -> CheckedContinuation<PluginFrame, any Error>? in
                defer { state.handshake = nil }
                return state.handshake
            }
            guard let waiting else { return "it sent \(frame.kind) outside a start" }
            waiting.resume(returning: frame)
        case .result:
            let status = CallStatus(rawValue: UInt32(clamping: frame.header["status"]?.intValue ?? Int(CallStatus.fatalError.rawValue)))
            guard frame.blob.count <= limits.maximumOutputBytes else { return "a result larger than the output limit" }
            let error = LogLine.truncated(frame.header["error"]?.stringValue ?? "", maximumBytes: limits.maximumErrorBytes)
            finish(frame.id, with: .success(RawCallResult(status: status, output: frame.blob, errorMessage: error)))
        case .log:
            log(frame)
        case .progress:
            progress(frame)
        case .serviceRequest:
            serve(frame, channel: channel)
        case .configure, .call, .cancel, .serviceReply, .shutdown:
            return "it sent \(frame.kind), which only the server sends"
        }
        return nil
    }

    private func log(_ frame: PluginFrame) {
        let level = frame.header["level"]?.stringValue.flatMap(Logger.Level.init(rawValue:)) ?? .info
        guard level >= logger.logLevel else { return }
        let message = LogLine.truncated(frame.header["message"]?.stringValue ?? "", maximumBytes: limits.maximumLogLineBytes)
        var metadata: Logger.Metadata = [:]
        if case .object(let fields)? = frame.header["metadata"] {
            for (key, value) in fields.prefix(32) {
                metadata[String(key.prefix(64))] = "\(LogLine.truncated(value.stringValue ?? "", maximumBytes: 1024))"
            }
        }
        metadata["plugin"] = "\(pluginLabel)"
        metadata["plugin_file"] = "\(file)"
        metadata["plugin_pid"] = "\(state.withLock { $0.pid } ?? 0)"
        logger.log(level: level, "\(message)", metadata: metadata)
    }

    private func progress(_ frame: PluginFrame) {
        guard let pending = state.withLock({ $0.pending[frame.id] }), pending.kind == .execute,
            let handler = pending.context.progressHandler
        else { return }
        var progress = PluginProgress()
        if let percent = frame.header["percent"]?.doubleValue, percent.isFinite, (0...100).contains(percent) { progress.percent = percent }
        if let eta = frame.header["eta_seconds"]?.intValue, eta >= 0 { progress.etaSeconds = DurationLimits.clamp(eta) }
        if let message = frame.header["message"]?.stringValue { progress.message = LogLine.truncated(message, maximumBytes: 4096) }
        handler(progress)
    }

    /// Carries out an `invoke_service` for a call under way, with the checks the in-process path
    /// makes: the process names nothing but the app, method, path, body and timeout.
    private func serve(_ frame: PluginFrame, channel: PluginChannel) {
        let callID = UInt64(clamping: frame.header["call"]?.intValue ?? 0)
        let context = state.withLock { $0.pending[callID]?.context }
        let label = pluginLabel
        let requestID = frame.id
        let invoker = serviceInvoker
        Task {
            var reply: JSONObject
            var body: [UInt8] = []
            if let context, let invoker {
                let timeoutMilliseconds = frame.header["timeout_ms"]?.intValue ?? 0
                do throws(ServiceRequestRefusal) {
                    let invocation = try ServiceInvocation(
                        appID: frame.header["app_id"]?.stringValue ?? "", method: frame.header["method"]?.stringValue ?? "",
                        path: frame.header["path"]?.stringValue ?? "", body: frame.blob,
                        timeout: timeoutMilliseconds > 0 ? .milliseconds(Int64(min(timeoutMilliseconds, 86_400_000))) : nil,
                        pluginName: label, executionID: context.executionID, stepID: context.stepID)
                    switch await Self.invoke(invocation, on: invoker) {
                    case .success(let response):
                        reply = ["outcome": "answered", "http_status": .int(response.statusCode)]
                        body = response.body
                    case .failure(let error):
                        reply = ["outcome": "unanswered", "message": .string(error.message)]
                    }
                } catch {
                    logger.warning("service call refused", metadata: ["plugin": "\(label)", "reason": "\(error.message)"])
                    reply = ["outcome": "refused", "message": .string("service call refused: \(error.message)")]
                }
            } else if context == nil {
                reply = ["outcome": "refused", "message": "no call of this plugin is under way"]
            } else {
                reply = ["outcome": "unsupported", "message": "service invocation is not configured on this host"]
            }
            try? channel.write(PluginFrame(.serviceReply, id: requestID, header: reply, blob: body))
        }
    }

    private static func invoke(_ invocation: ServiceInvocation, on invoker: any ServiceInvoker) async
        -> Result<ServiceInvocationResponse, ServiceInvocationError>
    {
        do throws(ServiceInvocationError) {
            return .success(try await invoker.invoke(invocation))
        } catch {
            return .failure(error)
        }
    }

    // MARK: Ends and restarts

    /// Ends the current process now (SIGKILL); the reader then handles the end. A ready process
    /// stops taking calls at once: new calls wait for the one that replaces it.
    private func kill(reason: String) {
        let pid = state.withLock { state -> Int32? in
            state.endReason = state.endReason ?? reason
            if case .ready = state.phase {
                state.phase = .restarting
                state.channel = nil
            }
            return state.pid
        }
        if let pid { Glibc.kill(pid, SIGKILL) }
    }

    private static func waitForExit(_ pid: Int32) -> String {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { return "an unknown way (waitpid: errno \(errno))" }
        }
        let signal = status & 0x7f
        if signal == 0 { return "exit status \((status >> 8) & 0xff)" }
        return signalNames[signal].map { "signal \(signal) (\($0))" } ?? "signal \(signal)"
    }

    /// The process of `generation` ended: fail its calls, then restart or quarantine.
    private func ended(generation: Int, exit: String, fault: String?) {
        let label = pluginLabel
        let outcome = state.withLock {
            state -> (pending: [Pending], handshake: CheckedContinuation<PluginFrame, any Error>?, restart: Duration?, quarantine: String?)?
            in
            guard state.generation == generation else { return nil }
            let reason = fault ?? state.endReason
            state.endReason = nil
            state.channel = nil
            state.pid = nil
            state.lastExit = exit
            let pending = Array(state.pending.values)
            state.pending = [:]
            let handshake = state.handshake
            state.handshake = nil
            switch state.phase {
            case .stopped, .quarantined, .notStarted, .starting:
                return (pending, handshake, nil, nil)
            case .ready, .restarting:
                break
            }
            let now = ContinuousClock.now
            state.crashes += 1
            state.crashTimes = state.crashTimes.filter { now - $0 < settings.crashWindow } + [now]
            if state.crashTimes.count >= settings.quarantineAfterCrashes {
                let why =
                    "its process ended \(state.crashTimes.count) times within \(PluginHost.format(settings.crashWindow)) "
                    + "(last: \(reason.map { "\($0); " } ?? "")\(exit))"
                state.phase = .quarantined(why)
                return (pending, handshake, nil, why)
            }
            state.phase = .restarting
            let doublings = min(state.crashTimes.count - 1, 20)
            let backoff = min(settings.firstBackoff * (1 << doublings), settings.maximumBackoff)
            return (pending, handshake, backoff, nil)
        }
        guard let outcome else { return }
        let how = "plugin '\(label)': its process ended (\(exit)) while this call was under way"
        for pending in outcome.pending {
            pending.continuation.resume(
                throwing: PluginCallError(.pluginCrashed, how + " (\(pending.kind.rawValue) of action '\(pending.action ?? "-")')"))
        }
        outcome.handshake?.resume(throwing: PluginFrameError("the plugin process ended (\(exit))"))
        if let quarantine = outcome.quarantine {
            logger.error("plugin quarantined", metadata: ["plugin": "\(label)", "reason": "\(quarantine)"])
            failWaiters(PluginCallError(.pluginUnhealthy, "plugin '\(label)' is quarantined: \(quarantine)"))
        } else if let backoff = outcome.restart {
            logger.error(
                "plugin process ended; restarting",
                metadata: ["plugin": "\(label)", "exit": "\(exit)", "backoff": "\(PluginHost.format(backoff))"])
            Task { [weak self] in
                try? await Task.sleep(for: backoff)
                await self?.restart()
            }
        }
    }

    /// Starts the process again and brings it back to ready, with the same library and settings.
    private func restart() async {
        guard case .restarting = state.withLock({ $0.phase }) else { return }
        let (name, configuration, expected) = state.withLock { ($0.name, $0.configuration, $0.openedImage) }
        do {
            let frame = try await handshake(timeout: .seconds(30)) { _ in }
            guard frame.kind == .opened else { throw PluginFrameError("it answered \(frame.kind) when opening") }
            let image = try Self.image(from: frame, file: file)
            guard image.manifest == expected?.manifest, image.actions.map(\.type) == expected?.actions.map(\.type) else {
                throw PluginFrameError("the library changed since it was loaded; reload the plugins to use the new one")
            }
            let ready = try await handshake(timeout: .seconds(30)) { channel in try channel.write(self.configureFrame(configuration)) }
            guard ready.kind == .ready else { throw PluginFrameError(ready.header["reason"]?.stringValue ?? "it answered \(ready.kind)") }
            let waiters = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
                state.restarts += 1
                guard case .restarting = state.phase else { return [] }
                state.phase = .ready
                defer { state.waitingForReady = [:] }
                return Array(state.waitingForReady.values)
            }
            for waiter in waiters { waiter.resume() }
            logger.notice("plugin process restarted", metadata: ["plugin": "\(name ?? file)", "pid": "\(state.withLock { $0.pid } ?? 0)"])
        } catch {
            let reason = "it could not be started again: \(error)"
            kill(reason: reason)
            state.withLock { $0.phase = .quarantined(reason) }
            logger.error("plugin quarantined", metadata: ["plugin": "\(name ?? file)", "reason": "\(reason)"])
            failWaiters(PluginCallError(.pluginUnhealthy, "plugin '\(name ?? file)' is quarantined: \(reason)"))
        }
    }

    private func failWaiters(_ error: PluginCallError) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            defer { state.waitingForReady = [:] }
            return Array(state.waitingForReady.values)
        }
        for waiter in waiters { waiter.resume(throwing: error) }
    }

    /// Asks the plugin to shut down, then ends the process; no restart follows.
    func shutdown(timeout: Duration) async {
        let (channel, pid) = state.withLock { state -> (PluginChannel?, Int32?) in
            state.phase = .stopped
            return (state.channel, state.pid)
        }
        failWaiters(PluginCallError(.shuttingDown, "the plugin host is shutting down"))
        guard let channel, let pid else { return }
        try? channel.write(PluginFrame(.shutdown))
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, state.withLock({ $0.pid }) == pid {
            try? await Task.sleep(for: .milliseconds(10))
        }
        if state.withLock({ $0.pid }) == pid { Glibc.kill(pid, SIGKILL) }
    }

    /// Ends the process without restarting it (a refused start).
    func stop() {
        let pid = state.withLock { state -> Int32? in
            state.phase = .stopped
            return state.pid
        }
        if let pid { Glibc.kill(pid, SIGKILL) }
    }
}

/// One thread that looks for plugin calls past their deadline, for every plugin process: a timer
/// task per call would cost more than the call itself. It looks every 10 ms while calls wait, and
/// sleeps otherwise.
final class DeadlineWatch: Sendable {
    static let shared = DeadlineWatch()

    private struct Watched {
        var processes: [ObjectIdentifier: WeakProcess] = [:]
        var running = false
        var registrations = 0
    }

    private struct WeakProcess: @unchecked Sendable {
        // @unchecked: `weak` storage is read and written only under the watch's lock or on
        // copies taken under it; the process itself is Sendable.
        weak var process: PluginProcess?
        /// Which registration this is: one made after the loop looked is not dropped by it.
        var registration: Int
    }

    private let watched = Mutex(Watched())

    /// Makes sure `process` is looked at until its waiting calls are done.
    func watch(_ process: PluginProcess) {
        let start = watched.withLock { watched -> Bool in
            watched.registrations += 1
            watched.processes[ObjectIdentifier(process)] = WeakProcess(process: process, registration: watched.registrations)
            if watched.running { return false }
            watched.running = true
            return true
        }
        if start {
            let thread = Thread { [self] in loop() }
            thread.name = "bp-plugin-deadlines"
            thread.start()
        }
    }

    private func loop() {
        while true {
            usleep(10_000)
            let processes = watched.withLock { $0.processes }
            let now = ContinuousClock.now
            var idle: [(ObjectIdentifier, Int)] = []
            for (key, entry) in processes {
                guard let process = entry.process, process.failOverdueCalls(now: now) else {
                    idle.append((key, entry.registration))
                    continue
                }
            }
            let stop = watched.withLock { watched -> Bool in
                for (key, registration) in idle where watched.processes[key]?.registration == registration {
                    watched.processes.removeValue(forKey: key)
                }
                if watched.processes.isEmpty {
                    watched.running = false
                    return true
                }
                return false
            }
            if stop { return }
        }
    }
}

/// Names of the signals a plugin process is likely to end by.
private let signalNames: [Int32: String] = [
    SIGSEGV: "SIGSEGV", SIGABRT: "SIGABRT", SIGKILL: "SIGKILL", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGILL: "SIGILL",
    SIGXCPU: "SIGXCPU", SIGTERM: "SIGTERM", SIGTRAP: "SIGTRAP", SIGSYS: "SIGSYS", SIGPIPE: "SIGPIPE",
]

extension Comparable {
    fileprivate func clamped(to range: ClosedRange<Self>) -> Self { min(max(self, range.lowerBound), range.upperBound) }
}
