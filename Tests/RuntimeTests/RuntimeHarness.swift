import BudJSON
import BudPipelineHost
import Foundation
import Logging
import PipelineEngine
import PipelineRuntime
import ServiceLifecycle
import Storage
import Synchronization
import _BudPipelineTestSupport

/// A runtime with its services running in this process, on a fresh database of one backend, with
/// the `runtime_probe` fixture plugin loaded.
struct RuntimeHarness {
    let database: TestDatabase
    let plugins: PluginHost
    let runtime: ExecutionRuntime
    let group: ServiceGroup
    let groupTask: Task<Void, any Error>

    /// Every call the probe plugin made in this test process, one line each.
    static let probeLog: String = {
        let path = NSTemporaryDirectory() + "bp-probe-\(getpid()).log"
        setenv("BUDPIPELINE_PROBE_LOG", path, 1)
        return path
    }()

    static func start(
        _ backend: TestBackend,
        database existing: TestDatabase? = nil,
        configure: (inout RuntimeConfiguration) -> Void = { _ in },
        storeDatabase: ((any Database) -> any Database)? = nil
    ) async throws -> RuntimeHarness {
        _ = probeLog
        let database: TestDatabase
        if let existing {
            database = existing
        } else {
            database = try await TestDatabase.make(backend)
        }
        let directory = try await FixturePlugins.shared.directory(with: ["runtime_probe"])
        var hostConfiguration = PluginHostConfiguration(pluginDirectories: [directory])
        hostConfiguration.reservedActionTypes = BuiltInActions.types
        var logger = Logger(label: "test.runtime")
        logger.logLevel = .warning
        let plugins = await PluginHost.load(configuration: hostConfiguration, logger: logger)
        var configuration = RuntimeConfiguration(
            timerPollInterval: .milliseconds(100), leaseSweepInterval: .milliseconds(200), shutdownGracePeriod: .seconds(2))
        configuration.engineOptions.defaultRetry = RetrySettings(
            maxAttempts: 3, backoffSeconds: 0.1, backoffMultiplier: 1, maxBackoffSeconds: 1)
        configure(&configuration)
        let store = storeDatabase.map { PipelineStore(database: $0(database.database)) } ?? database.store
        let runtime = ExecutionRuntime(store: store, plugins: plugins, configuration: configuration, logger: logger)
        let group = ServiceGroup(services: RuntimeServices.all(for: runtime), logger: logger)
        let groupTask = Task { try await group.run() }
        return RuntimeHarness(database: database, plugins: plugins, runtime: runtime, group: group, groupTask: groupTask)
    }

    /// Stops the services and the runtime; `keepDatabase` leaves the database open for another harness.
    func stop(keepDatabase: Bool = false) async {
        await group.triggerGracefulShutdown()
        _ = try? await groupTask.value
        await plugins.shutdown()
        if !keepDatabase { await database.close() }
    }

    /// Runs `body` with a started harness and stops it afterwards.
    static func with<Result>(
        _ backend: TestBackend,
        configure: (inout RuntimeConfiguration) -> Void = { _ in },
        storeDatabase: ((any Database) -> any Database)? = nil,
        _ body: (RuntimeHarness) async throws -> Result
    ) async throws -> Result {
        let harness = try await start(backend, configure: configure, storeDatabase: storeDatabase)
        do {
            let result = try await body(harness)
            await harness.stop()
            return result
        } catch {
            await harness.stop()
            throw error
        }
    }

    var store: PipelineStore { database.store }

    /// Starts recording the runtime's bus; read it with ``BusRecorder/eventTypes(of:through:timeout:)``.
    func recordBus() -> BusRecorder {
        BusRecorder(bus: runtime.eventBus)
    }

    /// Starts `dag` and waits for it to finish.
    func run(_ dag: JSONValue, params: JSONObject = [:], timeout: Duration = .seconds(30)) async throws -> (ExecutionRecord, [StepRecord]) {
        let started = try await runtime.startExecution(ExecutionRequest(dag: dag, params: params, initiator: "test"))
        let finished = try await runtime.waitUntilFinished(executionID: started.id, timeout: timeout)
        return (finished, try await store.executions.steps(executionID: started.id))
    }

