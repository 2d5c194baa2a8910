import BudJSON
import CPluginSandbox
import Foundation
import Logging
import PluginSchema
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The plugin process's side: opens one library, serves the server's calls to it over the
/// channel on descriptor 3, and proxies its host services (logging, progress, `invoke_service`)
/// back to the server. Run by `budpipeline plugin-process`; see docs/plugins.md, "Isolation".
public enum PluginProcessRunner {
    /// Resource limits a plugin process applies to itself before it opens the library.
    public struct Limits: Sendable {
        public var memoryBytes: Int?
        public var openFiles: Int?
        public var cpuSeconds: Int?

        public init(memoryBytes: Int? = nil, openFiles: Int? = nil, cpuSeconds: Int? = nil) {
            self.memoryBytes = memoryBytes
            self.openFiles = openFiles
            self.cpuSeconds = cpuSeconds
        }

        /// Applies the limits; returns a problem for each one the system refused.
        func apply() -> [String] {
            var problems: [String] = []
            func set(_ resource: __rlimit_resource, _ value: Int?, _ name: String) {
                guard let value, value > 0 else { return }
                var limit = rlimit(rlim_cur: rlim_t(value), rlim_max: rlim_t(value))
                // Past the soft CPU limit SIGXCPU arrives; the hard limit a little later kills.
                if resource == RLIMIT_CPU { limit.rlim_max = rlim_t(value + 5) }
                if setrlimit(__rlimit_resource_t(resource.rawValue), &limit) != 0 { problems.append("\(name): errno \(errno)") }
            }
            set(RLIMIT_AS, memoryBytes, "memory")
            set(RLIMIT_NOFILE, openFiles, "open files")
            set(RLIMIT_CPU, cpuSeconds, "cpu time")
            return problems
        }
    }

