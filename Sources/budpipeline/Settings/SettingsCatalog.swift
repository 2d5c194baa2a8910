/// One setting of the server: the environment variable that sets it, its key in a configuration
/// file, whether its value is a secret (never printed), and, for a list, the separator its
/// environment form uses (a file may give the list as a YAML sequence).
///
/// Every setting is documented once, in the settings tables of docs/operations.md and
/// docs/plugins.md (variable and file key); a test keeps the catalog and the tables the same.
struct Setting: Sendable, Equatable {
    let variable: String
    let key: String
    var secret = false
    var separator: String?
}

enum SettingsCatalog {
    static let all: [Setting] = [
        // The HTTP server.
        Setting(variable: "HOST", key: "server.host"),
        Setting(variable: "PORT", key: "server.port"),
        Setting(variable: "BUDPIPELINE_PUBLIC_URL", key: "server.public_url"),
        Setting(variable: "BUDPIPELINE_MAX_BODY_BYTES", key: "server.max_body_bytes"),
        Setting(variable: "BUDPIPELINE_MAX_CONNECTIONS", key: "server.max_connections"),
        Setting(variable: "BUDPIPELINE_HTTP_IDLE_TIMEOUT_SECONDS", key: "server.idle_timeout_seconds"),
        Setting(variable: "BUDPIPELINE_HTTP_REQUEST_TIMEOUT_SECONDS", key: "server.request_timeout_seconds"),
        Setting(variable: "APP_API_TOKEN", key: "server.app_api_token", secret: true),
        Setting(variable: "BUDPIPELINE_ALLOW_UNAUTHENTICATED", key: "server.allow_unauthenticated"),
        Setting(variable: "BUDPIPELINE_CONSOLE", key: "server.console"),
        Setting(variable: "BUDPIPELINE_SENSITIVE_HEADERS", key: "server.sensitive_headers", separator: ","),
        Setting(variable: "BUDPIPELINE_SECRET_KEYS", key: "server.secret_keys", separator: ","),
        Setting(variable: "BUDPIPELINE_RATE_LIMIT_READS_PER_MINUTE", key: "rate_limits.reads_per_minute"),
        Setting(variable: "BUDPIPELINE_RATE_LIMIT_STARTS_PER_MINUTE", key: "rate_limits.starts_per_minute"),
        Setting(variable: "BUDPIPELINE_RATE_LIMIT_SERVICE", key: "rate_limits.service"),
        Setting(variable: "BUDPIPELINE_RATE_LIMIT_MAX_KEYS", key: "rate_limits.max_keys"),
        Setting(variable: "BUDPIPELINE_RATE_LIMIT_PROXY_HOPS", key: "rate_limits.proxy_hops"),
        // The store.
        Setting(variable: "DATABASE_URL", key: "database.url", secret: true),
        Setting(variable: "BUDPIPELINE_DATA_DIR", key: "database.data_dir"),
        Setting(variable: "PSQL_HOST", key: "database.host"),
        Setting(variable: "PSQL_PORT", key: "database.port"),
        Setting(variable: "PSQL_USER", key: "database.user"),
        Setting(variable: "PSQL_PASSWORD", key: "database.password", secret: true),
        Setting(variable: "PSQL_DB_NAME", key: "database.name"),
        Setting(variable: "PSQL_POOL_SIZE", key: "database.pool_size"),
        Setting(variable: "AUTO_MIGRATE", key: "database.auto_migrate"),
        // The runtime.
        Setting(variable: "BUDPIPELINE_WORKER_ID", key: "runtime.worker_id"),
        Setting(variable: "BUDPIPELINE_WORKER_PORT", key: "runtime.worker_port"),
        Setting(variable: "BUDPIPELINE_STATE_DIR", key: "runtime.state_dir"),
        Setting(variable: "BUDPIPELINE_CRASH_LIMIT", key: "runtime.crash_limit"),
        Setting(variable: "BUDPIPELINE_LEASE_SECONDS", key: "runtime.lease_seconds"),
        Setting(variable: "BUDPIPELINE_TIMER_POLL_MS", key: "runtime.timer_poll_ms"),
        Setting(variable: "BUDPIPELINE_LEASE_SWEEP_MS", key: "runtime.lease_sweep_ms"),
        Setting(variable: "BUDPIPELINE_CLUSTER_SIGNALS", key: "runtime.cluster_signals"),
        Setting(variable: "DEFAULT_ASYNC_STEP_TIMEOUT", key: "runtime.default_async_step_timeout_seconds"),
        Setting(variable: "RETRY_MAX_ATTEMPTS", key: "retries.max_attempts"),
        Setting(variable: "RETRY_BACKOFF_SECONDS", key: "retries.backoff_seconds"),
        Setting(variable: "RETRY_BACKOFF_MULTIPLIER", key: "retries.backoff_multiplier"),
        Setting(variable: "RETRY_MAX_BACKOFF_SECONDS", key: "retries.max_backoff_seconds"),
        Setting(variable: "BUDPIPELINE_TEMPLATE_MAX_VALUE_BYTES", key: "limits.template_max_value_bytes"),
        Setting(variable: "BUDPIPELINE_TEMPLATE_MAX_OPERATIONS", key: "limits.template_max_operations"),
        Setting(variable: "BUDPIPELINE_MAX_STEP_PARAMS_BYTES", key: "limits.max_step_params_bytes"),
        Setting(variable: "BUDPIPELINE_MAX_STEP_OUTPUT_BYTES", key: "limits.max_step_output_bytes"),
        Setting(variable: "BUDPIPELINE_MAX_EXECUTION_BYTES", key: "limits.max_execution_bytes"),
        Setting(variable: "BUDPIPELINE_MAX_LOG_LINE_BYTES", key: "limits.max_log_line_bytes"),
        Setting(variable: "PIPELINE_RETENTION_DAYS", key: "retention.days"),
        Setting(variable: "PIPELINE_CLEANUP_SCHEDULE", key: "retention.cleanup_schedule"),
        // Events through Dapr.
        Setting(variable: "DAPR_HTTP_ENDPOINT", key: "dapr.http_endpoint"),
        Setting(variable: "DAPR_HTTP_PORT", key: "dapr.http_port"),
        Setting(variable: "DAPR_API_TOKEN", key: "dapr.api_token", secret: true),
        Setting(variable: "PUBSUB_NAME", key: "dapr.pubsub_name"),
        Setting(variable: "CALLBACK_TOPIC", key: "dapr.callback_topic"),
        Setting(variable: "NOTIFY_SERVICE_TOPIC", key: "dapr.notify_service_topic"),
        Setting(variable: "BUDPIPELINE_PUBLISH_MAX_ATTEMPTS", key: "dapr.publish_max_attempts"),
        Setting(variable: "BUDPIPELINE_PUBLISH_MAX_BACKOFF_SECONDS", key: "dapr.publish_max_backoff_seconds"),
        Setting(variable: "BUDAPP_APP_ID", key: "dapr.budapp_app_id"),
        Setting(variable: "BUDCLUSTER_APP_ID", key: "dapr.budcluster_app_id"),
        Setting(variable: "BUDSIM_APP_ID", key: "dapr.budsim_app_id"),
        // Plugins.
        Setting(variable: "BUDPIPELINE_PLUGIN_DIRS", key: "plugins.dirs", separator: ":"),
        Setting(variable: "BUDPIPELINE_PLUGIN_ALLOWLIST", key: "plugins.allowlist", separator: ","),
        Setting(variable: "BUDPIPELINE_PLUGIN_CONFIG", key: "plugins.config_file"),
        Setting(variable: "BUDPIPELINE_PLUGIN_CALL_TIMEOUT_SECONDS", key: "plugins.call_timeout_seconds"),
        Setting(variable: "BUDPIPELINE_PLUGIN_THREADS", key: "plugins.threads"),
        Setting(variable: "BUDPIPELINE_PLUGIN_ISOLATION", key: "plugins.isolation"),
        Setting(variable: "BUDPIPELINE_PLUGIN_QUARANTINE_CRASHES", key: "plugins.quarantine_crashes"),
        Setting(variable: "BUDPIPELINE_PLUGIN_PROCESS_USERS", key: "plugins.process_users"),
        Setting(variable: "BUDPIPELINE_PLUGIN_PROCESS_MEMORY_MB", key: "plugins.process_memory_mb"),
        Setting(variable: "BUDPIPELINE_PLUGIN_PROCESS_OPEN_FILES", key: "plugins.process_open_files"),
        Setting(variable: "BUDPIPELINE_PLUGIN_PROCESS_CPU_SECONDS", key: "plugins.process_cpu_seconds"),
        Setting(variable: "BUDPIPELINE_STRICT_PLUGINS", key: "plugins.strict"),
        Setting(variable: "BUDPIPELINE_TEMPLATE_DIR", key: "plugins.template_dir"),
        // Observability.
        Setting(variable: "LOG_LEVEL", key: "logging.level"),
        Setting(variable: "LOG_FORMAT", key: "logging.format"),
        Setting(variable: "BUDPIPELINE_METRICS", key: "metrics.enabled"),
        Setting(variable: "BUDPIPELINE_TRACING", key: "tracing.enabled"),
        Setting(variable: "OTEL_EXPORTER_OTLP_ENDPOINT", key: "tracing.otlp_endpoint"),
        Setting(variable: "OTEL_EXPORTER_OTLP_HEADERS", key: "tracing.otlp_headers", secret: true),
        Setting(variable: "OTEL_SERVICE_NAME", key: "tracing.service_name"),
        Setting(variable: "OTEL_TRACES_SAMPLER", key: "tracing.sampler"),
        Setting(variable: "OTEL_TRACES_SAMPLER_ARG", key: "tracing.sampler_arg"),
    ]

    static let byKey: [String: Setting] = Dictionary(all.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
    static let byVariable: [String: Setting] = Dictionary(all.map { ($0.variable, $0) }, uniquingKeysWith: { first, _ in first })

    /// Prefixes of the variables that belong to the server: one of them the catalog does not know
    /// is reported by `config check` (a misspelt name is otherwise silently ignored).
    static let ownPrefixes = ["BUDPIPELINE_", "PSQL_"]

    /// Variables of those prefixes that are not settings: the configuration file's own, the
    /// fuzzing build's switch, and the log the test plugins write to.
    static let notSettings: Set<String> = ["BUDPIPELINE_CONFIG", "BUDPIPELINE_FUZZ", "BUDPIPELINE_PROBE_LOG"]
    static let notSettingPrefixes = ["BUDPIPELINE_TEST_", "BUDPIPELINE_REQUIRE_"]
}
