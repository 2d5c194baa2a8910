public import BudJSON
import Foundation
public import PluginSchema

#if canImport(Glibc)
    import Glibc
#endif

/// Tests a built plugin library through the BudPipeline host itself: every call is made by
/// `budpipeline plugins call` (the server's own loader, checks and call path) and its answer read
/// the way the server reads it. Needs the `budpipeline` executable: `BUDPIPELINE` names it,
/// otherwise it is looked up on `PATH`.
///
/// ```swift
/// try await PluginTestHost.withPlugin(product: "AcmeResize") { plugin in
///     let outcome = try await plugin.execute("acme_resize", params: ["width": 64])
///     #expect(outcome == .completed(outputs: ["width": 64]))
/// }
/// ```
public struct PluginTestHost: Sendable {
    /// The private copy of the library the calls load.
    public let library: String
    /// The plugin's manifest name and its actions' types, in descriptor order.
    public let name: String
    public let actionTypes: [String]
    private let executable: String
    private let configuration: JSONObject
    private let isolation: String

    /// Checks the library as the server would load it (its manifest and metadata) and returns a
    /// host for its calls. `isolation` is `in-process` or `process`.
    public static func load(
        product: String, configuration: JSONObject = [:], isolation: String = "in-process"
    ) throws -> PluginTestHost {
        let executable = try budpipelineExecutable()
        let library = try isolatedCopy(of: try builtLibrary(named: product))
        let inspected = try run(executable, ["plugins", "inspect", library, "--json"])
        guard case .object(let document) = try JSONValue(parsing: Array(inspected.utf8)),
            let name = document["manifest"]?["name"]?.stringValue
        else { throw PluginTestError("budpipeline plugins inspect answered something unexpected: \(inspected)") }
        let types = (document["actions"]?.arrayValue ?? []).compactMap { $0["type"]?.stringValue }
        return PluginTestHost(
            library: library, name: name, actionTypes: types, executable: executable, configuration: configuration, isolation: isolation)
    }

    /// Loads the product `product` and runs `body` with it.
    public static func withPlugin(
        product: String, configuration: JSONObject = [:], isolation: String = "in-process",
        _ body: (PluginTestHost) async throws -> Void
    ) async throws {
        let plugin = try load(product: product, configuration: configuration, isolation: isolation)
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: plugin.library).deletingLastPathComponent().path) }
        try await body(plugin)
    }

    /// Runs `action` with `params` as a step of a test execution owned by `userID`.
    public func execute(
        _ action: String, params: JSONObject = [:], workflowParams: JSONObject = [:], userID: String? = nil
    ) throws -> StepOutcome {
        let owner = userID ?? workflowParams["user_id"]?.stringValue
        var workflowParams = workflowParams
        workflowParams["user_id"] = owner.map(JSONValue.string)
        let request = ExecuteRequest(
            action: action, executionID: "test-execution", stepID: "test-step", idempotencyKey: "test-execution/test-step/0",
            params: params, workflowParams: workflowParams, userID: owner)
        let answer = try call("execute", action: action, request: request.json)
        return try StepOutcome(status: answer.status, output: answer.output, errorMessage: answer.error)
    }

    /// Delivers `event` to `action` for a step awaiting `externalWorkflowID`.
    public func handleEvent(
        _ action: String, externalWorkflowID: String, event: JSONValue, stepOutputs: JSONObject = [:]
    ) throws -> EventOutcome {
        let request = EventRequest(
            action: action, executionID: "test-execution", stepID: "test-step", externalWorkflowID: externalWorkflowID,
            eventType: event["type"]?.stringValue ?? "unknown", event: event, stepOutputs: stepOutputs)
        let answer = try call("on_event", action: action, request: request.json)
        if answer.status == .unsupported { return .ignore }
        return try EventOutcome(status: answer.status, output: answer.output, errorMessage: answer.error)
    }

    /// The action's own parameter checks (`validate_params`); empty when it has none.
    public func validate(_ action: String, params: JSONObject) throws -> [String] {
        let answer = try call("validate_params", action: action, request: ParamsValidation.request(params: params))
        if answer.status == .unsupported { return [] }
        return try ParamsValidation.errors(status: answer.status, output: answer.output, errorMessage: answer.error)
    }

    private struct Answer {
        var status: CallStatus
        var output: [UInt8]
        var error: String
    }

    private func call(_ function: String, action: String, request: JSONValue) throws -> Answer {
        let text = try Self.run(
            executable,
            [
                "plugins", "call", library, function, "--action", action, "--request", request.serializedString(),
                "--config", JSONValue.object(configuration).serializedString(), "--isolation", isolation,
            ])
        guard case .object(let answer) = try JSONValue(parsing: Array(text.utf8)),
            let code = answer["status_code"]?.intValue, let status = UInt32(exactly: code)
        else { throw PluginTestError("budpipeline plugins call answered something unexpected: \(text)") }
        return Answer(
            status: CallStatus(rawValue: status), output: Array((answer["output"]?.stringValue ?? "").utf8),
            error: answer["error"]?.stringValue ?? "")
    }

    /// Runs `executable` and returns its standard output; throws with its standard error when it
    /// fails.
    private static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PluginTestError(String(decoding: errorData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return String(decoding: outputData, as: UTF8.self)
    }

    /// `BUDPIPELINE`, else `budpipeline` on `PATH`.
    static func budpipelineExecutable() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment["BUDPIPELINE"], !explicit.isEmpty { return explicit }
        for directory in (environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/budpipeline"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw PluginTestError(
            "PluginKitTesting calls the plugin through the BudPipeline host: set BUDPIPELINE=/path/to/budpipeline or put it on PATH")
    }

    /// The dynamic library product `name` where `swift build` puts it: beside the test runner.
    static func builtLibrary(named name: String) throws -> String {
        let runner = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath()
        var directory = runner.deletingLastPathComponent()
        // `swift test` runs <products>/<Package>PackageTests.xctest (a file or, elsewhere, a bundle).
        while directory.pathExtension == "xctest" || directory.lastPathComponent == "Contents" || directory.lastPathComponent == "MacOS" {
            directory.deleteLastPathComponent()
        }
        #if canImport(Darwin)
            let file = "lib\(name).dylib"
        #else
            let file = "lib\(name).so"
        #endif
        let path = directory.appendingPathComponent(file).path
        guard FileManager.default.fileExists(atPath: path) else {
            throw PluginTestError("\(path) is not built; `swift build` builds the \(name) product")
        }
        return path
    }

    /// A copy of `library` in a new temporary directory: tests running at once load their own.
    static func isolatedCopy(of library: String) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("budpipeline-plugin-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let copy = directory.appendingPathComponent(URL(fileURLWithPath: library).lastPathComponent).path
        try FileManager.default.copyItem(atPath: library, toPath: copy)
        return copy
    }
}

/// Why a plugin test could not make its call.
public struct PluginTestError: Error, CustomStringConvertible, Sendable {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
