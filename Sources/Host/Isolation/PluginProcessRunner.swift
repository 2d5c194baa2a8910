import BudJSON
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

    /// Serves `file` until the server asks it to stop or goes away; returns the exit status.
    public static func run(file: String, limits: Limits, descriptor: Int32 = 3) async -> Int32 {
        let channel = LockedChannel(PluginChannel(descriptor: descriptor))
        let problems = limits.apply()
        guard problems.isEmpty else {
            channel.send(PluginFrame(.refused, header: ["reason": .string("resource limits refused: \(problems.joined(separator: ", "))")]))
            return 1
        }
        let image: PluginImage
        do {
            image = try PluginLoader.open(file)
        } catch {
            channel.send(PluginFrame(.refused, header: ["reason": .string(error.reason)]))
            return 1
        }
        channel.send(openedFrame(image))
        guard let configure = try? channel.channel.read(), configure.kind == .configure else { return 1 }
        let level = configure.header["log_level"]?.stringValue.flatMap(Logger.Level.init(rawValue:)) ?? .info
        let logger = Logger(label: "budpipeline.plugin-process") { _ in ChannelLogHandler(channel: channel, logLevel: level) }
        var settings = PluginHostConfiguration(pluginDirectories: [], pluginFiles: [file])
        settings.pluginSettings = [image.manifest.name: configure.header["configuration"]?.objectValue ?? [:]]
        if let bytes = configure.header["maximum_output_bytes"]?.intValue, bytes > 0 { settings.limits.maximumOutputBytes = bytes }
        if let bytes = configure.header["maximum_error_bytes"]?.intValue, bytes > 0 { settings.limits.maximumErrorBytes = bytes }
        if let bytes = configure.header["maximum_log_line_bytes"]?.intValue, bytes > 0 { settings.limits.maximumLogLineBytes = bytes }
        settings.isolation = .inProcess
        let invoker = ChannelServiceInvoker(channel: channel)
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
        let server = CallServer(host: host, plugin: plugin, channel: channel, invoker: invoker)
        return await server.serve()
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
        if failed { _exit(0) }
    }
}

/// Reads the server's frames on a thread of its own and hands each call to a worker thread,
/// which calls the plugin and writes the result itself: two thread hand-overs per call in this
/// process, none through Swift's cooperative pool. Timeouts are the server's: it ends this
/// process when a call overruns.
private final class CallServer: Sendable {
    let host: PluginHost
    let plugin: LoadedPlugin
    let image: PluginImage
    let channel: LockedChannel
    let invoker: ChannelServiceInvoker
    private let workers: WorkerThreads
    /// Calls under way, by the server's id: a `cancel` frame makes `is_cancelled` answer 1.
    private let running = Mutex<[UInt64: PluginCall]>([:])

    init(host: PluginHost, plugin: LoadedPlugin, channel: LockedChannel, invoker: ChannelServiceInvoker) {
        self.host = host
        self.plugin = plugin
        self.image = plugin.image
        self.channel = channel
        self.invoker = invoker
        // A plugin that is not thread-safe gets one call at a time: one worker.
        workers = WorkerThreads(count: plugin.image.isThreadSafe ? host.configuration.threadCount : 1)
    }

    func serve() async -> Int32 {
        await withCheckedContinuation { (finished: CheckedContinuation<Int32, Never>) in
            let thread = Thread { [self] in
                while true {
                    guard let frame = try? channel.channel.read() else { _exit(0) }
                    switch frame.kind {
                    case .call: workers.submit { [self] in perform(frame) }
                    case .cancel: running.withLock { $0[frame.id] }?.requestCancellation()
                    case .serviceReply: invoker.answer(frame)
                    case .shutdown:
                        Task {
                            await host.shutdown()
                            finished.resume(returning: 0)
                        }
                        return
                    default: _exit(2)
                    }
                }
            }
            thread.name = "bp-plugin-process-reader"
            thread.start()
        }
    }

    /// Runs one call on the current (worker) thread and sends its result.
    private func perform(_ frame: PluginFrame) {
        let id = frame.id
        let result = call(frame)
        channel.send(
            PluginFrame(
                .result, id: id, header: ["status": .int(Int(result.status.rawValue)), "error": .string(result.errorMessage)],
                blob: result.output))
    }

