public import BudJSON
public import BudPipelineHost
import Foundation
import Logging
public import PluginSchema

/// Loads one built plugin library through the real host loader, for a plugin's own tests.
///
/// ```swift
/// let plugin = try await PluginTestHost.load(product: "AcmeResize")
/// let outcome = try await plugin.execute("acme_resize", params: ["width": 64])
/// ```
public struct PluginTestHost: Sendable {
    /// The host, with only this plugin loaded.
    public let host: PluginHost
    public let plugin: LoadedPlugin

    /// Loads a private copy of the dynamic library product `product` from the build products
    /// directory (where `swift build` and `swift test` put it), with `configuration` as the plugin's
    /// configuration.
    public static func load(
        product: String,
        configuration: JSONObject = [:],
        serviceInvoker: (any ServiceInvoker)? = nil,
        callTimeout: Duration = .seconds(30)
    ) async throws -> PluginTestHost {
        try await load(
            file: try BuildProducts.isolatedCopy(of: try BuildProducts.library(named: product)),
            configuration: configuration,
            serviceInvoker: serviceInvoker,
            callTimeout: callTimeout
        )
    }

    /// Loads the product `product`, runs `body` with it and shuts the plugin down, also when `body` throws.
    public static func withPlugin(
        product: String,
        configuration: JSONObject = [:],
        serviceInvoker: (any ServiceInvoker)? = nil,
        _ body: (PluginTestHost) async throws -> Void
    ) async throws {
        let plugin = try await load(product: product, configuration: configuration, serviceInvoker: serviceInvoker)
        do {
            try await body(plugin)
            await plugin.shutdown()
        } catch {
            await plugin.shutdown()
            throw error
        }
    }

    /// Loads the plugin library at `file`.
    public static func load(
        file: String,
        configuration: JSONObject = [:],
        serviceInvoker: (any ServiceInvoker)? = nil,
        callTimeout: Duration = .seconds(30)
    ) async throws -> PluginTestHost {
        var settings = PluginHostConfiguration(pluginDirectories: [], pluginFiles: [file], callTimeout: callTimeout)
        let image = try PluginLoader.open(file)
        settings.pluginSettings = [image.manifest.name: configuration]
        let host = await PluginHost.load(
            configuration: settings,
            serviceInvoker: serviceInvoker,
            logger: Logger(label: "budpipeline.plugin-test")
        )
        if let refusal = host.refusals.first { throw refusal }
        guard let plugin = host.plugins.first else { throw PluginRefusal(file: file, reason: "no plugin was loaded") }
        return PluginTestHost(host: host, plugin: plugin)
    }

    /// Runs `action` with `params` as a step of a test execution owned by `userID`.
    ///
    /// As the server does, the request's `user_id` and `workflow_params.user_id` agree: the owner
    /// is `userID`, else `workflowParams["user_id"]`.
    public func execute(
        _ action: String,
        params: JSONObject = [:],
        workflowParams: JSONObject = [:],
        userID: String? = nil,
        progress: (@Sendable (PluginProgress) -> Void)? = nil
    ) async throws -> StepOutcome {
        let owner = userID ?? workflowParams["user_id"]?.stringValue
        var workflowParams = workflowParams
        workflowParams["user_id"] = owner.map(JSONValue.string)
        let request = ExecuteRequest(
            action: action,
            executionID: "test-execution",
            stepID: "test-step",
            idempotencyKey: "test-execution/test-step/0",
            params: params,
            workflowParams: workflowParams,
            userID: owner
        )
        return try await host.execute(
            request, context: PluginCallContext(executionID: "test-execution", stepID: "test-step", progressHandler: progress))
    }

    /// Delivers `event` to `action` for a step awaiting `externalWorkflowID`.
    public func handleEvent(
        _ action: String,
        externalWorkflowID: String,
        event: JSONValue,
        stepOutputs: JSONObject = [:]
    ) async throws -> EventOutcome {
        let request = EventRequest(
            action: action,
            executionID: "test-execution",
            stepID: "test-step",
            externalWorkflowID: externalWorkflowID,
            eventType: event["type"]?.stringValue ?? "unknown",
            event: event,
            stepOutputs: stepOutputs
        )
        return try await host.handleEvent(request)
    }

    /// The action's own parameter checks.
    public func validate(_ action: String, params: JSONObject) async throws -> [String] {
        try await host.validateParams(action: action, params: params)
    }

    /// Calls the plugin's shutdown and stops the host's threads.
    public func shutdown() async {
        await host.shutdown()
    }
}

/// Where the package's build products are.
public enum BuildProducts {
    /// The directory of the running executable (the test runner), where SwiftPM puts every product.
    public static var directory: String {
        PluginHostConfiguration.defaultExecutableDirectory ?? FileManager.default.currentDirectoryPath
    }

    /// Copies a library to a new temporary file and returns its path.
    ///
    /// The dynamic linker loads a file once per process, so two hosts that open the same file share
    /// the plugin's global state (and one host's `shutdown` ends the plugin for the other). Tests
    /// that run in parallel each load their own copy.
    public static func isolatedCopy(of library: String) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("budpipeline-plugin-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let copy = directory.appendingPathComponent(URL(fileURLWithPath: library).lastPathComponent).path
        try FileManager.default.copyItem(atPath: library, toPath: copy)
        return copy
    }

    /// The path of the dynamic library product `name` (`lib<name>.so`, `.dylib` on macOS).
    public static func library(named name: String) throws(PluginRefusal) -> String {
        #if canImport(Darwin)
            let file = "lib\(name).dylib"
        #else
            let file = "lib\(name).so"
        #endif
        let path = URL(fileURLWithPath: directory).appendingPathComponent(file).path
        guard FileManager.default.fileExists(atPath: path) else {
            throw PluginRefusal(file: path, reason: "not built; `swift build` builds the \(name) product")
        }
        return path
    }
}
