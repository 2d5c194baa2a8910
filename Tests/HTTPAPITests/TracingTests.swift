import BudJSON
import DaprSidecar
import Foundation
import PipelineEngine
import PipelineRuntime
import Testing
import Tracing
import _BudPipelineTestSupport

/// Tracing end to end: one execution started over HTTP with a recording tracer, its spans, and
/// the trace context that reaches the test Dapr sidecar on publishes and service invocations.
@Suite("Tracing", .serialized)
struct TracingTests {
    static let user = "0a0b0c0d-7777-4777-8777-000000000007"
    static let dag: JSONValue = [
        "name": "traced",
        "steps": [
            ["id": "greet", "name": "Greet", "action": "log", "params": ["message": "hello"]],
            [
                "id": "tell", "name": "Tell", "action": "notification", "depends_on": ["greet"],
                "params": ["channel": "email", "message": "done"],
            ],
        ],
    ]

    /// Runs the DAG with `headers` on the start request; returns the execution id, the tracer
    /// and the sidecar once its results notification was published.
    static func run(headers: [String: String]) async throws -> (executionID: String, tracer: RecordingTracer, sidecar: DaprSidecar) {
        let sidecar = DaprSidecar()
        sidecar.handleInvocations(of: "budnotify") { _ in (200, ["acknowledged": true]) }
        try await sidecar.start()
        let tracer = RecordingTracer()
        var executionID = ""
        try await InProcessAPIServer.with(.sqlite, tracing: (tracer, try #require(sidecar.endpoint))) { server in
            let started = try await server.send(
                "POST", "/executions/run",
                json: ["pipeline_definition": dag, "user_id": .string(user), "callback_topics": ["budAppMessages"]], headers: headers)
            executionID = try #require(started.json["execution_id"]?.stringValue, "\(started.text)")
            let execution = try await server.finished(executionID)
            #expect(execution["status"] == "COMPLETED")
            #expect(execution["pipeline_definition"]?["trace_parent"] == nil, "the stored context is not shown")
            _ = try await PublishingTests.notifications(on: sidecar, topic: "budAppMessages", workflowID: executionID)
        }
        await sidecar.stop()
        return (executionID, tracer, sidecar)
    }

    @Test("one execution's spans: start, steps, plugin call, service call and publishes, in one trace joined to the request's")
    func executionTrace() async throws {
        let requestTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
        let requestSpan = "00f067aa0ba902b7"
        let (executionID, tracer, sidecar) = try await Self.run(headers: ["traceparent": "00-\(requestTrace)-\(requestSpan)-01"])
        let spans = tracer.spans
        #expect(spans.allSatisfy { $0.traceID == requestTrace }, "\(spans.map { "\($0.name) \($0.traceID)" })")

        let start = try #require(tracer.spans(named: "execution.start").first)
        #expect(start.parentSpanID == requestSpan)
        #expect(start.attribute("budpipeline.execution.id") == executionID)

        let steps = tracer.spans(named: "step")
        #expect(Set(steps.compactMap { $0.attribute("budpipeline.step.id") }) == ["greet", "tell"])
        for step in steps {
            #expect(step.parentSpanID == start.spanID)
            #expect(step.attribute("budpipeline.step.outcome") == "completed" && step.attribute("budpipeline.step.attempt") == "0")
            #expect(step.startNanoseconds <= step.endNanoseconds)
        }
        #expect(steps.first { $0.attribute("budpipeline.step.id") == "tell" }?.attribute("budpipeline.step.action") == "notification")

        let call = try #require(tracer.spans(named: "plugin.call").first)
        #expect(call.parentSpanID == start.spanID)
        #expect(
            call.attribute("budpipeline.plugin.action") == "notification" && call.attribute("budpipeline.plugin.outcome") == "completed")
        #expect(call.status == nil)

        // The service call: a client span under the plugin call, whose context the sidecar got.
        let invoke = try #require(spans.first { $0.kind == .client })
        #expect(invoke.name == "POST" && invoke.parentSpanID == call.spanID)
        #expect(invoke.attribute("http.response.status_code") == "200" && invoke.attribute("peer.service") == "budnotify")
        let invocation = try #require(sidecar.invocations.first { $0.app == "budnotify" })
        #expect(invocation.traceparent == "00-\(requestTrace)-\(invoke.spanID)-01")

        // Every publish: a producer span under the start, its context in the publish metadata.
        let publishes = spans.filter { $0.kind == .producer }
        let publications = sidecar.publications(to: "budAppMessages")
        #expect(!publishes.isEmpty && publishes.count == publications.count)
        for publish in publishes {
            #expect(publish.name == "publish budAppMessages" && publish.parentSpanID == start.spanID)
            #expect(publish.attribute("messaging.destination.name") == "budAppMessages")
        }
        let publishSpanIDs = Set(publishes.map(\.spanID))
        for publication in publications {
            let traceparent = try #require(publication.metadata["cloudevent.traceparent"])
            let parsed = try #require(TraceParent(traceparent))
            #expect(parsed.traceID == requestTrace && publishSpanIDs.contains(parsed.spanID))
        }
    }

