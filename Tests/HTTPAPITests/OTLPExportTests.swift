import BudJSON
import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization
import Testing
import _BudPipelineTestSupport

/// An OpenTelemetry collector's OTLP/HTTP trace endpoint, as a test double: it accepts
/// `POST /v1/traces` and keeps what arrived.
final class OTLPCollector: Sendable {
    struct Export: Sendable {
        var contentType: String?
        var body: [UInt8]
    }

    private let exports = Mutex<[Export]>([])
    private let server = Mutex<Task<Void, any Error>?>(nil)

    var received: [Export] { exports.withLock { $0 } }

    /// Starts listening on a free loopback port and returns it.
    func start() async throws -> Int {
        let router = Router()
        router.post("v1/traces") { [self] request, _ -> HTTPResponse.Status in
            let body = try await request.body.collect(upTo: 16 << 20)
            exports.withLock {
                $0.append(Export(contentType: request.headers[.contentType], body: Array(buffer: body)))
            }
            return .ok
        }
        let (started, ready) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "otlp-collector")
        logger.logLevel = .critical
        let application = Application(
            router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in ready.yield(channel.localAddress?.port ?? 0) }, logger: logger)
        // Unstructured on purpose: the double runs until `stop()`.
        let task = Task { try await application.run() }
        server.withLock { $0 = task }
        var iterator = started.makeAsyncIterator()
        guard let port = await iterator.next() else { throw ServerError("the collector did not start") }
        return port
    }

    func stop() async {
        let task = server.withLock { $0 }
        task?.cancel()
        _ = await task?.result
    }
}

@Suite("OTLP export")
struct OTLPExportTests {
    /// The 16 bytes of a trace id whose hex digits are the execution id's.
    static func traceID(of executionID: String) -> [UInt8] {
        let hex = Array(executionID.filter(\.isHexDigit).utf8)
        return stride(from: 0, to: hex.count - 1, by: 2).compactMap { UInt8(String(decoding: hex[$0...$0 + 1], as: UTF8.self), radix: 16) }
    }

    @Test("with BUDPIPELINE_TRACING=true, serve sends an execution's spans to the collector over OTLP/HTTP protobuf")
    func exportsSpans() async throws {
        let collector = OTLPCollector()
        let port = try await collector.start()
        let environment = WorkflowEventTests.environment.merging([
            "BUDPIPELINE_TRACING": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:\(port)", "OTEL_BSP_SCHEDULE_DELAY": "100",
        ]) { _, new in new }
        try await APIServerProcess.with(.sqlite, environment: environment) { server in
            let dag: JSONValue = ["name": "traced", "steps": [["id": "say", "name": "Say", "action": "log", "params": ["message": "hi"]]]]
            let executionID = try await WorkflowEventTests.run(dag, on: server)
            #expect(try await server.finished(executionID)["status"] == "COMPLETED")
            let trace = Self.traceID(of: executionID)
            #expect(trace.count == 16)
            let deadline = ContinuousClock.now + .seconds(20)
            func exported() -> Bool {
                collector.received.contains { export in
                    export.contentType == "application/x-protobuf"
                        && export.body.indices.contains { start in
                            export.body[start...].starts(with: trace)
                        }
                }
            }
            while !exported(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            #expect(exported(), "exports: \(collector.received.map { "\($0.contentType ?? "-") \($0.body.count) bytes" })")
        }
        await collector.stop()
    }
}