    /// Waits until `condition` holds for the execution's steps, or fails after `timeout`.
    func waitForSteps(
        of executionID: ExecutionID,
        timeout: Duration = .seconds(10),
        until condition: ([StepRecord]) -> Bool
    ) async throws -> [StepRecord] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let steps = try await store.executions.steps(executionID: executionID)
            if condition(steps) { return steps }
            guard ContinuousClock.now < deadline else {
                throw HarnessError(
                    "condition not reached within \(timeout); steps: \(steps.map { "\($0.state.stepID)=\($0.state.status.rawValue)" })")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The probe's log lines naming `executionID`, without the process id.
    static func probeCalls(for executionID: ExecutionID) -> [String] {
        ProbeLog.read(probeLog).filter { $0.detail.contains(executionID.rawValue) }.map { "\($0.call) \($0.detail)" }
    }

    /// Whether the probe plugin logs `call` for the execution within `timeout`. Cleanups run after
    /// the transition that abandons a step is committed, so they may trail the execution's end.
    static func probeLogs(_ call: String, for executionID: ExecutionID, within timeout: Duration = .seconds(5)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if probeCalls(for: executionID).contains(call) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return probeCalls(for: executionID).contains(call)
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// Everything published on a bus from its creation on.
final class BusRecorder: Sendable {
    private final class Received: Sendable {
        let messages = Mutex<[EventBus.Message]>([])
    }

    private let received = Received()
    private let reader: Task<Void, Never>

    init(bus: EventBus) {
        let subscription = bus.subscribe(executionID: nil)
        let received = self.received
        reader = Task {
            for await message in subscription.messages { received.messages.withLock { $0.append(message) } }
        }
    }

    deinit { reader.cancel() }

    /// The internal event types published for `executionID`, in order, once `last` was among them.
    func eventTypes(of executionID: ExecutionID, through last: String, timeout: Duration = .seconds(10)) async throws -> [String] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let types = received.messages.withLock { $0 }.filter { $0.executionID == executionID && $0.topic == nil }.map(\.eventType)
            if types.contains(last) { return types }
            guard ContinuousClock.now < deadline else { throw HarnessError("no \(last) on the bus within \(timeout); saw \(types)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// A database whose next transaction running a given statement (by default a transition's update
/// of an execution's version) reports a connection failure after it committed, once armed: what
/// the runtime sees when the connection drops between the commit and its answer.
final class LosingAcknowledgementDatabase: Database {
    let base: any Database
    /// What the transaction to lose the answer of runs (`nil`: disarmed).
    private let armed = Mutex<String?>(nil)
    private let lost = Mutex(0)

    init(base: any Database) { self.base = base }

    /// Makes the database a harness's store uses, and keeps it for the test to arm.
    final class Made: Sendable {
        private let made = Mutex<LosingAcknowledgementDatabase?>(nil)

        var database: LosingAcknowledgementDatabase? { made.withLock { $0 } }

        func wrap(_ base: any Database) -> any Database {
            let database = LosingAcknowledgementDatabase(base: base)
            made.withLock { $0 = database }
            return database
        }
    }

    /// Loses the acknowledgement of the next transaction that runs a statement containing
    /// `statement` (by default: the next transition of an execution).
    func arm(spotting statement: String = "UPDATE pipeline_execution SET version = version + 1") {
        armed.withLock { $0 = statement }
    }

    /// How many acknowledgements were lost.
    var lostCount: Int { lost.withLock { $0 } }

    var dialect: SQLDialect { base.dialect }

    func transaction<Result: Sendable>(_ body: @escaping @Sendable (any DatabaseSession) throws -> Result) async throws -> Result {
        guard let spotting = armed.withLock({ $0 }) else { return try await base.transaction(body) }
        let spotted = Flag()
        let result = try await base.transaction { session in
            try body(SpottingSession(base: session, spotting: spotting, spotted: spotted))
        }
        let lose =
            spotted.value.withLock { $0 }
            && armed.withLock { armed in
                guard armed != nil else { return false }
                armed = nil
                return true
            }
        if lose {
            lost.withLock { $0 += 1 }
            throw DatabaseError(.connection, "connection lost after the commit (test)")
        }
        return result
    }

    func read(_ statements: [SQLStatement]) async throws -> [[Row]] { try await base.read(statements) }

    func withSession<Result: Sendable>(_ body: @escaping @Sendable (any DatabaseSession) throws -> Result) async throws -> Result {
        try await base.withSession(body)
    }

    func serverVersion() async throws -> String { try await base.serverVersion() }

    func close() async { await base.close() }

    private final class Flag: Sendable {
        let value = Mutex(false)
    }

    /// Notes whether a transition's execution update passed through.
    private struct SpottingSession: DatabaseSession {
        let base: any DatabaseSession
        let spotting: String
        let spotted: Flag

        func note(_ statement: SQLStatement) {
            if statement.sql.contains(spotting) { spotted.value.withLock { $0 = true } }
        }

        func query(_ statement: SQLStatement) throws -> [Row] {
            note(statement)
            return try base.query(statement)
        }

        func execute(_ statement: SQLStatement) throws -> Int {
            note(statement)
            return try base.execute(statement)
        }

        func enqueue(_ statement: SQLStatement, expectedRows: Int?, conflictMessage: String) {
            note(statement)
            base.enqueue(statement, expectedRows: expectedRows, conflictMessage: conflictMessage)
        }

        func executeScript(_ sql: String) throws { try base.executeScript(sql) }
    }
}