    @Test(
        "without a usable traceparent the trace id is the execution id's hex digits",
        arguments: [
            [:], ["traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"],
            ["traceparent": "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"],
            ["traceparent": String(repeating: "0", count: 8000)],
        ])
    func derivedTrace(headers: [String: String]) async throws {
        let (executionID, tracer, sidecar) = try await Self.run(headers: headers)
        let traceID = executionID.replacingOccurrences(of: "-", with: "").lowercased()
        #expect(!tracer.spans.isEmpty && tracer.spans.allSatisfy { $0.traceID == traceID })
        #expect(sidecar.invocations.allSatisfy { $0.traceparent?.hasPrefix("00-\(traceID)-") == true })
        #expect(
            sidecar.publications(to: "budAppMessages").allSatisfy {
                $0.metadata["cloudevent.traceparent"]?.hasPrefix("00-\(traceID)-") == true
            })
    }
}

/// The W3C `traceparent` parser: what it accepts, and that hostile input is refused, never trapped on.
@Suite("Trace context")
struct TraceParentTests {
    @Test("a valid header is read; the sampled flag kept, other flags dropped")
    func valid() throws {
        let parent = try #require(TraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03"))
        #expect(parent.traceID == "4bf92f3577b34da6a3ce929d0e0e4736" && parent.spanID == "00f067aa0ba902b7" && parent.sampled)
        #expect(parent.header == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        // A later version may carry more fields after a dash.
        #expect(TraceParent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra")?.sampled == false)
    }

    @Test(
        "malformed, oversized or hostile headers are ignored",
        arguments: [
            "", "00", "garbage", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01", "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" + String(repeating: "-a", count: 10_000),
            "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
        ])
    func refused(header: String) {
        #expect(TraceParent(header) == nil)
    }

    @Test("an execution's derived context: trace id = its hex digits")
    func derived() throws {
        let parent = try #require(TraceParent.derived(from: "3f2b8c1e-5a4d-4e6f-9a7b-0c1d2e3f4a5b"))
        #expect(parent.header == "00-3f2b8c1e5a4d4e6f9a7b0c1d2e3f4a5b-9a7b0c1d2e3f4a5b-01")
        #expect(TraceParent.derived(from: "not-an-id") == nil)
        #expect(TraceParent.derived(from: "3F2B8C1E-5A4D-4E6F-9A7B-0C1D2E3F4A5B") == parent, "upper case reads as lower")
        #expect(TraceParent.derived(from: "3f2b8c1e-5a4d-4e6f-0000-000000000000") == nil, "an all-zero parent id is not valid")
        #expect(TraceParent.derived(from: "3f2b8c1e-5a4d-4e6f-9a7b-0c1d2e3f4a5b0") == nil)
        #expect(TraceParent.derived(from: "3f2b8c1e-5a4d-4e6f-9a7b-0c1d2e3f4a5g") == nil)
    }
}
