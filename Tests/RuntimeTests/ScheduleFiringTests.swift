import BudJSON
import Foundation
import PipelineEngine
import PipelineRuntime
import Storage
import Testing

@Suite("Schedule firing")
struct ScheduleFiringTests {
    private static let now = Date(timeIntervalSince1970: 1_795_000_000)

    private static func schedule(_ kind: ScheduleRecord.Kind, _ expression: String?, runCount: Int = 0, maxRuns: Int? = nil)
        -> ScheduleRecord
    {
        ScheduleRecord(
            id: "s1", pipelineID: "p1", name: "nightly", kind: kind, expression: expression, params: ["msg": "hi"],
            nextRunAt: now.addingTimeInterval(-1), runCount: runCount, maxRuns: maxRuns, createdAt: now, updatedAt: now)
    }

    @Test("a due schedule runs with its parameters and a _trigger describing the firing")
    func runParams() {
        let decision = ScheduleFiring.decide(Self.schedule(.cron, "@hourly"), now: Self.now)
        guard case .run(let params) = decision else {
            Issue.record("expected a run, got \(decision)")
            return
        }
        #expect(params["msg"] == "hi")
        #expect(params["_trigger"]?["type"] == "scheduled" && params["_trigger"]?["schedule_id"] == "s1")
        #expect(params["_trigger"]?["scheduled_at"]?.stringValue != nil && params["_trigger"]?["manual"] == nil)
        let manual = ScheduleFiring.params(for: Self.schedule(.manual, nil), now: Self.now, manual: true, overrides: ["msg": "x"])
        #expect(manual["msg"] == "x" && manual["_trigger"]?["manual"] == true)
    }

    @Test("expired and exhausted schedules retire without running")
    func retirement() {
        var expired = Self.schedule(.cron, "@hourly")
        expired.expiresAt = Self.now.addingTimeInterval(-60)
        #expect(ScheduleFiring.decide(expired, now: Self.now) == .retire(retired(expired, .expired)))
        let exhausted = Self.schedule(.cron, "@hourly", runCount: 3, maxRuns: 3)
        #expect(ScheduleFiring.decide(exhausted, now: Self.now) == .retire(retired(exhausted, .completed)))
    }

    private func retired(_ schedule: ScheduleRecord, _ status: ScheduleRecord.Status) -> ScheduleRecord {
        var retired = schedule
        retired.status = status
        retired.enabled = false
        retired.nextRunAt = nil
        retired.updatedAt = Self.now
        return retired
    }

    @Test("after a run: counters, the next run, and the end at max_runs or after a one-time run")
    func afterRun() {
        let cron = ScheduleFiring.afterRun(Self.schedule(.cron, "0 * * * *"), executionID: "e1", started: true, now: Self.now)
        #expect(cron.runCount == 1 && cron.lastExecutionID == "e1" && cron.lastExecutionStatus == "running" && cron.status == .active)
        #expect(cron.nextRunAt.map { $0 > Self.now && $0.timeIntervalSince(Self.now) <= 3600 } == true)
        let last = ScheduleFiring.afterRun(
            Self.schedule(.cron, "0 * * * *", runCount: 1, maxRuns: 2), executionID: "e2", started: true, now: Self.now)
        #expect(last.status == .completed && !last.enabled && last.nextRunAt == nil)
        var once = Self.schedule(.oneTime, nil)
        once.runAt = Self.now.addingTimeInterval(-1)
        let done = ScheduleFiring.afterRun(once, executionID: "e3", started: true, now: Self.now)
        #expect(done.status == .completed && done.nextRunAt == nil)
        let failed = ScheduleFiring.afterRun(Self.schedule(.cron, "0 * * * *"), executionID: nil, started: false, now: Self.now)
        #expect(failed.lastExecutionStatus == "failed" && failed.status == .active && failed.nextRunAt != nil)
    }

    @Test("intervals keep their phase and skip the occurrences missed while nothing ran")
    func intervalPhase() {
        var schedule = Self.schedule(.interval, "@every 10s")
        schedule.nextRunAt = Self.now.addingTimeInterval(-25)
        #expect(ScheduleFiring.nextRun(of: schedule, after: Self.now) == Self.now.addingTimeInterval(5))
    }
}
