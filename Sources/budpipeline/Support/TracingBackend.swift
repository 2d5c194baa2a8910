import Logging
import OTel
import ServiceLifecycle
import Tracing

/// The process's tracer (see docs/operations.md, "Tracing"): off unless `BUDPIPELINE_TRACING` is
/// true; then spans are exported over OTLP/HTTP (protobuf) by swift-otel, whose batch processor
/// runs as a service of the process's one service group and sends what it holds when the group
/// shuts down.
///
/// swift-otel reads the OpenTelemetry variables itself (`OTEL_EXPORTER_OTLP_ENDPOINT`,
/// `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, …), over the defaults set here: service name
/// `budpipeline`, traces only (no OTel metrics or logs: those have their own exporters here), W3C
/// trace context propagation.
///
/// The tracer is handed to the runtime and the Dapr service invoker, not bootstrapped globally:
/// nothing else in the process makes spans.
struct TracingBackend: Sendable {
    let tracer: (any Tracer)?
    /// The exporter's service; `nil` when tracing is off.
    let service: (any Service)?

    static let off = TracingBackend(tracer: nil, service: nil)

    /// `BUDPIPELINE_TRACING` (default false): whether the process makes and exports spans.
    static func enabled(_ environment: [String: String]) throws -> Bool {
        try EnvironmentFlag.value("BUDPIPELINE_TRACING", in: environment) ?? false
    }

    static func make(_ environment: [String: String], logger: Logger) throws -> TracingBackend {
        guard try enabled(environment) else { return .off }
        var configuration = OTel.Configuration.default
        configuration.serviceName = "budpipeline"
        configuration.diagnosticLogger = .custom(logger)
        configuration.propagators = [.traceContext]
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        configuration.traces.enabled = true
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        do {
            let backend = try OTel.makeTracingBackend(configuration: configuration)
            return TracingBackend(tracer: backend.factory, service: backend.service)
        } catch {
            throw CLIError("tracing cannot start (BUDPIPELINE_TRACING=true): \(error)")
        }
    }
}
