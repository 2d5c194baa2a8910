import BudJSON
import CPluginSandbox
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
    /// Calls a plugin process serves at once (1 to 32), each on a socket of its own with a thread
    /// at both ends; a plugin that is not thread-safe uses one.
    public var callChannels: Int
    /// Which users plugin processes run as.
    public var users: PluginProcessUsers
    /// The user (and group) id this plugin's process switches to before it opens the library;
    /// `nil`: it stays the server's user. Set per plugin from ``users`` when plugins load.
    public var userID: UInt32?

    public init(
        runner: [String] = PluginProcessSettings.defaultRunner,
        memoryLimitBytes: Int? = 2 << 30,
        openFilesLimit: Int = 256,
        cpuSecondsLimit: Int? = nil,
        quarantineAfterCrashes: Int = 5,
        crashWindow: Duration = .seconds(300),
        firstBackoff: Duration = .milliseconds(100),
        maximumBackoff: Duration = .seconds(30),
        keptEnvironment: [String] = PluginProcessSettings.defaultKeptEnvironment,
        callChannels: Int = 4,
        users: PluginProcessUsers = .automatic
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
        self.callChannels = min(max(callChannels, 1), 32)
        self.users = users
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

/// Which users plugin processes run as (`BUDPIPELINE_PLUGIN_PROCESS_USERS`; see
/// docs/plugins.md, "Isolation").
public enum PluginProcessUsers: Sendable, Equatable {
    /// Each plugin's process its own user when the server may switch users (it runs as root),
    /// from ``defaultFirstID``; otherwise the server's user.
    case automatic
    /// The server's user, always.
    case server
    /// Each plugin's process its own user, from this id on in load order; a process that cannot
    /// switch refuses to start.
    case range(firstID: UInt32)

    public static let defaultFirstID: UInt32 = 200_000
    /// Leaves room for 100,000 plugins below the highest id a 32-bit system knows.
    public static let highestFirstID: UInt32 = 4_294_000_000

    /// Reads `auto`, `server` or a first id.
    public init?(_ text: String) {
        switch text {
        case "auto": self = .automatic
        case "server": self = .server
        default:
            guard let first = UInt32(text), (1000...Self.highestFirstID).contains(first) else { return nil }
            self = .range(firstID: first)
        }
    }

    /// The user id of the plugin loaded `index`-th, or `nil` for the server's user.
    func userID(forPluginAt index: Int, serverIsRoot: Bool = geteuid() == 0) -> UInt32? {
        let offset = UInt32(clamping: min(max(index, 0), 99_999))
        switch self {
        case .automatic: return serverIsRoot ? Self.defaultFirstID + offset : nil
        case .server: return nil
        case .range(let first): return first + offset
        }
    }
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

/// The server's side of one plugin process: starts it, sends it calls and carries out its host
/// services, and restarts it after a crash (see docs/plugins.md, "Isolation").
///
/// A process has a control channel (descriptor 3 in the child: starting, cancelling, stopping,
/// log lines written outside calls) and ``PluginProcessSettings/callChannels`` call channels
/// (descriptors 4…). Each call channel has a thread at both ends: the server's writes the call
/// and reads what comes back until the result — log lines, progress, service requests, which it
/// answers itself — and the child's runs the call inline. A call costs two cross-process
/// wake-ups and the hand-overs to and from the caller's task, as few as a socket allows.
///
/// Everything the process sends is checked as hostile input. A crash, a protocol fault or a call
/// past its timeout ends the process; the calls under way fail with a retryable error naming the
/// plugin and the way it ended (calls still queued wait for the next process), and the process
/// starts again after a backoff — unless it ended too often within the crash window, in which
/// case the plugin is quarantined (unhealthy, calls refused) and the server keeps serving.
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
        var action: String
        var deadline: ContinuousClock.Instant
        var timeout: Duration
        /// The call, until a channel takes it.
        var frame: PluginFrame?
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
        var control: ServerChannel?
        var slots: [CallSlot] = []
        var freeSlots: [Int] = []
        /// Calls waiting for a free channel, oldest first.
        var queue: [UInt64] = []
        /// Starts so far; a reader only acts while its generation is the current one.
        var generation = 0
        var nextID: UInt64 = 0
        var pending: [UInt64: Pending] = [:]
        /// Waiting for the next frame of a start (`opened`, `ready` or `refused`).
        var handshake: CheckedContinuation<PluginFrame, any Error>?
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
    private let logLimiter = Mutex(LogLimiter())
    /// The library file as it was first opened: every process, restarts included, loads this very
    /// file (it is handed to the child as a descriptor), not whatever the path names by then.
    private let library: Int32
    private let headerLimits: PluginFrame.HeaderLimits

    init(file: String, settings: PluginProcessSettings, limits: PluginLimits, serviceInvoker: (any ServiceInvoker)?, logger: Logger) {
        self.file = file
        self.settings = settings
        self.limits = limits
        self.serviceInvoker = serviceInvoker
        self.logger = logger
        self.headerLimits = PluginFrame.HeaderLimits(logLineBytes: limits.maximumLogLineBytes, errorBytes: limits.maximumErrorBytes)
        self.library = Glibc.open(file, O_RDONLY | O_CLOEXEC)
    }

    deinit {
        if library >= 0 { Glibc.close(library) }
    }

    var status: PluginProcessStatus {
        state.withLock { state in
            var quarantined: String?
            if case .quarantined(let reason) = state.phase { quarantined = reason }
            return PluginProcessStatus(
                pid: state.pid, restarts: state.restarts, crashes: state.crashes, lastExit: state.lastExit, quarantined: quarantined)
        }
    }

    /// Whether the process is up and takes calls (not starting, restarting, quarantined or stopped).
    var isReady: Bool {
        state.withLock { state in
            if case .ready = state.phase { return true }
            return false
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
        let frame: PluginFrame
        do {
            frame = try await handshake(timeout: timeout) { _ in }
        } catch {
            stop()
            throw PluginRefusal(file: file, reason: "the plugin process did not start: \(error)")
        }
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
                try channel.write(self.configureFrame(configuration), waitingAtMost: .seconds(2))
            }
        } catch {
            stop()
            throw PluginRefusal(file: file, reason: "init in the plugin process failed: \(error)")
        }
        guard frame.kind == .ready else { throw refusal(from: frame, while: "init") }
        becomeReady()
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

    /// Waits for the next handshake frame: registers for it, then (spawning a process first when
    /// none runs) runs `send` on the control channel.
    private func handshake(timeout: Duration, send: @escaping @Sendable (ServerChannel) throws -> Void) async throws -> PluginFrame {
        try await withThrowingTaskGroup(of: Void.self) { group in
            // The deadline: a child task that fails the handshake and ends the process, unless
            // the answer came first (then it is cancelled with the group).
            group.addTask { [self] in
                guard (try? await Task.sleep(for: timeout)) != nil, let waiting = takeHandshake() else { return }
                waiting.resume(throwing: PluginFrameError("no answer within \(PluginHost.format(timeout))"))
                kill(reason: "it did not answer within \(PluginHost.format(timeout))")
            }
            // A cancelled caller (a server shutting down under a reload) stops waiting at once, and
            // the half-started process is ended: the deadline child ends with the caller.
            let frame = try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    state.withLock { $0.handshake = continuation }
                    do {
                        let channel = try state.withLock({ $0.control }) ?? spawn()
                        try send(channel)
                    } catch {
                        takeHandshake()?.resume(throwing: error)
                    }
                    if Task.isCancelled { cancelHandshake() }
                }
            } onCancel: {
                cancelHandshake()
            }
            group.cancelAll()
            return frame
        }
    }

    /// Fails the handshake in progress with a cancellation and ends the process it was starting.
    private func cancelHandshake() {
        guard let waiting = takeHandshake() else { return }
        waiting.resume(throwing: CancellationError())
        kill(reason: "its start was cancelled")
    }

    private func takeHandshake() -> CheckedContinuation<PluginFrame, any Error>? {
        state.withLock { state in
            defer { state.handshake = nil }
            return state.handshake
        }
    }

    /// The process answered `ready`: its channels take calls, queued ones first.
    private func becomeReady() {
        let assignments = state.withLock { state -> [(CallSlot, UInt64, PluginFrame)] in
            switch state.phase {
            case .starting, .restarting: return Self.readyAndAssign(&state)
            case .notStarted, .ready, .quarantined, .stopped: return []
            }
        }
        for (slot, id, frame) in assignments { slot.start(id: id, frame: frame) }
    }

    private static func readyAndAssign(_ state: inout State) -> [(CallSlot, UInt64, PluginFrame)] {
        state.phase = .ready
        let threadSafe = state.openedImage?.isThreadSafe ?? false
        state.freeSlots = threadSafe ? Array(state.slots.indices) : (state.slots.isEmpty ? [] : [0])
        return assign(&state)
    }

    /// Hands queued calls to free channels (under the lock); the caller starts them.
    private static func assign(_ state: inout State) -> [(CallSlot, UInt64, PluginFrame)] {
        guard case .ready = state.phase else { return [] }
        var assignments: [(CallSlot, UInt64, PluginFrame)] = []
        while !state.freeSlots.isEmpty, !state.queue.isEmpty {
            let id = state.queue.removeFirst()
            guard let frame = state.pending[id]?.frame else { continue }
            state.pending[id]?.frame = nil
            let slot = state.slots[state.freeSlots.removeLast()]
            assignments.append((slot, id, frame))
        }
        return assignments
    }

    /// Starts a plugin process with fresh sockets, the control reader, the call channels'
    /// threads and the process's reaper.
    private func spawn() throws -> ServerChannel {
        Self.protectServer()
        let count = settings.callChannels
        var serverEnds: [Int32] = []
        var childEnds: [Int32] = []
        defer { childEnds.forEach { Glibc.close($0) } }
        for _ in 0...count {
            var pair: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                serverEnds.forEach { Glibc.close($0) }
                throw PluginFrameError("socketpair failed: errno \(errno)")
            }
            serverEnds.append(pair[0])
            // Above every descriptor the child is given, so that no dup2 below overwrites one
            // still to be copied.
            let high = fcntl(pair[1], F_DUPFD_CLOEXEC, 64)
            Glibc.close(pair[1])
            guard high >= 0 else {
                serverEnds.forEach { Glibc.close($0) }
                throw PluginFrameError("fcntl failed: errno \(errno)")
            }
            childEnds.append(high)
        }
        // The library, as first opened, becomes the child's descriptor after its channels.
        var libraryPath = file
        if library >= 0 {
            let high = fcntl(library, F_DUPFD_CLOEXEC, 64)
            guard high >= 0 else {
                serverEnds.forEach { Glibc.close($0) }
                throw PluginFrameError("fcntl failed: errno \(errno)")
            }
            libraryPath = "/proc/self/fd/\(3 + childEnds.count)"
            childEnds.append(high)
        }
        let arguments = settings.runner + runnerArguments + ["--call-channels", "\(count)", libraryPath]
        let environment =
            settings.keptEnvironment.compactMap { name in ProcessInfo.processInfo.environment[name].map { "\(name)=\($0)" } }
            + ["BUDPIPELINE_PLUGIN_PROCESS=1"]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (index, descriptor) in childEnds.enumerated() { posix_spawn_file_actions_adddup2(&actions, descriptor, Int32(3 + index)) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        // The plugin's own prints go where the server's diagnostics go.
        posix_spawn_file_actions_adddup2(&actions, 2, 1)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A process group of its own, which the server ends as a whole (the process's filter keeps
        // what it starts from leaving it); no signal blocked, every handler the default one but
        // SIGPIPE's (ignored, as in the server: a closed pipe is an error, not an end).
        var none = sigset_t()
        sigemptyset(&none)
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGPIPE)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let result = Self.withCStrings(arguments) { argv in
            Self.withCStrings(environment) { envp in
                posix_spawn(&pid, arguments[0], &actions, &attributes, argv, envp)
            }
        }
        guard result == 0 else {
            serverEnds.forEach { Glibc.close($0) }
            throw PluginFrameError("could not start \(arguments[0]): \(String(cString: strerror(result)))")
        }
        let control = ServerChannel(descriptor: serverEnds[0])
        let spawned = pid
        let (generation, slots) = state.withLock { state -> (Int, [CallSlot]) in
            state.generation += 1
            state.pid = pid
            state.control = control
            state.slots = serverEnds.dropFirst().enumerated().map { index, descriptor in
                CallSlot(index: index, channel: ServerChannel(descriptor: descriptor), generation: state.generation + 0)
            }
            state.freeSlots = []
            if case .notStarted = state.phase { state.phase = .starting }
            return (state.generation, state.slots)
        }
        for slot in slots {
            let thread = Thread { [self] in slotLoop(slot) }
            thread.name = "bp-plugin-call-\(slot.index + 1)"
            thread.start()
        }
        let drained = DispatchSemaphore(value: 0)
        let reader = Thread { [self] in
            controlLoop(channel: control, pid: spawned, generation: generation)
            drained.signal()
        }
        reader.name = "bp-plugin-control"
        reader.start()
        let reaper = Thread { [self] in
            reap(pid: spawned, generation: generation, control: control, slots: slots, controlDrained: drained)
        }
        reaper.name = "bp-plugin-reaper"
        reaper.start()
        return control
    }

    /// Marks the server non-dumpable, once, before its first plugin process starts: a process of
    /// the same user can then no longer read its memory, environment or descriptors through
    /// /proc (see docs/security.md, "Plugins").
    private static func protectServer() {
        _ = serverProtected
    }

    private static let serverProtected: Bool = {
        let error = bp_sandbox_set_undumpable()
        return error == 0
    }()

    private var runnerArguments: [String] {
        var arguments = ["--open-files", "\(settings.openFilesLimit)"]
        if let user = settings.userID { arguments += ["--user-id", "\(user)"] }
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

    /// Makes one call in the plugin process and waits for its result, at most `timeout` from now
    /// (waiting for a free channel, or for the process to start again, included).
    func call(
        kind: PluginCallKind, actionIndex: Int, action: String, input: [UInt8], context: PluginCallContext, timeout: Duration
    ) async throws(PluginCallError) -> RawCallResult {
        let deadline = ContinuousClock.now + timeout
        let label = pluginLabel
        var header: JSONObject = [
            "kind": .string(kind.rawValue), "action_index": .int(actionIndex), "progress": .bool(context.progressHandler != nil),
        ]
        header["execution_id"] = context.executionID.map(JSONValue.string)
        header["step_id"] = context.stepID.map(JSONValue.string)
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        let frame = PluginFrame(.call, id: id, header: header, blob: input)
        // Overruns are found by the shared deadline watch (``DeadlineWatch``), not by a timer per call.
        DeadlineWatch.shared.watch(self)
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    let outcome = state.withLock { state -> Result<[(CallSlot, UInt64, PluginFrame)], PluginCallError> in
                        switch state.phase {
                        case .quarantined(let reason):
                            return .failure(PluginCallError(.pluginUnhealthy, "plugin '\(label)' is quarantined: \(reason)"))
                        case .stopped: return .failure(PluginCallError(.shuttingDown, "the plugin host is shutting down"))
                        case .notStarted, .starting, .ready, .restarting: break
                        }
                        state.pending[id] = Pending(
                            continuation: continuation, context: context, kind: kind, action: action, deadline: deadline, timeout: timeout,
                            frame: frame)
                        state.queue.append(id)
                        return .success(Self.assign(&state))
                    }
                    switch outcome {
                    case .failure(let error): continuation.resume(throwing: error)
                    case .success(let assignments): for (slot, id, frame) in assignments { slot.start(id: id, frame: frame) }
                    }
                }
            } onCancel: {
                let sent = self.state.withLock { state -> Bool in
                    state.queue.removeAll { $0 == id }
                    return state.pending[id]?.frame == nil
                }
                if self.finish(id, with: .failure(PluginCallError(.cancelled, "the call to action '\(action)' was cancelled"))), sent {
                    let control = self.state.withLock { $0.control }
                    // Never waits: a process that does not read its control channel is ended.
                    if let control, (try? control.write(PluginFrame(.cancel, id: id), waitingAtMost: .zero)) == nil {
                        self.kill(reason: "it does not read its control channel")
                    }
                }
            }
        } catch let error as PluginCallError {
            throw error
        } catch {
            throw PluginCallError(.pluginCrashed, "plugin '\(label)': \(error)")
        }
    }

    /// Fails the calls past their deadline — a call not yet sent with `timedOutWaiting`, one under
    /// way with `timedOut`, ending the process it overran in; called by the deadline watch.
    /// Returns whether calls are still waiting.
    func failOverdueCalls(now: ContinuousClock.Instant) -> Bool {
        let (overdue, more) = state.withLock { state -> ([Pending], Bool) in
            let overdue = state.pending.filter { $0.value.deadline <= now }
            for (id, _) in overdue {
                state.pending.removeValue(forKey: id)
                state.queue.removeAll { $0 == id }
            }
            return (Array(overdue.values), !state.pending.isEmpty)
        }
        guard !overdue.isEmpty else { return more }
        let label = pluginLabel
        var overran: Pending?
        for pending in overdue {
            let what = "\(pending.kind.rawValue) of action '\(pending.action)'"
            if pending.frame != nil {
                pending.continuation.resume(
                    throwing: PluginCallError(
                        .timedOutWaiting,
                        "plugin '\(label)': \(what) found its plugin process busy or restarting for \(PluginHost.format(pending.timeout))"))
            } else {
                overran = overran ?? pending
                pending.continuation.resume(
                    throwing: PluginCallError(
                        .timedOut,
                        "plugin '\(label)': \(what) did not return within \(PluginHost.format(pending.timeout)); "
                            + "its plugin process was stopped and starts again"))
            }
        }
        if let overran {
            kill(
                reason:
                    "\(overran.kind.rawValue) of action '\(overran.action)' overran its timeout of \(PluginHost.format(overran.timeout))")
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

    // MARK: Call channels

    /// The server's end of one call channel: its thread waits for a call, writes it and reads
    /// until the result, then takes the next queued call or waits again. The channel is closed
    /// by the process's reaper, never here.
    private func slotLoop(_ slot: CallSlot) {
        while let job = slot.nextJob() {
            var current: (id: UInt64, frame: PluginFrame)? = job
            while let (id, frame) = current {
                guard run(id: id, frame: frame, on: slot) else {
                    slot.close()
                    return
                }
                current = slotFinished(slot)
            }
        }
    }

    /// Writes one call and handles what comes back until its result; `false` when the channel
    /// ended or broke the protocol (the process is ended and the reaper reports it).
    private func run(id: UInt64, frame: PluginFrame, on slot: CallSlot) -> Bool {
        // Something written after the previous call returned (a thread the plugin left behind)
        // would be read as this call's answer: the process ends before this call is sent, and
        // the call waits for the next process instead of taking the blame.
        if slot.channel.hasUnreadInput {
            requeue(id, frame)
            end(generation: slot.generation, reason: "it wrote on a call channel between calls")
            return false
        }
        do {
            try slot.channel.write(frame)
            while true {
                guard let answer = try slot.channel.read(headerLimits: headerLimits) else { return false }
                switch answer.kind {
                case .result where answer.id == id:
                    guard answer.blob.count <= limits.maximumOutputBytes else {
                        throw PluginFrameError("a result larger than the output limit")
                    }
                    let status = CallStatus(
                        rawValue: UInt32(clamping: answer.header["status"]?.intValue ?? Int(CallStatus.fatalError.rawValue)))
                    let error = LogLine.truncated(answer.header["error"]?.stringValue ?? "", maximumBytes: limits.maximumErrorBytes)
                    finish(id, with: .success(RawCallResult(status: status, output: answer.blob, errorMessage: error)))
                    return true
                case .log: log(answer)
                case .progress where answer.id == id: progress(answer)
                case .serviceRequest: try slot.channel.write(serve(answer, for: id))
                default: throw PluginFrameError("it sent \(answer.kind) (id \(answer.id)) during call \(id)")
                }
            }
        } catch {
            end(generation: slot.generation, reason: "it broke the plugin protocol: \(error)")
            return false
        }
    }

    /// Puts a call that was never sent back at the head of the queue.
    private func requeue(_ id: UInt64, _ frame: PluginFrame) {
        state.withLock { state in
            guard state.pending[id] != nil else { return }
            state.pending[id]?.frame = frame
            state.queue.insert(id, at: 0)
        }
    }

    /// A channel finished its call: the next queued call, or `nil` (the channel is free again).
    private func slotFinished(_ slot: CallSlot) -> (UInt64, PluginFrame)? {
        state.withLock { state in
            guard state.generation == slot.generation, case .ready = state.phase else { return nil }
            while let id = state.queue.first {
                state.queue.removeFirst()
                guard let frame = state.pending[id]?.frame else { continue }
                state.pending[id]?.frame = nil
                return (id, frame)
            }
            state.freeSlots.append(slot.index)
            return nil
        }
    }

    // MARK: What the process sends

    /// The control channel's reader: handshake frames and log lines written outside calls. A
    /// fault ends the process; its end itself is the reaper's to find (``reap``), so that a
    /// descendant holding the socket open cannot hide it.
    private func controlLoop(channel: ServerChannel, pid: Int32, generation: Int) {
        while true {
            let fault: String
            do {
                guard let frame = try channel.read(headerLimits: headerLimits) else { return }
                switch frame.kind {
                case .opened, .ready, .refused:
                    guard let waiting = takeHandshake() else {
                        fault = "it sent \(frame.kind) outside a start"
                        break
                    }
                    waiting.resume(returning: frame)
                    continue
                case .log:
                    log(frame)
                    continue
                default: fault = "it sent \(frame.kind) on the control channel"
                }
            } catch {
                fault = "\(error)"
            }
            end(generation: generation, reason: "it broke the plugin protocol: \(fault)")
            return
        }
    }

    /// Waits for the process of `generation` to end, however it ends — by itself, by a kill, or
    /// while something it started still holds its sockets — then ends what it started (its
    /// process group), lets the control reader take what the process wrote before it ended (a
    /// `refused` frame with its reason, its last log lines: at most half a second, since a process
    /// outside the group may still hold the socket open), closes its channels so that every
    /// thread waiting on them wakes, reaps it and handles its end.
    private func reap(pid: Int32, generation: Int, control: ServerChannel, slots: [CallSlot], controlDrained: DispatchSemaphore) {
        // WNOWAIT: the process stays a zombie, so its pid (and group id) cannot be reused by
        // another process until it is reaped below.
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0, errno == EINTR {}
        Glibc.kill(-pid, SIGKILL)
        _ = controlDrained.wait(timeout: .now() + .milliseconds(500))
        control.close()
        for slot in slots { slot.channel.close() }
        state.withLock { state in
            if state.generation == generation { state.pid = nil }
        }
        let exit = Self.waitForExit(pid)
        ended(generation: generation, exit: exit)
    }

    /// Writes a log line of the process to the server's log: at most ``LogLimiter`` lines a
    /// second (the lines dropped are counted in the next one written), each a single line.
    private func log(_ frame: PluginFrame) {
        let level = frame.header["level"]?.stringValue.flatMap(Logger.Level.init(rawValue:)) ?? .info
        guard level >= logger.logLevel else { return }
        guard let dropped = logLimiter.withLock({ $0.admit(now: ContinuousClock.now) }) else { return }
        let message = LogLine.singleLine(
            LogLine.truncated(frame.header["message"]?.stringValue ?? "", maximumBytes: limits.maximumLogLineBytes))
        var metadata: Logger.Metadata = [:]
        if case .object(let fields)? = frame.header["metadata"] {
            for (key, value) in fields.prefix(32) {
                metadata[LogLine.singleLine(String(key.prefix(64)))] =
                    "\(LogLine.singleLine(LogLine.truncated(value.stringValue ?? "", maximumBytes: 1024)))"
            }
        }
        if dropped > 0 { metadata["log_lines_dropped"] = "\(dropped)" }
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

    /// Carries out an `invoke_service` of call `callID`, with the checks the in-process path
    /// makes: the process names nothing but the app, method, path, body and timeout; the plugin,
    /// execution and step are the server's own. Blocks this channel's thread (never an event
    /// loop or the cooperative pool) until the answer.
    private func serve(_ frame: PluginFrame, for callID: UInt64) -> PluginFrame {
        let label = pluginLabel
        guard let context = state.withLock({ $0.pending[callID]?.context }) else {
            return PluginFrame(.serviceReply, id: frame.id, header: ["outcome": "refused", "message": "the call is no longer under way"])
        }
        guard let invoker = serviceInvoker else {
            return PluginFrame(
                .serviceReply, id: frame.id,
                header: ["outcome": "unsupported", "message": "service invocation is not configured on this host"])
        }
        let timeoutMilliseconds = frame.header["timeout_ms"]?.intValue ?? 0
        var invocation: ServiceInvocation
        do {
            invocation = try ServiceInvocation(
                appID: frame.header["app_id"]?.stringValue ?? "", method: frame.header["method"]?.stringValue ?? "",
                path: frame.header["path"]?.stringValue ?? "", body: frame.blob,
                timeout: timeoutMilliseconds > 0 ? .milliseconds(Int64(min(timeoutMilliseconds, 86_400_000))) : nil,
                pluginName: label, executionID: context.executionID, stepID: context.stepID)
            invocation.traceparent = context.traceparent
        } catch {
            logger.warning("service call refused", metadata: ["plugin": "\(label)", "reason": "\(error.message)"])
            return PluginFrame(
                .serviceReply, id: frame.id, header: ["outcome": "refused", "message": .string("service call refused: \(error.message)")])
        }
        switch PluginCall.waitForAnswer(from: invoker, to: invocation) {
        case .success(let response):
            return PluginFrame(
                .serviceReply, id: frame.id, header: ["outcome": "answered", "http_status": .int(response.statusCode)], blob: response.body)
        case .failure(let error):
            return PluginFrame(.serviceReply, id: frame.id, header: ["outcome": "unanswered", "message": .string(error.message)])
        }
    }

    // MARK: Ends and restarts

    /// Ends the current process now (SIGKILL); the reader then handles the end. A ready process
    /// stops taking calls at once: new calls wait for the one that replaces it.
    private func kill(reason: String) {
        state.withLock { state in
            state.endReason = state.endReason ?? reason
            if case .ready = state.phase { state.phase = .restarting }
            state.freeSlots = []
            Self.killGroup(of: state)
        }
    }

    /// Ends the process of `generation` for `reason`, unless it ended already or another one
    /// runs by now (the reason would be given to the wrong process).
    private func end(generation: Int, reason: String) {
        let current = state.withLock { $0.generation == generation && $0.pid != nil }
        if current { kill(reason: reason) }
    }

    /// Sends SIGKILL to the running process and everything in its group. Called under the lock:
    /// the reaper clears ``State/pid`` under it before reaping, so the id is never one reused
    /// by an unrelated process.
    private static func killGroup(of state: State) {
        if let pid = state.pid { Glibc.kill(-pid, SIGKILL) }
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

    /// The process of `generation` ended: fail the calls it had taken (queued ones wait for the
    /// next process), then restart or quarantine.
    private func ended(generation: Int, exit: String) {
        let label = pluginLabel
        let outcome = state.withLock {
            state -> (
                failed: [Pending], queued: [Pending], slots: [CallSlot], handshake: CheckedContinuation<PluginFrame, any Error>?,
                restart: Duration?, quarantine: String?, why: String
            )? in
            guard state.generation == generation else { return nil }
            let reason = state.endReason
            // What the calls that failed are told: the way it ended, and why the server ended it.
            let why = reason.map { "\(exit), ended by the server because \($0)" } ?? exit
            state.endReason = nil
            state.control = nil
            state.pid = nil
            state.lastExit = exit
            let slots = state.slots
            state.slots = []
            state.freeSlots = []
            let failed = state.pending.filter { $0.value.frame == nil }
            for id in failed.keys { state.pending.removeValue(forKey: id) }
            let handshake = state.handshake
            state.handshake = nil
            switch state.phase {
            case .stopped, .quarantined, .notStarted, .starting:
                let queued = Array(state.pending.values)
                state.pending = [:]
                state.queue = []
                return (Array(failed.values), queued, slots, handshake, nil, nil, why)
            case .ready, .restarting:
                break
            }
            let now = ContinuousClock.now
            state.crashes += 1
            state.crashTimes = state.crashTimes.filter { now - $0 < settings.crashWindow } + [now]
            if state.crashTimes.count >= settings.quarantineAfterCrashes {
                let quarantine =
                    "its process ended \(state.crashTimes.count) times within \(PluginHost.format(settings.crashWindow)) "
                    + "(last: \(reason.map { "\($0); " } ?? "")\(exit))"
                state.phase = .quarantined(quarantine)
                let queued = Array(state.pending.values)
                state.pending = [:]
                state.queue = []
                return (Array(failed.values), queued, slots, handshake, nil, quarantine, why)
            }
            state.phase = .restarting
            let doublings = min(state.crashTimes.count - 1, 20)
            let backoff = min(settings.firstBackoff * (1 << doublings), settings.maximumBackoff)
            return (Array(failed.values), [], slots, handshake, backoff, nil, why)
        }
        guard let outcome else { return }
        for slot in outcome.slots { slot.close() }
        let how = "plugin '\(label)': its process ended (\(outcome.why)) while this call was under way"
        for pending in outcome.failed {
            pending.continuation.resume(
                throwing: PluginCallError(.pluginCrashed, how + " (\(pending.kind.rawValue) of action '\(pending.action)')"))
        }
        outcome.handshake?.resume(throwing: PluginFrameError("the plugin process ended (\(exit))"))
        if let quarantine = outcome.quarantine {
            logger.error("plugin quarantined", metadata: ["plugin": "\(label)", "reason": "\(quarantine)"])
            for pending in outcome.queued {
                pending.continuation.resume(throwing: PluginCallError(.pluginUnhealthy, "plugin '\(label)' is quarantined: \(quarantine)"))
            }
        } else {
            for pending in outcome.queued {
                pending.continuation.resume(throwing: PluginCallError(.shuttingDown, "the plugin host is shutting down"))
            }
            if let backoff = outcome.restart {
                logger.error(
                    "plugin process ended; restarting",
                    metadata: ["plugin": "\(label)", "exit": "\(outcome.why)", "backoff": "\(PluginHost.format(backoff))"])
                scheduleRestart(after: backoff)
            }
        }
    }

    /// Starts the process again after `backoff`.
    ///
    /// Unstructured on purpose: the restart belongs to the plugin process, not to the call or the
    /// reaper that saw it end, and a plugin host also runs outside any service group (the CLI's
    /// `plugins call` and `plugins check`). It holds the process weakly and does nothing once the
    /// process is no longer restarting (shut down, quarantined, reloaded).
    private func scheduleRestart(after backoff: Duration) {
        Task { [weak self] in
            try? await Task.sleep(for: backoff)
            await self?.restart()
        }
    }

    /// Starts the process again and brings it back to ready, with the same library and settings.
    /// A start that fails counts as a crash: the process is ended and its reaper plans the next
    /// attempt (or the quarantine); only a library that changed on disk is quarantined at once.
    private func restart() async {
        guard case .restarting = state.withLock({ $0.phase }) else { return }
        let (name, configuration, expected, before) = state.withLock { ($0.name, $0.configuration, $0.openedImage, $0.generation) }
        do {
            let frame = try await handshake(timeout: .seconds(30)) { _ in }
            guard frame.kind == .opened else { throw PluginFrameError("it answered \(frame.kind) when opening") }
            let image = try Self.image(from: frame, file: file)
            guard image.manifest == expected?.manifest, image.actions.map(\.type) == expected?.actions.map(\.type) else {
                quarantine(because: "the library changed since it was loaded; reload the plugins to use the new one")
                return
            }
            let ready = try await handshake(timeout: .seconds(30)) { channel in
                try channel.write(self.configureFrame(configuration), waitingAtMost: .seconds(2))
            }
            guard ready.kind == .ready else { throw PluginFrameError(ready.header["reason"]?.stringValue ?? "it answered \(ready.kind)") }
            state.withLock { $0.restarts += 1 }
            becomeReady()
            logger.notice("plugin process restarted", metadata: ["plugin": "\(name ?? file)", "pid": "\(state.withLock { $0.pid } ?? 0)"])
        } catch {
            let reason = "it could not be started again: \(error)"
            let spawned = state.withLock { $0.generation != before }
            if spawned {
                // Its reaper counts the failure and plans what follows.
                end(generation: before + 1, reason: reason)
            } else {
                // No process started at all (no socket or process to be had): nothing will be
                // reaped, so the failure is counted here.
                failedToStart(reason: reason)
            }
        }
    }

    /// A restart that could not even start a process: counts as a crash, then another attempt
    /// after the backoff, or the quarantine.
    private func failedToStart(reason: String) {
        let plan = state.withLock { state -> Duration? in
            guard case .restarting = state.phase else { return nil }
            state.crashes += 1
            let now = ContinuousClock.now
            state.crashTimes = state.crashTimes.filter { now - $0 < settings.crashWindow } + [now]
            guard state.crashTimes.count < settings.quarantineAfterCrashes else { return nil }
            let doublings = min(state.crashTimes.count - 1, 20)
            return min(settings.firstBackoff * (1 << doublings), settings.maximumBackoff)
        }
        guard let backoff = plan else {
            if case .restarting = state.withLock({ $0.phase }) { quarantine(because: reason) }
            return
        }
        logger.error("plugin process could not start; trying again", metadata: ["plugin": "\(pluginLabel)", "reason": "\(reason)"])
        scheduleRestart(after: backoff)
    }

    /// Quarantines the plugin: its process ends, waiting calls fail, no restart follows.
    private func quarantine(because reason: String) {
        let label = pluginLabel
        let queued = state.withLock { state -> [Pending] in
            state.phase = .quarantined(reason)
            defer {
                state.pending = [:]
                state.queue = []
            }
            return Array(state.pending.values)
        }
        kill(reason: reason)
        logger.error("plugin quarantined", metadata: ["plugin": "\(label)", "reason": "\(reason)"])
        for pending in queued {
            pending.continuation.resume(throwing: PluginCallError(.pluginUnhealthy, "plugin '\(label)' is quarantined: \(reason)"))
        }
    }

    /// Asks the plugin to shut down, then ends the process; no restart follows.
    func shutdown(timeout: Duration) async {
        let (control, pid, queued) = state.withLock { state -> (ServerChannel?, Int32?, [Pending]) in
            state.phase = .stopped
            let queued = state.pending.values.filter { $0.frame != nil }
            for id in state.queue { state.pending.removeValue(forKey: id) }
            state.queue = []
            return (state.control, state.pid, queued)
        }
        for pending in queued {
            pending.continuation.resume(throwing: PluginCallError(.shuttingDown, "the plugin host is shutting down"))
        }
        guard let control, let pid else { return }
        if (try? control.write(PluginFrame(.shutdown), waitingAtMost: .zero)) == nil {
            state.withLock { state in
                if state.pid == pid { Self.killGroup(of: state) }
            }
        }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, state.withLock({ $0.pid }) == pid {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let killed = state.withLock { state -> Bool in
            guard state.pid == pid else { return false }
            Self.killGroup(of: state)
            return true
        }
        if killed {
            logger.warning(
                "plugin shutdown did not return in time; its process was ended",
                metadata: ["plugin": "\(pluginLabel)", "timeout": "\(PluginHost.format(timeout))"])
        }
    }

    /// Ends the process without restarting it (a refused start).
    func stop() {
        state.withLock { state in
            state.phase = .stopped
            Self.killGroup(of: state)
        }
    }
}

/// The server's end of one call channel of a plugin process, and its thread's mailbox.
final class CallSlot: Sendable {
    let index: Int
    let channel: ServerChannel
    /// The process start it belongs to.
    let generation: Int
    private let mailbox = Mutex<(job: (UInt64, PluginFrame)?, closed: Bool)>((nil, false))
    private let signal = DispatchSemaphore(value: 0)

    init(index: Int, channel: ServerChannel, generation: Int) {
        self.index = index
        self.channel = channel
        self.generation = generation
    }

    /// Gives the channel's thread a call to make.
    func start(id: UInt64, frame: PluginFrame) {
        mailbox.withLock { $0.job = (id, frame) }
        signal.signal()
    }

    /// Waits for the next call; `nil` once the channel is closed.
    func nextJob() -> (UInt64, PluginFrame)? {
        while true {
            signal.wait()
            let (job, closed) = mailbox.withLock { mailbox -> ((UInt64, PluginFrame)?, Bool) in
                defer { mailbox.job = nil }
                return (mailbox.job, mailbox.closed)
            }
            if closed { return nil }
            if let job { return job }
        }
    }

    /// Ends the channel: its thread stops (and closes the descriptor) once it is done with what
    /// it does; the process at the other end is gone by then, so a read there ends at once.
    func close() {
        let first = mailbox.withLock { mailbox -> Bool in
            defer { mailbox.closed = true }
            return !mailbox.closed
        }
        if first { signal.signal() }
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

/// How many log lines of one plugin process reach the server's log: a burst of
/// ``burst``, then ``perSecond`` a second. Lines beyond are dropped and counted.
struct LogLimiter: Sendable {
    static let perSecond = 500.0
    static let burst = 2000.0

    private var tokens = LogLimiter.burst
    private var refilled: ContinuousClock.Instant?
    private var dropped = 0

    /// `nil` when the line is dropped; otherwise how many were dropped since the last one
    /// admitted.
    mutating func admit(now: ContinuousClock.Instant) -> Int? {
        if let refilled {
            let elapsed = now - refilled
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            tokens = min(Self.burst, tokens + max(0, seconds) * Self.perSecond)
        }
        refilled = now
        guard tokens >= 1 else {
            dropped += 1
            return nil
        }
        tokens -= 1
        defer { dropped = 0 }
        return dropped
    }
}

/// Names of the signals a plugin process is likely to end by.
private let signalNames: [Int32: String] = [
    SIGSEGV: "SIGSEGV", SIGABRT: "SIGABRT", SIGKILL: "SIGKILL", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGILL: "SIGILL",
    SIGXCPU: "SIGXCPU", SIGTERM: "SIGTERM", SIGTRAP: "SIGTRAP", SIGSYS: "SIGSYS", SIGPIPE: "SIGPIPE",
]