    private func call(_ frame: PluginFrame) -> RawCallResult {
        guard let kind = frame.header["kind"]?.stringValue.flatMap(PluginCallKind.init(rawValue:)),
            let index = frame.header["action_index"]?.intValue, image.actions.indices.contains(index),
            let entryPoints = image.entryPoints?.actions[index]
        else { return RawCallResult(status: .invalidArgument, output: [], errorMessage: "the server sent a call this process cannot make") }
        let id = frame.id
        var context = PluginCallContext(
            executionID: frame.header["execution_id"]?.stringValue, stepID: frame.header["step_id"]?.stringValue)
        if frame.header["progress"]?.boolValue == true {
            let channel = channel
            context.progressHandler = { progress in
                var header: JSONObject = [:]
                header["percent"] = progress.percent.map(JSONValue.double)
                header["eta_seconds"] = progress.etaSeconds.map(JSONValue.int)
                header["message"] = progress.message.map(JSONValue.string)
                channel.send(PluginFrame(.progress, id: id, header: header))
            }
        }
        let key = "\(context.executionID ?? "")/\(context.stepID ?? "")"
        invoker.calls.withLock { $0[key] = id }
        let call = PluginCall(plugin: plugin.services, kind: kind, action: image.actions[index].type, context: context)
        running.withLock { $0[id] = call }
        defer {
            running.withLock { _ = $0.removeValue(forKey: id) }
            invoker.calls.withLock { _ = $0.removeValue(forKey: key) }
        }
        return call.perform(entryPoints, kind: kind, input: frame.blob)
    }
}

/// A fixed set of threads running submitted work in order of submission.
private final class WorkerThreads: Sendable {
    private let queue = Mutex<[@Sendable () -> Void]>([])
    private let available = DispatchSemaphore(value: 0)

    init(count: Int) {
        for index in 0..<max(1, count) {
            let thread = Thread { [self] in
                while true {
                    available.wait()
                    guard let work = queue.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
                    work()
                }
            }
            thread.name = "bp-plugin-\(index + 1)"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    func submit(_ work: @escaping @Sendable () -> Void) {
        queue.withLock { $0.append(work) }
        available.signal()
    }
}

/// `invoke_service` in a plugin process: the server carries each request out.
final class ChannelServiceInvoker: ServiceInvoker {
    private let channel: LockedChannel
    private struct Waiting {
        var next: UInt64 = 0
        var replies: [UInt64: CheckedContinuation<PluginFrame, Never>] = [:]
    }
    private let waiting = Mutex(Waiting())
    /// The server's id of the call each (execution, step) pair is being served for.
    let calls = Mutex<[String: UInt64]>([:])

    init(channel: LockedChannel) { self.channel = channel }

    func invoke(_ invocation: ServiceInvocation) async throws(ServiceInvocationError) -> ServiceInvocationResponse {
        let key = "\(invocation.executionID ?? "")/\(invocation.stepID ?? "")"
        let callID = calls.withLock { $0[key] } ?? 0
        var header: JSONObject = [
            "call": .int(Int(truncatingIfNeeded: callID)), "app_id": .string(invocation.appID), "method": .string(invocation.method),
            "path": .string(invocation.path),
        ]
        header["timeout_ms"] = invocation.timeout.map { .int(Int(($0 / .milliseconds(1)).rounded())) }
        let reply = await withCheckedContinuation { (continuation: CheckedContinuation<PluginFrame, Never>) in
            let id = waiting.withLock { waiting -> UInt64 in
                waiting.next += 1
                waiting.replies[waiting.next] = continuation
                return waiting.next
            }
            channel.send(PluginFrame(.serviceRequest, id: id, header: header, blob: invocation.body))
        }
        switch reply.header["outcome"]?.stringValue {
        case "answered": return ServiceInvocationResponse(statusCode: reply.header["http_status"]?.intValue ?? 0, body: reply.blob)
        default: throw ServiceInvocationError(reply.header["message"]?.stringValue ?? "the server did not carry the call out")
        }
    }

    func answer(_ frame: PluginFrame) {
        let continuation = waiting.withLock { $0.replies.removeValue(forKey: frame.id) }
        continuation?.resume(returning: frame)
    }
}

/// Sends the process's log lines to the server, which logs them with the plugin's name.
struct ChannelLogHandler: LogHandler {
    let channel: LockedChannel
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    init(channel: LockedChannel, logLevel: Logger.Level) {
        self.channel = channel
        self.logLevel = logLevel
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: JSONObject = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { fields[key] = .string("\(value)") }
        channel.send(
            PluginFrame(
                .log, header: ["level": .string(event.level.rawValue), "message": .string("\(event.message)"), "metadata": .object(fields)])
        )
    }
}