    /// Serves `file` until the server asks it to stop or goes away; returns the exit status. The
    /// control channel is descriptor 3, the `callChannels` call channels follow it.
    ///
    /// Before the library is opened (its constructors are its code too) the process limits
    /// itself: resource limits, then its own user `userID` when given (the library is opened
    /// first, so that a file only the server's user may read still loads), then the system call
    /// filter (see docs/plugins.md, "Isolation").
    public static func run(file: String, limits: Limits, callChannels: Int, userID: UInt32? = nil) async -> Int32 {
        let channel = LockedChannel(PluginChannel(descriptor: 3))
        let calls = (0..<min(max(callChannels, 1), 32)).map { LockedChannel(PluginChannel(descriptor: Int32(4 + $0))) }
        // A program the plugin starts does not inherit the channels (nor keep them open after
        // this process ends, which would hide the end from the server).
        for descriptor in 3..<(4 + Int32(calls.count)) { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        func refuse(_ reason: String) -> Int32 {
            channel.send(PluginFrame(.refused, header: ["reason": .string(reason)]))
            return 1
        }
        let problems = limits.apply()
        guard problems.isEmpty else { return refuse("resource limits refused: \(problems.joined(separator: ", "))") }
        // The user switch (or, as root without one, dropping every capability) happened before
        // main, while the process had one thread (bp_sandbox_early): checked here, on every thread.
        var path = file
        var switchedUser: UInt32 = 0
        var library: Int32 = -1
        let early = bp_sandbox_early_result(&switchedUser, &library)
        if let userID {
            guard early == 0, switchedUser == userID, library >= 0 else {
                let reason = early > 0 ? String(cString: strerror(early)) : "the switch did not happen before start-up"
                return refuse(
                    "could not run as user \(userID): \(reason); give the server CAP_SETUID and CAP_SETGID, choose ids "
                        + "the system maps with BUDPIPELINE_PLUGIN_PROCESS_USERS, or set it to 'server'")
            }
            path = "/proc/self/fd/\(library)"
        } else if early > 0 {
            return refuse("could not drop the server's capabilities: \(String(cString: strerror(early)))")
        }
        if let problem = Self.threadsKeepingPrivileges(userID: userID) { return refuse(problem) }
        let serverPID = getppid()
        let filterError = bp_sandbox_restrict_system_calls(serverPID, getpgid(serverPID), userID == nil ? 1 : 0)
        guard filterError == 0 else {
            return refuse("could not install the system call filter: \(String(cString: strerror(filterError)))")
        }
        let image: PluginImage
        do {
            image = try PluginLoader.open(path)
        } catch {
            channel.send(PluginFrame(.refused, header: ["reason": .string(error.reason)]))
            return 1
        }
        channel.send(openedFrame(image))
        guard let configure = try? channel.channel.read(), configure.kind == .configure else { return 1 }
        let level = configure.header["log_level"]?.stringValue.flatMap(Logger.Level.init(rawValue:)) ?? .info
        let logger = Logger(label: "budpipeline.plugin-process") { _ in ChannelLogHandler(control: channel, logLevel: level) }
        var settings = PluginHostConfiguration(pluginDirectories: [], pluginFiles: [path])
        settings.pluginSettings = [image.manifest.name: configure.header["configuration"]?.objectValue ?? [:]]
        if let bytes = configure.header["maximum_output_bytes"]?.intValue, bytes > 0 { settings.limits.maximumOutputBytes = bytes }
        if let bytes = configure.header["maximum_error_bytes"]?.intValue, bytes > 0 { settings.limits.maximumErrorBytes = bytes }
        if let bytes = configure.header["maximum_log_line_bytes"]?.intValue, bytes > 0 { settings.limits.maximumLogLineBytes = bytes }
        settings.isolation = .inProcess
        let invoker = ChannelServiceInvoker()
        let host = await PluginHost.load(configuration: settings, serviceInvoker: invoker, logger: logger)
        if let refusal = host.refusals.first {
            channel.send(PluginFrame(.refused, header: ["reason": .string(refusal.reason)]))
            return 1
        }
        guard let plugin = host.plugins.first else {
            channel.send(PluginFrame(.refused, header: ["reason": "the library did not load"]))
            return 1
        }
        channel.send(PluginFrame(.ready))
        let server = CallServer(host: host, plugin: plugin, control: channel, calls: calls)
        return await server.serve()
    }

    /// Ends this process and everything it started (its process group): the server is gone or
    /// broke the protocol, so nobody is left to serve, and nothing the plugin started may outlive
    /// it.
    static func endWithGroup() -> Never {
        _ = kill(0, SIGKILL)
        _exit(0)
    }

    /// A thread of this process that still has another user than `userID` (or, without one and
    /// as root, a capability): the sandbox would not hold on it.
    static func threadsKeepingPrivileges(userID: UInt32?) -> String? {
        guard let threads = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else {
            return "cannot list the process's threads"
        }
        for thread in threads {
            guard let status = try? String(contentsOfFile: "/proc/self/task/\(thread)/status", encoding: .utf8) else { continue }
            for line in status.split(separator: "\n") {
                let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
                if let userID, fields.first == "Uid:", fields.dropFirst().contains(where: { $0 != "\(userID)" }) {
                    return "thread \(thread) kept another user (\(line))"
                }
                if userID == nil, geteuid() == 0, fields.first == "CapEff:", fields.count > 1, fields[1].contains(where: { $0 != "0" }) {
                    return "thread \(thread) kept capabilities (\(line))"
                }
            }
        }
        return nil
    }

    private static func openedFrame(_ image: PluginImage) -> PluginFrame {
        PluginFrame(
            .opened,
            header: [
                "manifest": image.manifest.json, "abi_major": .int(Int(image.abiMajor)), "abi_minor": .int(Int(image.abiMinor)),
                "thread_safe": .bool(image.isThreadSafe), "actions": .array(image.actions.map(\.json)),
                "functions": .array(
                    image.functions.map {
                        ["on_event": .bool($0.onEvent), "validate_params": .bool($0.validateParams), "cleanup": .bool($0.cleanup)]
                    }
                ),
            ])
    }
}

/// The channel with its writes serialised: calls, log lines and service requests are written
/// from many threads.
final class LockedChannel: Sendable {
    let channel: PluginChannel
    private let writing = Mutex(())

