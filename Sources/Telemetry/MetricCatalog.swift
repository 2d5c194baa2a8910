/// One metric the product exports: its Prometheus name, what it measures, its kind, the names of
/// its labels and, for a histogram, its buckets.
///
/// Every metric the product records is defined once, in ``MetricCatalog``; a series is only ever
/// made with the label names its definition lists, so a backend never sees one name with two sets
/// of labels.
public struct MetricDefinition: Sendable, Hashable {
    public enum Kind: String, Sendable {
        case counter, gauge, histogram
    }

    public let name: String
    public let help: String
    public let kind: Kind
    public let labels: [String]
    /// Upper bounds of a histogram's buckets, in seconds (empty for the other kinds).
    public let buckets: [Double]

    init(_ kind: Kind, _ name: String, _ help: String, labels: [String] = [], buckets: [Double] = []) {
        self.kind = kind
        self.name = name
        self.help = help
        self.labels = labels
        self.buckets = buckets
    }
}

/// Every metric of the product, with its help text. `docs/operations.md` ("Metrics") lists them
/// too; a test keeps the two the same.
public enum MetricCatalog {
    /// Buckets for work measured in milliseconds: requests, database waits, transitions.
    static let fast: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    /// Buckets for work that may take hours: steps, executions, plugin calls.
    static let long: [Double] = [0.001, 0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 21_600]
    /// Buckets for how late timers fire.
    static let lag: [Double] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300]

    // MARK: HTTP

    public static let httpRequests = MetricDefinition(
        .counter, "budpipeline_http_requests_total", "HTTP requests answered, by method, route template and status code.",
        labels: ["method", "route", "status"])
    public static let httpRequestDuration = MetricDefinition(
        .histogram, "budpipeline_http_request_duration_seconds",
        "Time from a request's head to the end of its answer's body (a live stream: its whole life).",
        labels: ["method", "route"], buckets: fast)
    public static let httpRequestsInFlight = MetricDefinition(
        .gauge, "budpipeline_http_requests_in_flight", "HTTP requests being handled or answered now.")

    // MARK: Executions and steps

    public static let executionsStarted = MetricDefinition(
        .counter, "budpipeline_executions_started_total", "Executions that started running (their first transition was stored).")
    public static let executionsFinished = MetricDefinition(
        .counter, "budpipeline_executions_finished_total", "Executions that ended, by final status.", labels: ["status"])
    public static let executionDuration = MetricDefinition(
        .histogram, "budpipeline_execution_duration_seconds", "Time from an execution's start to its end, by final status.",
        labels: ["status"], buckets: long)
    public static let stepTransitions = MetricDefinition(
        .counter, "budpipeline_step_transitions_total",
        "Step changes stored, by action and what happened: started, awaiting_event, retrying, completed, failed, timed_out, skipped, cancelled.",
        labels: ["action", "outcome"])
    public static let stepDuration = MetricDefinition(
        .histogram, "budpipeline_step_duration_seconds", "Time from a step attempt's start to its end, by action and outcome.",
        labels: ["action", "outcome"], buckets: long)
    public static let transitions = MetricDefinition(
        .counter, "budpipeline_transitions_total", "Execution transitions stored (one transaction each).")
    public static let transitionConflicts = MetricDefinition(
        .counter, "budpipeline_transition_conflicts_total",
        "Transitions that lost a race with another process or input and were planned again.")
    public static let transitionWriteDuration = MetricDefinition(
        .histogram, "budpipeline_transition_write_seconds", "Time to store one transition, from its first statement to its commit.",
        buckets: fast)
    public static let executionsInMemory = MetricDefinition(
        .gauge, "budpipeline_executions_in_memory", "Executions this process holds between transitions.")
    public static let queuedInputs = MetricDefinition(
        .gauge, "budpipeline_queued_inputs", "Inputs (plugin results, events, timers) waiting in this process to be applied.")
    public static let dueTimers = MetricDefinition(
        .gauge, "budpipeline_due_timers", "Timers in the store that are due and not yet handled (runnable work).")
    public static let oldestDueTimerAge = MetricDefinition(
        .gauge, "budpipeline_due_timer_oldest_age_seconds", "How long the oldest due timer has been waiting (0 when none is due).")
    public static let timerLag = MetricDefinition(
        .histogram, "budpipeline_timer_lag_seconds",
        "How late timers fired, by where they came from: this process's queue (local) or the store's poll (store).",
        labels: ["source"], buckets: lag)

    // MARK: Outbox

    public static let outboxPublished = MetricDefinition(
        .counter, "budpipeline_outbox_published_total", "Outbox events every topic accepted (then removed from the outbox).")
    public static let outboxPublishFailures = MetricDefinition(
        .counter, "budpipeline_outbox_publish_failures_total", "Attempts to publish an outbox event that failed.")
    public static let outboxDeadLetters = MetricDefinition(
        .counter, "budpipeline_outbox_dead_letters_total", "Outbox events given up on after their last attempt (kept as DEAD).")
    public static let clusterTakeovers = MetricDefinition(
        .counter, "budpipeline_cluster_takeovers_total",
        "Processes sharing the database found gone by this one, whose claimed work it handed back to the others.")
    public static let outboxPending = MetricDefinition(
        .gauge, "budpipeline_outbox_pending", "Outbox events waiting to be published (all processes).")
    public static let outboxDead = MetricDefinition(
        .gauge, "budpipeline_outbox_dead", "Outbox events given up on and kept for inspection (all processes).")
    public static let outboxOldestPendingAge = MetricDefinition(
        .gauge, "budpipeline_outbox_oldest_pending_age_seconds", "Age of the oldest event waiting to be published (0 when none).")

    // MARK: Inbound events

    public static let inboundEvents = MetricDefinition(
        .counter, "budpipeline_inbound_events_total",
        "Events delivered to /workflow-events, by outcome: step_completed, routed, parked, unrouted, duplicate, retry_later, malformed.",
        labels: ["outcome"])

    // MARK: Plugins

    public static let pluginCalls = MetricDefinition(
        .counter, "budpipeline_plugin_calls_total",
        "Step attempts given to plugins, by plugin and outcome: completed, awaiting_event, failed, invalid_params, timed_out, crashed, unhealthy, protocol_violation, unfinished.",
        labels: ["plugin", "outcome"])
    public static let pluginCallDuration = MetricDefinition(
        .histogram, "budpipeline_plugin_call_duration_seconds", "Time a plugin took to answer a step attempt, by plugin.",
        labels: ["plugin"], buckets: long)
    public static let pluginCallsInFlight = MetricDefinition(
        .gauge, "budpipeline_plugin_calls_in_flight", "Plugin calls this process is waiting for now.")
    public static let pluginHealthy = MetricDefinition(
        .gauge, "budpipeline_plugin_healthy", "1 when a loaded plugin takes calls, 0 when it is stuck or quarantined.", labels: ["plugin"])
    public static let pluginQuarantined = MetricDefinition(
        .gauge, "budpipeline_plugin_quarantined", "1 when a plugin's process crashed so often that it is no longer started.",
        labels: ["plugin"])
    public static let pluginProcessCrashes = MetricDefinition(
        .counter, "budpipeline_plugin_process_crashes_total", "Crashes (and kills for an overrun) of a plugin's process.",
        labels: ["plugin"])
    public static let pluginProcessRestarts = MetricDefinition(
        .counter, "budpipeline_plugin_process_restarts_total", "Times a plugin's process was started again.", labels: ["plugin"])
    public static let pluginsLoaded = MetricDefinition(.gauge, "budpipeline_plugins_loaded", "Plugins loaded.")

    // MARK: Database

    public static let databaseQueueWait = MetricDefinition(
        .histogram, "budpipeline_db_queue_wait_seconds",
        "Time database work waited for a connection's thread, by pool (postgres, sqlite_writer, sqlite_readers).",
        labels: ["pool"], buckets: fast)
    public static let databaseRefused = MetricDefinition(
        .counter, "budpipeline_db_refused_total", "Database work refused because its pool's queue was full, by pool.",
        labels: ["pool"])
    public static let databaseErrors = MetricDefinition(
        .counter, "budpipeline_db_errors_total",
        "Failed database operations, by operation (transaction, read) and kind (connection, statement, unique_violation, transient, conflict, decoding, schema, unavailable, not_run; other for an error that is no database error). Work a caller gave up on is not counted.",
        labels: ["operation", "kind"])
    public static let databaseWritable = MetricDefinition(
        .gauge, "budpipeline_db_writable", "1 while the last write to the store succeeded, 0 while writes fail.")

    // MARK: Process

    public static let buildInfo = MetricDefinition(
        .gauge, "budpipeline_build_info", "Always 1; the version is in its label.", labels: ["version"])

    /// Every definition, in the order `/metrics` documents them.
    public static let all: [MetricDefinition] = [
        httpRequests, httpRequestDuration, httpRequestsInFlight,
        executionsStarted, executionsFinished, executionDuration, stepTransitions, stepDuration, transitions, transitionConflicts,
        transitionWriteDuration, executionsInMemory, queuedInputs, dueTimers, oldestDueTimerAge, timerLag,
        outboxPublished, outboxPublishFailures, outboxDeadLetters, outboxPending, outboxDead, outboxOldestPendingAge,
        inboundEvents, clusterTakeovers,
        pluginCalls, pluginCallDuration, pluginCallsInFlight, pluginHealthy, pluginQuarantined, pluginProcessCrashes,
        pluginProcessRestarts, pluginsLoaded,
        databaseQueueWait, databaseRefused, databaseErrors, databaseWritable,
        buildInfo,
    ]

    /// The definitions by name.
    public static let byName: [String: MetricDefinition] = Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
}
