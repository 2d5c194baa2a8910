public import Foundation

/// Schedules, webhooks and event triggers: stored whole, updated under optimistic locking, and
/// for schedules claimed when due so that one process fires each occurrence.
public struct TriggerStore: StorePart {
    let database: any Database

    public func insert<Trigger: StoredTrigger>(_ trigger: Trigger) async throws {
        let columns = ["id", "version"] + Trigger.columns
        let placeholders = (1...columns.count).map { "$\($0)" }.joined(separator: ", ")
        let statement = SQLStatement(
            "INSERT INTO \(Trigger.table) (\(columns.joined(separator: ", "))) VALUES (\(placeholders))",
            [.text(trigger.id), .integer(trigger.version)] + trigger.columnValues)
        try await database.transaction { session in _ = try session.execute(statement) }
    }

    /// The trigger, or `nil` when it does not exist.
    public func find<Trigger: StoredTrigger>(_ type: Trigger.Type, id: String) async throws -> Trigger? {
        try await database.read("SELECT \(Self.columns(of: type)) FROM \(type.table) WHERE id = $1", .text(id)).first.map(Trigger.init)
    }

    /// The triggers that match `filter`, newest first.
    public func list<Trigger: StoredTrigger>(_ type: Trigger.Type, matching filter: TriggerFilter) async throws -> [Trigger] {
        var conditions = SQLConditions()
        if let pipelineID = filter.pipelineID { conditions.add("pipeline_id =", .id(pipelineID)) }
        if let enabled = filter.enabled { conditions.add("enabled =", .bool(enabled)) }
        if let status = filter.status { conditions.add("status =", .text(status.rawValue)) }
        if let eventType = filter.eventType { conditions.add("event_type =", .text(eventType)) }
        if let ownerID = filter.ownerID { conditions.add("user_id =", .text(ownerID)) }
        let statement = SQLStatement(
            "SELECT \(Self.columns(of: type)) FROM \(type.table) \(conditions.whereClause) ORDER BY created_at DESC, id", conditions.binds)
        return try await database.read(statement).map(Trigger.init)
    }

    /// Stores `trigger` as the next version when the stored one is still at `expectedVersion`.
    /// Returns the stored trigger; throws ``DatabaseError/conflict(_:)`` when someone changed it
    /// first and ``StoreError/notFound(_:)`` when it does not exist.
    public func update<Trigger: StoredTrigger>(_ trigger: Trigger, expectedVersion: Int) async throws -> Trigger {
        var updated = trigger
        updated.version = expectedVersion + 1
        let assignments = Self.assignments(of: Trigger.self)
        let versionParameter = Trigger.columns.count + 3
        let statement = SQLStatement(
            "UPDATE \(Trigger.table) SET \(assignments) WHERE id = $1 AND version = $\(versionParameter)",
            [.text(updated.id), .integer(updated.version)] + updated.columnValues + [.integer(expectedVersion)])
        let id = trigger.id
        try await database.transaction { session in
            guard try session.execute(statement) == 1 else {
                guard let current = try session.query("SELECT version FROM \(Trigger.table) WHERE id = $1", .text(id)).first else {
                    throw StoreError.notFound("\(Trigger.table) \(id)")
                }
                throw DatabaseError.conflict(
                    "\(Trigger.table) \(id) is at version \(try current.int("version")), not \(expectedVersion): it was updated concurrently"
                )
            }
        }
        return updated
    }

    /// Deletes a trigger; false when it did not exist.
    @discardableResult
    public func delete<Trigger: StoredTrigger>(_ type: Trigger.Type, id: String) async throws -> Bool {
        try await database.transaction { session in
            if type == WebhookRecord.self { _ = try session.execute("DELETE FROM webhook_delivery WHERE webhook_id = $1", .text(id)) }
            return try session.execute("DELETE FROM \(type.table) WHERE id = $1", .text(id)) == 1
        }
    }

    /// Counts one firing of a webhook or event trigger at `time`; false when it no longer exists.
    @discardableResult
    public func recordFiring<Trigger: StoredTrigger>(_ type: Trigger.Type, id: String, at time: Date) async throws -> Bool {
        try await database.transaction { session in
            try session.execute(
                """
                UPDATE \(type.table) SET trigger_count = trigger_count + 1, last_triggered_at = $2, updated_at = $2, version = version + 1
                WHERE id = $1
                """,
                .text(id), .date(time)) == 1
        }
    }

