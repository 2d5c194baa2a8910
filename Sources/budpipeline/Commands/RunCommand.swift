import ArgumentParser
import BudJSON
import Foundation
import Logging
import PipelineEngine
import PipelineRuntime
import ServiceLifecycle
import Storage
import Synchronization
import UnixSignals

/// `budpipeline run FILE`: runs one execution to its end and prints the result. While it runs,
/// stdout shows its progress (see ``RunProgressMode``): a live view on a terminal, a line per
/// change otherwise, nothing with `--json`.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a pipeline DAG once, wait for it to finish and print the result.",
        discussion: """
            The execution is stored like any other (default: the SQLite file under data/) and runs \
            with the plugins the server would load. Exits with status 1 unless it completes. While it \
            runs, a terminal shows a live view of the steps (NO_COLOR turns its colours off); \
            elsewhere, a line per change.
            """
    )

    @Argument(help: "The DAG file (.json, .yaml or .yml).")
    var file: String

    @Option(name: .customLong("param"), help: "A parameter as NAME=VALUE (VALUE is read as JSON when it parses, else as text). Repeatable.")
    var params: [String] = []

    @Option(help: "Give up waiting after this many seconds (the execution goes on in the store).")
    var timeout: Double = 3600

    @Flag(help: "Print the execution and its steps as JSON.")
    var json = false

    @Flag(help: "Apply pending migrations first (also AUTO_MIGRATE=true).")
    var migrate = false

    @Option(
        help: ArgumentHelp(
            "How to show progress while it runs: auto (live on a terminal, else plain; none with --json), live, plain or none."
        ))
    var progress: RunProgressMode = .auto

    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        guard timeout.isFinite, timeout > 0, timeout <= 31_536_000 else {
            throw ValidationError("--timeout must be a number of seconds from 0 to 31536000 (a year), got \(timeout)")
        }
        if json, progress == .live || progress == .plain {
            throw ValidationError("--progress \(progress.rawValue) cannot go with --json: stdout holds only the JSON")
        }
    }

    func run() async throws {
        try database.settings.apply()
        try CLILogging.bootstrap(defaultLevel: .warning)
        let document = try ValidateCommand.readDocument(file)
        let values = try Self.parse(params)
        let assembly = try await RuntimeAssembly.open(database: database, migrate: migrate, label: "budpipeline.run")
        let executionID = ExecutionID.generate()
        let environment = ProcessInfo.processInfo.environment
        let isTerminal = StandardOutput.isTerminal
        let mode = progress.resolved(json: json, stdoutIsTerminal: isTerminal, environment: environment)
        let reporter =
            mode == .none
            ? nil
            : RunProgressReporter(
                runtime: assembly.runtime, executionID: executionID, definition: try? PipelineParser.parse(document).get(), mode: mode,
                style: .forStandardOutput(isTerminal: isTerminal, environment: environment))
        let runner = OneExecution(
            runtime: assembly.runtime,
            request: ExecutionRequest(dag: document, params: values, initiator: "cli", executionID: executionID), timeout: timeout,
            reporter: reporter)
        var services = RuntimeServices.all(for: assembly.runtime).map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
        services.append(
            .init(
                service: runner, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)
        )
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: assembly.logger))
        do {
            try await group.run()
        } catch {
            await assembly.close()
            if let startError = error as? ExecutionStartError { throw CLIError("\(file): \(startError)") }
            throw CLIError("\(error)")
        }
        let result = runner.result
        let steps = try? await assembly.runtime.store.executions.steps(executionID: result?.id ?? "")
        await assembly.close()
        guard let result else { throw CLIError("the execution did not start") }
        print(
            json ? Self.json(result, steps: steps ?? []).serializedString(options: .prettyPrinted) : Self.text(result, steps: steps ?? []))
        if result.status != .completed { throw ExitCode(1) }
    }

    /// Reads `NAME=VALUE` pairs; values that parse as JSON are JSON, others text.
    static func parse(_ pairs: [String]) throws -> JSONObject {
        var params = JSONObject()
        for pair in pairs {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                throw CLIError("--param \(pair): write NAME=VALUE")
            }
            let name = String(pair[..<equals])
            let text = String(pair[pair.index(after: equals)...])
            params[name] = (try? JSONValue(parsing: text)) ?? .string(text)
        }
        return params
    }

    /// The result as text: one line per step. Ids and messages come from the DAG and its plugins,
    /// so they lose control characters (no terminal escapes, no forged lines); outputs are JSON.
    static func text(_ execution: ExecutionRecord, steps: [StepRecord]) -> String {
        var lines = ["execution \(execution.id): \(execution.status.rawValue)"]
        for step in steps {
            var line = "  \(TerminalText.clean(step.state.stepID, limit: 1000)): \(step.state.status.rawValue)"
            if step.state.attempt > 0 { line += " (attempt \(step.state.attempt + 1))" }
            if let error = step.state.error { line += " — \(TerminalText.clean(error, limit: 10_000))" }
            lines.append(line)
        }
        if let outputs = execution.finalOutputs { lines.append("outputs: \(JSONValue.object(outputs).serializedString())") }
        if let error = execution.errorInfo?["message"]?.stringValue { lines.append("error: \(TerminalText.clean(error, limit: 10_000))") }
        return lines.joined(separator: "\n")
    }

    static func json(_ execution: ExecutionRecord, steps: [StepRecord]) -> JSONValue {
        [
            "execution_id": .string(execution.id.rawValue),
            "status": .string(execution.status.rawValue),
            "progress_percentage": .double(execution.progress),
            "final_outputs": execution.finalOutputs.map(JSONValue.object) ?? .null,
            "error_info": execution.errorInfo.map(JSONValue.object) ?? .null,
            "steps": .array(
                steps.map { step in
                    [
                        "step_id": .string(step.state.stepID), "status": .string(step.state.status.rawValue),
                        "attempt": .int(step.state.attempt),
                        "outputs": step.state.outputs.map(JSONValue.object) ?? .null,
                        "error_message": step.state.error.map(JSONValue.string) ?? .null,
                    ]
                }),
        ]
    }
}

