import BudJSON
import Foundation
import InboundEvents
import PipelineEngine
import Scheduling

/// What each fuzz target does with one input: everything a hostile input can reach in that
/// parser or evaluator, with the properties that must hold checked by trapping (a failed check
/// is a crash, which is what the fuzzer reports). The same functions run the committed corpus in
/// the ordinary test suite. See docs/operations.md, "Fuzzing".
public enum FuzzHarness {
    /// The fuzz targets by name.
    public static let targets: [String: @Sendable ([UInt8]) -> Void] = [
        "templates": templates, "dag": dag, "cron": cron, "json": json, "events": events,
    ]

    /// The variables templates are evaluated with.
    static let scope = TemplateScope(
        [
            "params": [
                "name": "Ada", "count": 3, "ratio": 0.5, "flag": true, "none": nil, "big": .int(Int.max), "small": .int(Int.min),
                "items": [["id": "a", "value": 10], ["id": "b", "value": 20]], "tags": ["x", "y", "z"], "text": "Hello, World",
                "nested": ["deep": ["deeper": [1, 2, [3, [4]]]]],
            ],
            "steps": ["fetch": ["outputs": ["url": "https://x", "status": 200], "status": "COMPLETED"]],
        ],
        // Small limits keep each input fast; the limits themselves are what is being tested.
        limits: TemplateLimits(maximumValueBytes: 64 << 10, maximumOperations: 200_000))

    /// Template text: parsed, then evaluated as a value and as a condition.
    @Sendable public static func templates(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        if let template = try? Template(parsing: text) {
            if let value = try? template.evaluate(in: scope) {
                guard case .fits(let size) = value.measure(limit: .max), size <= (64 << 10) + 64 else {
                    fatalError("a template produced a value over the limit")
                }
            }
        }
        if let condition = try? Condition(text) { _ = try? condition.evaluate(in: scope) }
    }

    /// A pipeline document (JSON or YAML, as the format detection picks, and as YAML): read and
    /// compiled against the built-in actions.
    @Sendable public static func dag(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let catalog = StaticActionCatalog(BuiltInActions.all)
        for format in [nil, PipelineDocument.Format.yaml] {
            guard let document = try? PipelineDocument.read(text, format: format) else { continue }
            let (report, pipeline) = PipelineCompiler.compile(document, catalog: catalog)
            if pipeline != nil, !report.valid { fatalError("a compiled pipeline with errors") }
            if let pipeline {
                var machine = ExecutionStateMachine(pipeline: pipeline, executionID: "fuzz", params: [:])
                _ = machine.handle(.start, at: Date(timeIntervalSince1970: 1_800_000_000))
            }
        }
    }

    /// A cron expression and an interval, and the next times they give.
    @Sendable public static func cron(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        if let expression = try? CronExpression(text) {
            for zone in [TimeZone.gmt, TimeZone(identifier: "America/New_York") ?? .gmt] {
                let times = expression.nextTimes(after: start, count: 3, in: zone)
                for (earlier, later) in zip([start] + times, times) where later <= earlier {
                    fatalError("cron times do not increase: \(text)")
                }
            }
        }
        if let timing = try? ScheduleTiming(kind: "interval", expression: text, timezone: "UTC", runAt: nil) {
            _ = timing.nextRuns(after: start, count: 3)
        }
    }

    /// JSON text: what parses writes back to text that parses to the same value, of the length
    /// `measure` says.
    @Sendable public static func json(_ bytes: [UInt8]) {
        guard let value = try? JSONValue(parsing: bytes) else { return }
        let written = value.serialized()
        guard let again = try? JSONValue(parsing: written) else { fatalError("written JSON does not parse") }
        if !value.containsNonFinite && again != value { fatalError("JSON does not round-trip") }
        guard value.measure(limit: .max) == .fits(bytes: written.count) else { fatalError("measure disagrees with the writer") }
    }

    /// A delivery to `POST /workflow-events`.
    @Sendable public static func events(_ bytes: [UInt8]) {
        guard let delivery = try? JSONValue(parsing: bytes), let event = try? InboundEvent(delivery: delivery) else { return }
        _ = event.value(atDottedPath: "payload.content.status")
        _ = event.workflowID
    }
}

extension JSONValue {
    /// Whether a double inside is NaN or infinite (written as `null`).
    fileprivate var containsNonFinite: Bool {
        switch self {
        case .double(let number): !number.isFinite
        case .array(let elements): elements.contains { $0.containsNonFinite }
        case .object(let members): members.contains { $0.value.containsNonFinite }
        default: false
        }
    }
}