    init(_ channel: PluginChannel) { self.channel = channel }

    /// Writes a frame; when the server is gone there is nobody to serve, so the process ends.
    func send(_ frame: PluginFrame) {
        let failed = writing.withLock { _ in (try? channel.write(frame)) == nil }
        if failed { PluginProcessRunner.endWithGroup() }
    }

    /// Writes a request and reads the next frame, the answer, with no other exchange between.
    func exchange(_ frame: PluginFrame) -> PluginFrame? {
        exchanging.withLock { _ in
            send(frame)
            return try? channel.read()
        }
    }

    private let exchanging = Mutex(())
}

/// The plugin process's calls: a thread per call channel reads a call, runs it inline and writes
/// its result; the control channel's reader handles cancellations and the stop. Timeouts are the
/// server's: it ends this process when a call overruns.
private final class CallServer: Sendable {
    let host: PluginHost
    let plugin: LoadedPlugin
    let control: LockedChannel
    let calls: [LockedChannel]
    /// Calls under way, by the server's id: a `cancel` frame makes `is_cancelled` answer 1.
    private let running = Mutex<[UInt64: PluginCall]>([:])

    init(host: PluginHost, plugin: LoadedPlugin, control: LockedChannel, calls: [LockedChannel]) {
        self.host = host
        self.plugin = plugin
        self.control = control
        self.calls = calls
    }

    func serve() async -> Int32 {
        for (index, channel) in calls.enumerated() {
            let thread = Thread { [self] in
                while true {
                    guard let frame = try? channel.channel.read(), frame.kind == .call else { PluginProcessRunner.endWithGroup() }
                    perform(frame, on: channel)
                }
            }
            thread.name = "bp-plugin-\(index + 1)"
            thread.stackSize = 8 << 20
            thread.start()
        }
        // The control thread reports the server's `shutdown`; the host is then shut down here.
        await withCheckedContinuation { (shutdownRequested: CheckedContinuation<Void, Never>) in
            let thread = Thread { [self] in
                while true {
                    guard let frame = try? control.channel.read() else { PluginProcessRunner.endWithGroup() }
                    switch frame.kind {
                    case .cancel: running.withLock { $0[frame.id] }?.requestCancellation()
                    case .shutdown:
                        shutdownRequested.resume()
                        return
                    default: PluginProcessRunner.endWithGroup()
                    }
                }
            }
            thread.name = "bp-plugin-process-control"
            thread.start()
        }
        await host.shutdown()
        return 0
    }

    /// Runs one call on this (the channel's) thread and sends its result on the channel.
    private func perform(_ frame: PluginFrame, on channel: LockedChannel) {
        let result = call(frame, on: channel)
        channel.send(
            PluginFrame(
                .result, id: frame.id, header: ["status": .int(Int(result.status.rawValue)), "error": .string(result.errorMessage)],
                blob: result.output))
    }

