public import BudJSON
public import Foundation
public import PipelineEngine
import Scheduling
public import Storage

/// What happens when a schedule comes due, as values (no I/O): whether it runs, with which
/// parameters, and its state afterwards.
public enum ScheduleFiring {
    /// The decision for a due schedule.
    public enum Decision: Equatable, Sendable {
        /// Start the pipeline with these parameters, then store ``ScheduleFiring/afterRun(_:executionID:started:now:)``.
        case run(params: JSONObject)
        /// Do not run; store this state (expired or completed, disabled).
        case retire(ScheduleRecord)
    }

    /// Decides what a schedule due at `now` does.
    public static func decide(_ schedule: ScheduleRecord, now: Date) -> Decision {
        var retired = schedule
        retired.enabled = false
        retired.nextRunAt = nil
        retired.updatedAt = now
        if let expiresAt = schedule.expiresAt, now > expiresAt {
            retired.status = .expired
            return .retire(retired)
        }
        if let maxRuns = schedule.maxRuns, schedule.runCount >= maxRuns {
            retired.status = .completed
            return .retire(retired)
        }
        return .run(params: params(for: schedule, now: now, manual: false))
    }

    /// The run's parameters: the schedule's, then overrides, then `_trigger` describing the firing.
    public static func params(for schedule: ScheduleRecord, now: Date, manual: Bool, overrides: JSONObject = [:]) -> JSONObject {
        var params = schedule.params
        for (key, value) in overrides { params[key] = value }
        var trigger: JSONObject = [
            "type": "scheduled", "schedule_id": .string(schedule.id), "schedule_name": .string(schedule.name),
            "triggered_at": .string(SQLTimestamp.format(now)),
        ]
        if manual {
            trigger["manual"] = true
        } else {
            trigger["scheduled_at"] = schedule.nextRunAt.map { .string(SQLTimestamp.format($0)) } ?? .null
        }
        params["_trigger"] = .object(trigger)
        return params
    }

    /// The schedule after a run at `now`: counters, the last run, and the next run. Missed
    /// occurrences (the process was down) are not made up: the next run is the first one after
    /// `now`. A schedule that reached `max_runs`, has no next run, or whose next run falls after
    /// `expires_at` is over. `started` is false when the pipeline could not be started.
    public static func afterRun(_ schedule: ScheduleRecord, executionID: ExecutionID?, started: Bool, now: Date) -> ScheduleRecord {
        var updated = schedule
        updated.runCount += 1
        updated.lastRunAt = now
        updated.lastExecutionID = executionID?.rawValue
        updated.lastExecutionStatus = started ? "running" : "failed"
        updated.updatedAt = now
        updated.nextRunAt = nextRun(of: schedule, after: now)
        if let maxRuns = updated.maxRuns, updated.runCount >= maxRuns {
            updated.status = .completed
        } else if updated.nextRunAt == nil {
            updated.status = .completed
        } else if let expiresAt = updated.expiresAt, let next = updated.nextRunAt, next > expiresAt {
            updated.status = .expired
        }
        if updated.status != .active {
            updated.enabled = false
            updated.nextRunAt = nil
        }
        return updated
    }

    /// The first run after `date`; intervals keep their phase (counted from the last planned run).
    public static func nextRun(of schedule: ScheduleRecord, after date: Date) -> Date? {
        guard
            let timing = try? ScheduleTiming(
                kind: schedule.kind.rawValue, expression: schedule.expression, timezone: schedule.timezone, runAt: schedule.runAt)
        else { return nil }
        if case .interval(let seconds) = timing, let planned = schedule.nextRunAt, planned <= date {
            let missed = ((date.timeIntervalSince(planned)) / Double(seconds)).rounded(.down) + 1
            return planned.addingTimeInterval(missed * Double(seconds))
        }
        return timing.next(after: date)
    }
}