/// Starts one execution, waits for it to finish, then ends (which shuts the group down). With a
/// reporter, its progress is shown meanwhile, and its final view is drawn before this ends.
final class OneExecution: Service, Sendable {
    let runtime: ExecutionRuntime
    let request: ExecutionRequest
    let timeout: Double
    let reporter: RunProgressReporter?
    private let outcome = Mutex<ExecutionRecord?>(nil)

    init(runtime: ExecutionRuntime, request: ExecutionRequest, timeout: Double, reporter: RunProgressReporter? = nil) {
        self.runtime = runtime
        self.request = request
        self.timeout = timeout
        self.reporter = reporter
    }

    var result: ExecutionRecord? { outcome.withLock { $0 } }

    func run() async throws {
        guard let reporter else {
            let started = try await runtime.startExecution(request)
            try await waitUntilFinished(started.id)
            return
        }
        // Subscribed before the start, so that no event of the execution is missed.
        let subscription = runtime.eventBus.subscribe(executionID: reporter.executionID)
        defer { runtime.eventBus.unsubscribe(subscription.id) }
        let started = try await runtime.startExecution(request)
        let (ended, end) = AsyncStream<Void>.makeStream()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await reporter.run(messages: subscription.messages, ended: ended) }
            do {
                try await waitUntilFinished(started.id)
            } catch {
                end.finish()
                try? await group.waitForAll()
                throw error
            }
            end.finish()
            try await group.waitForAll()
        }
    }

    private func waitUntilFinished(_ executionID: ExecutionID) async throws {
        let finished = try await cancelWhenGracefulShutdown {
            try await self.runtime.waitUntilFinished(executionID: executionID, timeout: .milliseconds(Int64(self.timeout * 1000)))
        }
        outcome.withLock { $0 = finished }
    }
}