    private func call(_ frame: PluginFrame, on channel: LockedChannel) -> RawCallResult {
        let image = plugin.image
        guard let kind = frame.header["kind"]?.stringValue.flatMap(PluginCallKind.init(rawValue:)),
            let index = frame.header["action_index"]?.intValue, image.actions.indices.contains(index),
            let entryPoints = image.entryPoints?.actions[index]
        else { return RawCallResult(status: .invalidArgument, output: [], errorMessage: "the server sent a call this process cannot make") }
        let id = frame.id
        var context = PluginCallContext(
            executionID: frame.header["execution_id"]?.stringValue, stepID: frame.header["step_id"]?.stringValue)
        if frame.header["progress"]?.boolValue == true {
            context.progressHandler = { progress in
                var header: JSONObject = [:]
                header["percent"] = progress.percent.map(JSONValue.double)
                header["eta_seconds"] = progress.etaSeconds.map(JSONValue.int)
                header["message"] = progress.message.map(JSONValue.string)
                channel.send(PluginFrame(.progress, id: id, header: header))
            }
        }
        let call = PluginCall(plugin: plugin.services, kind: kind, action: image.actions[index].type, context: context)
        call.channel = channel
        running.withLock { $0[id] = call }
        defer { running.withLock { _ = $0.removeValue(forKey: id) } }
        return CurrentChannel.during(channel) { call.perform(entryPoints, kind: kind, input: frame.blob) }
    }
}

/// The call channel the current thread serves a call on, for log lines written during it.
enum CurrentChannel {
    private static let channels = Mutex<[pthread_t: LockedChannel]>([:])

    static func during<Result>(_ channel: LockedChannel, _ body: () -> Result) -> Result {
        let thread = pthread_self()
        channels.withLock { $0[thread] = channel }
        defer { channels.withLock { _ = $0.removeValue(forKey: thread) } }
        return body()
    }

    static var current: LockedChannel? { channels.withLock { $0[pthread_self()] } }
}

/// `invoke_service` in a plugin process: the request goes to the server on the call's channel,
/// and the thread that made it reads the answer there (the channel's own thread is inside the
/// plugin meanwhile, so nobody else reads it).
final class ChannelServiceInvoker: ServiceInvoker, SynchronousServiceInvoker {
    private let nextID = Mutex<UInt64>(0)

    func invoke(_ invocation: ServiceInvocation) async throws(ServiceInvocationError) -> ServiceInvocationResponse {
        throw ServiceInvocationError("a plugin process carries service calls out through its call's channel")
    }

    func invoke(_ invocation: ServiceInvocation, for call: PluginCall) -> Result<ServiceInvocationResponse, ServiceCallFailure> {
        guard let channel = call.channel else {
            return .failure(ServiceCallFailure(message: "the call has no channel to the server", status: .retryableError))
        }
        let id = nextID.withLock { next -> UInt64 in
            next += 1
            return next
        }
        var header: JSONObject = [
            "app_id": .string(invocation.appID), "method": .string(invocation.method), "path": .string(invocation.path),
        ]
        header["timeout_ms"] = invocation.timeout.map { .int(Int(($0 / .milliseconds(1)).rounded())) }
        let reply = channel.exchange(PluginFrame(.serviceRequest, id: id, header: header, blob: invocation.body))
        guard let reply, reply.kind == .serviceReply, reply.id == id else { PluginProcessRunner.endWithGroup() }
        let message = reply.header["message"]?.stringValue ?? "the server did not carry the call out"
        switch reply.header["outcome"]?.stringValue {
        case "answered":
            return .success(ServiceInvocationResponse(statusCode: reply.header["http_status"]?.intValue ?? 0, body: reply.blob))
        case "unsupported": return .failure(ServiceCallFailure(message: message, status: .unsupported))
        case "refused": return .failure(ServiceCallFailure(message: message, status: .invalidArgument))
        default: return .failure(ServiceCallFailure(message: message, status: .retryableError))
        }
    }
}

/// Sends the process's log lines to the server, which logs them with the plugin's name: on the
/// call's channel during a call (in order with its result), else on the control channel.
struct ChannelLogHandler: LogHandler {
    let control: LockedChannel
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    init(control: LockedChannel, logLevel: Logger.Level) {
        self.control = control
        self.logLevel = logLevel
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: JSONObject = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { fields[key] = .string("\(value)") }
        let frame = PluginFrame(
            .log, header: ["level": .string(event.level.rawValue), "message": .string("\(event.message)"), "metadata": .object(fields)])
        (CurrentChannel.current ?? control).send(frame)
    }
}
