public import BudJSON
public import BudPipelineHost
import Foundation
public import PipelineEngine
public import Scheduling

/// How the runtime runs executions and shares work with other processes.
public struct RuntimeConfiguration: Sendable {
    /// This process's name in claims and leases (host, pid and a random suffix by default).
    public var workerID: String
    /// How long a claim on a running step holds without renewal; renewed every third of it.
    public var leaseDuration: Duration
    /// How often the database is asked for due timers set by other (or dead) processes.
    public var timerPollInterval: Duration
    /// How long after its due time a timer claimed by a live process stays reserved for it.
    public var timerClaimGrace: Duration
    /// How often expired step claims are looked for.
    public var leaseSweepInterval: Duration
    /// Whether the process joins the others on its database (PostgreSQL) to wake them, stream
    /// their executions' events and take over the work of one that dies (see ``ClusterService``).
    public var clusterSignals = true
    /// The most inputs of one execution applied in one transaction.
    public var maximumInputsPerTransition: Int
    /// How long shutdown waits for plugin calls in flight before leaving them to their leases.
    public var shutdownGracePeriod: Duration
    public var engineOptions: EngineOptions
    /// Finished executions older than this many days are deleted; 0 keeps them forever.
    public var retentionDays: Int
    /// When retention runs, read in UTC.
    public var retentionSchedule: CronExpression
    /// How long an action's `on_event` may take before the event is handed back for redelivery.
    public var eventCallTimeout: Duration = .seconds(30)
    /// How long one `validate_params` call may take when a pipeline is validated, saved or started.
    public var parameterCheckTimeout: Duration = .seconds(10)
    /// The most steps whose parameters are checked by their plugins when a pipeline is validated,
    /// saved or started; the others are checked when they run.
    public var maximumParameterChecks = 500
    /// How long an event that arrived before any step awaited its workflow id is kept for the
    /// step that will (a service may report faster than the step is stored as waiting).
    public var parkedEventWindow: Duration = .seconds(600)
    /// Where outbox events are published.
    public var publishing = PublishingConfiguration()
    /// After this many deaths of a process while it worked on the same step, the step is failed
    /// instead of run again (see docs/operations.md, "Crash loops").
    public var interruptionLimit = 2
    /// Where processes sharing the database keep their work marks; `nil`: none are kept (a process
    /// that dies then cannot be told apart from one that lost its claims).
    public var workMarksDirectory: String?
    /// The keys whose values are masked wherever stored params and outputs are shown: API
    /// answers, the live stream, published notifications (see ``SecretKeys``).
    public var secretKeys = SecretKeys.builtIn

    public init(
        workerID: String = RuntimeConfiguration.defaultWorkerID(),
        leaseDuration: Duration = .seconds(30),
        timerPollInterval: Duration = .milliseconds(500),
        timerClaimGrace: Duration = .seconds(2),
        leaseSweepInterval: Duration = .seconds(2),
        maximumInputsPerTransition: Int = 64,
        shutdownGracePeriod: Duration = .seconds(10),
        engineOptions: EngineOptions = EngineOptions(),
        retentionDays: Int = 30,
        retentionSchedule: CronExpression = RuntimeConfiguration.defaultRetentionSchedule
    ) {
        self.workerID = workerID
        self.leaseDuration = leaseDuration
        self.timerPollInterval = timerPollInterval
        self.timerClaimGrace = timerClaimGrace
        self.leaseSweepInterval = leaseSweepInterval
        self.maximumInputsPerTransition = maximumInputsPerTransition
        self.shutdownGracePeriod = shutdownGracePeriod
        self.engineOptions = engineOptions
        self.retentionDays = retentionDays
        self.retentionSchedule = retentionSchedule
    }

    /// Daily at 03:00 UTC: the default of `PIPELINE_CLEANUP_SCHEDULE`, whose expression is always
    /// read in UTC.
    public static let defaultRetentionSchedule: CronExpression = {
        guard let daily = try? CronExpression("0 3 * * *") else { preconditionFailure("the default retention schedule must parse") }
        return daily
    }()

