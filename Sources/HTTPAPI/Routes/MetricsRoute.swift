import Hummingbird
import MetricsExport
import NIOCore
import PipelineRuntime
import Telemetry

/// `GET /metrics`: every metric in the Prometheus text format (see docs/operations.md,
/// "Metrics"). The gauges that are measured rather than counted — queues, the outbox backlog,
/// plugin health — are measured for each scrape; store figures that take longer than two seconds
/// keep their last values, so a slow database never makes a scrape time out.
struct MetricsRoute: Sendable {
    let runtime: ExecutionRuntime
    let exporter: PrometheusExporter
    let buildInfo: GaugeFamily

    init(runtime: ExecutionRuntime, exporter: PrometheusExporter, version: String) {
        self.runtime = runtime
        self.exporter = exporter
        buildInfo = GaugeFamily(MetricCatalog.buildInfo, factory: exporter.factory)
        buildInfo.set(1, version)
    }

    func scrape(_ request: Request, context: some RequestContext) async throws -> Response {
        await runtime.collectMetrics()
        return Response(
            status: .ok, headers: [.contentType: PrometheusExporter.contentType],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: exporter.render())))
    }
}
