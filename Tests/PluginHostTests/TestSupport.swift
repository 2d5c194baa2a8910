import BudJSON
import BudPipelineHost
import Foundation
import InMemoryLogging
import Logging
import PluginTesting
import Synchronization
import _BudPipelineTestSupport

/// Answers plugin service calls in process and records them.
final class RecordingServiceInvoker: ServiceInvoker {
    private let calls = Mutex<[ServiceInvocation]>([])
    let answer: @Sendable (ServiceInvocation) throws(ServiceInvocationError) -> ServiceInvocationResponse

    init(answer: @escaping @Sendable (ServiceInvocation) throws(ServiceInvocationError) -> ServiceInvocationResponse) {
        self.answer = answer
    }

    var invocations: [ServiceInvocation] { calls.withLock { $0 } }

    func invoke(_ invocation: ServiceInvocation) async throws(ServiceInvocationError) -> ServiceInvocationResponse {
        calls.withLock { $0.append(invocation) }
        return try answer(invocation)
    }
}

/// A host plus the log lines it wrote.
struct TestHost {
    let host: PluginHost
    let logs: InMemoryLogHandler

    /// How to configure the host under test.
    struct Options {
        var files: [String] = []
        var directories: [String] = []
        var settings: [String: JSONObject] = [:]
        var threads = 4
        var maximumThreads: Int?
        var callTimeout: Duration = .seconds(30)
        var allowList: Set<String>?
        var reserved: Set<String> = []
        var limits = PluginLimits()
        var invoker: (any ServiceInvoker)?
        var isolation = PluginIsolation.inProcess
        /// Plugin processes run the built `budpipeline` in its runner mode.
        var processSettings = PluginProcessSettings(runner: [Repository.executable, "plugin-process"])
    }

    /// Loads a host, runs `body` and shuts the host down, also when `body` throws.
    static func with(_ options: Options, _ body: (TestHost) async throws -> Void) async throws {
        let logs = InMemoryLogHandler()
        var logger = Logger(label: "test", factory: { _ in logs })
        logger.logLevel = .trace
        var configuration = PluginHostConfiguration(
            pluginDirectories: options.directories,
            pluginFiles: options.files,
            allowList: options.allowList,
            callTimeout: options.callTimeout,
            threadCount: options.threads,
            maximumThreadCount: options.maximumThreads,
            pluginSettings: options.settings,
            limits: options.limits,
            reservedActionTypes: options.reserved
        )
        configuration.isolation = options.isolation
        configuration.processSettings = options.processSettings
        let host = await PluginHost.load(configuration: configuration, serviceInvoker: options.invoker, logger: logger)
        do {
            try await body(TestHost(host: host, logs: logs))
        } catch {
            await host.shutdown()
            throw error
        }
        await host.shutdown()
    }
}

/// Private copies of fixture and product libraries (see `BuildProducts.isolatedCopy`).
enum Libraries {
    static func fixture(_ name: String, header: FixturePlugins.Header = .current) async throws -> String {
        try BuildProducts.isolatedCopy(of: try await FixturePlugins.shared.library(name, header: header))
    }

    static func product(_ name: String) throws -> String {
        try BuildProducts.isolatedCopy(of: try BuildProducts.library(named: name))
    }
}