    public static func defaultWorkerID() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        let suffix = UUID().uuidString.prefix(8).lowercased()
        return "\(host)-\(getpid())-\(suffix)"
    }

    /// The configuration from the environment:
    /// - `BUDPIPELINE_LEASE_SECONDS` (30), `BUDPIPELINE_TIMER_POLL_MS` (500),
    ///   `BUDPIPELINE_LEASE_SWEEP_MS` (2000), `BUDPIPELINE_WORKER_ID`;
    /// - `RETRY_MAX_ATTEMPTS` (3), `RETRY_BACKOFF_SECONDS` (60), `RETRY_BACKOFF_MULTIPLIER` (2),
    ///   `RETRY_MAX_BACKOFF_SECONDS` (3600): retries when neither the step, the pipeline nor the
    ///   action says; `DEFAULT_ASYNC_STEP_TIMEOUT` (1800): how long a step may await an event;
    /// - `BUDPIPELINE_TEMPLATE_MAX_VALUE_BYTES` (1 MiB), `BUDPIPELINE_TEMPLATE_MAX_OPERATIONS`
    ///   (10,000,000): what one template evaluation may produce and do;
    /// - `BUDPIPELINE_MAX_STEP_PARAMS_BYTES` (1 MiB), `BUDPIPELINE_MAX_STEP_OUTPUT_BYTES` (1 MiB),
    ///   `BUDPIPELINE_MAX_EXECUTION_BYTES` (16 MiB), `BUDPIPELINE_MAX_LOG_LINE_BYTES` (8 KiB): what
    ///   an execution may store;
    /// - `BUDPIPELINE_CRASH_LIMIT` (2): deaths of a process on one step before it is failed;
    /// - `PIPELINE_RETENTION_DAYS` (30; 0 keeps everything), `PIPELINE_CLEANUP_SCHEDULE` (`0 3 * * *`);
    /// - `BUDPIPELINE_SECRET_KEYS` (none): comma-separated keys masked beside the built-in ones
    ///   (``SecretKeys/builtInEntries``).
    public static func from(environment: [String: String]) throws(ConfigurationError) -> RuntimeConfiguration {
        var configuration = RuntimeConfiguration()
        let reader = EnvironmentReader(environment)
        if let worker = environment["BUDPIPELINE_WORKER_ID"], !worker.isEmpty {
            guard worker.unicodeScalars.count <= 200, worker.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 }) else {
                throw ConfigurationError("BUDPIPELINE_WORKER_ID must be at most 200 printable ASCII characters without spaces")
            }
            configuration.workerID = worker
        }
        configuration.leaseDuration = .seconds(try reader.integer("BUDPIPELINE_LEASE_SECONDS", default: 30, range: 1...3600))
        configuration.timerPollInterval = .milliseconds(try reader.integer("BUDPIPELINE_TIMER_POLL_MS", default: 500, range: 10...60_000))
        configuration.leaseSweepInterval = .milliseconds(
            try reader.integer("BUDPIPELINE_LEASE_SWEEP_MS", default: 2000, range: 10...600_000))
        configuration.engineOptions = EngineOptions(
            defaultAwaitTimeoutSeconds: try reader.integer("DEFAULT_ASYNC_STEP_TIMEOUT", default: 1800, range: 1...31_536_000),
            defaultRetry: RetrySettings(
                maxAttempts: try reader.integer("RETRY_MAX_ATTEMPTS", default: 3, range: 1...1000),
                backoffSeconds: try reader.number("RETRY_BACKOFF_SECONDS", default: 60, range: 0...86_400),
                backoffMultiplier: try reader.number("RETRY_BACKOFF_MULTIPLIER", default: 2, range: 1...100),
                maxBackoffSeconds: try reader.number("RETRY_MAX_BACKOFF_SECONDS", default: 3600, range: 0...604_800)
            ),
            templateLimits: TemplateLimits(
                maximumValueBytes: try reader.integer(
                    "BUDPIPELINE_TEMPLATE_MAX_VALUE_BYTES", default: TemplateLimits.defaultMaximumValueBytes, range: 1024...(256 << 20)),
                maximumOperations: try reader.integer(
                    "BUDPIPELINE_TEMPLATE_MAX_OPERATIONS", default: TemplateLimits.defaultMaximumOperations, range: 1000...1_000_000_000)
            ),
            storedSizes: StoredSizeLimits(
                maximumStepParamsBytes: try reader.integer(
                    "BUDPIPELINE_MAX_STEP_PARAMS_BYTES", default: StoredSizeLimits.defaultMaximumStepParamsBytes, range: 1024...(256 << 20)),
                maximumStepOutputsBytes: try reader.integer(
                    "BUDPIPELINE_MAX_STEP_OUTPUT_BYTES", default: StoredSizeLimits.defaultMaximumStepOutputsBytes,
                    range: 1024...(256 << 20)),
                maximumExecutionBytes: try reader.integer(
                    "BUDPIPELINE_MAX_EXECUTION_BYTES", default: StoredSizeLimits.defaultMaximumExecutionBytes, range: 1024...(1 << 30)),
                maximumLogLineBytes: try reader.integer(
                    "BUDPIPELINE_MAX_LOG_LINE_BYTES", default: StoredSizeLimits.defaultMaximumLogLineBytes, range: 64...(1 << 20))
            )
        )
        configuration.retentionDays = try reader.integer("PIPELINE_RETENTION_DAYS", default: 30, range: 0...36_500)
        configuration.interruptionLimit = try reader.integer("BUDPIPELINE_CRASH_LIMIT", default: 2, range: 1...100)
        configuration.publishing = try PublishingConfiguration.from(environment: environment)
        if let list = environment["BUDPIPELINE_SECRET_KEYS"], !list.isEmpty {
            do {
                configuration.secretKeys = try SecretKeys(parsing: list)
            } catch {
                throw ConfigurationError("BUDPIPELINE_SECRET_KEYS: \(error.message) (write comma-separated keys, e.g. ssn,pin_code)")
            }
        }
        if let schedule = environment["PIPELINE_CLEANUP_SCHEDULE"], !schedule.isEmpty {
            do {
                configuration.retentionSchedule = try CronExpression(schedule)
            } catch {
                throw ConfigurationError("PIPELINE_CLEANUP_SCHEDULE '\(schedule)': \(error.message)")
            }
        }
        return configuration
    }
}

/// Reads numeric settings with one-line errors naming the variable.
struct EnvironmentReader {
    let environment: [String: String]

    init(_ environment: [String: String]) {
        self.environment = environment
    }

    func integer(_ name: String, default value: Int, range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        guard let text = environment[name], !text.isEmpty else { return value }
        guard let number = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(number) else {
            throw ConfigurationError("\(name)=\(text) is not a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    func number(_ name: String, default value: Double, range: ClosedRange<Double>) throws(ConfigurationError) -> Double {
        guard let text = environment[name], !text.isEmpty else { return value }
        guard let number = Double(text.trimmingCharacters(in: .whitespaces)), number.isFinite, range.contains(number) else {
            throw ConfigurationError("\(name)=\(text) is not a number in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }
}