    // MARK: Webhook deliveries

    /// Remembers that webhook `webhookID` received delivery `deliveryID` at `time`, and forgets
    /// deliveries received before `forgetBefore`. Returns false, remembering nothing, when the
    /// delivery was received before (and not yet forgotten): a replay.
    public func rememberDelivery(webhookID: String, deliveryID: String, at time: Date, forgetBefore: Date) async throws -> Bool {
        try await database.transaction { session in
            _ = try session.execute(
                "DELETE FROM webhook_delivery WHERE webhook_id = $1 AND received_at < $2", .text(webhookID), .date(forgetBefore))
            let inserted = try session.execute(
                "INSERT INTO webhook_delivery (webhook_id, delivery_id, received_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                .text(webhookID), .text(deliveryID), .date(time))
            return inserted == 1
        }
    }

    /// Forgets a delivery remembered by ``rememberDelivery(webhookID:deliveryID:at:forgetBefore:)``
    /// whose handling failed, so that the sender may deliver it again.
    public func forgetDelivery(webhookID: String, deliveryID: String) async throws {
        try await database.transaction { session in
            _ = try session.execute(
                "DELETE FROM webhook_delivery WHERE webhook_id = $1 AND delivery_id = $2", .text(webhookID), .text(deliveryID))
        }
    }

    // MARK: Schedule claims

    /// Claims up to `limit` active, enabled schedules due at `now` that no live process holds, for
    /// `owner` until `claimUntil`; earliest first. The claim ends with ``releaseSchedule(_:owner:)``.
    public func claimDueSchedules(owner: String, now: Date, claimUntil: Date, limit: Int) async throws -> [ScheduleRecord] {
        let sql = """
            UPDATE schedule SET claimed_by = $1, claimed_until = $2
            WHERE id IN (
                SELECT id FROM schedule
                WHERE enabled AND status = 'active' AND next_run_at <= $3 AND (claimed_until IS NULL OR claimed_until < $3)
                ORDER BY next_run_at LIMIT $4 \(dialect.skipLocked))
            RETURNING \(Self.columns(of: ScheduleRecord.self))
            """
        let rows = try await database.transaction { session in
            try session.query(sql, .text(owner), .date(claimUntil), .date(now), .integer(max(1, limit)))
        }
        return try rows.map(ScheduleRecord.init).sorted { ($0.nextRunAt ?? now) < ($1.nextRunAt ?? now) }
    }

    /// Stores a fired schedule's new state (as the next version) and ends `owner`'s claim on it.
    /// Returns false, storing nothing but the end of the claim, when the schedule was changed or
    /// deleted while it was claimed: the change wins, and its next run is whatever the change set.
    public func releaseSchedule(_ schedule: ScheduleRecord, owner: String) async throws -> Bool {
        let assignments = Self.assignments(of: ScheduleRecord.self)
        let last = ScheduleRecord.columns.count + 2
        let update = SQLStatement(
            "UPDATE schedule SET \(assignments), claimed_by = NULL, claimed_until = NULL "
                + "WHERE id = $1 AND version = $\(last + 1) AND claimed_by = $\(last + 2)",
            [.text(schedule.id), .integer(schedule.version + 1)] + schedule.columnValues + [.integer(schedule.version), .text(owner)])
        let id = schedule.id
        return try await database.transaction { session in
            if try session.execute(update) == 1 { return true }
            _ = try session.execute(
                "UPDATE schedule SET claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND claimed_by = $2", .text(id), .text(owner))
            return false
        }
    }

    /// When the earliest active, enabled schedule is due.
    public func nextScheduleDue() async throws -> Date? {
        try await database.read("SELECT min(next_run_at) AS due FROM schedule WHERE enabled AND status = 'active'").first?
            .optionalDate("due")
    }

    /// `version = $2, pipeline_id = $3, …`: every stored column but `id` (which is `$1`).
    private static func assignments<Trigger: StoredTrigger>(of type: Trigger.Type) -> String {
        (["version"] + type.columns).enumerated().map { "\($1) = $\($0 + 2)" }.joined(separator: ", ")
    }

    private static func columns<Trigger: StoredTrigger>(of type: Trigger.Type) -> String {
        (["id", "version"] + type.columns).joined(separator: ", ")
    }
}
