import BudJSON
public import Foundation
import Logging
import PipelineEngine
public import ServiceLifecycle
import Storage
import Synchronization
import Telemetry
import Tracing

/// Drains the outbox: each event a transition wrote for publishing goes, as a notification, to the
/// execution's callback topics and — when it has subscribers — to the notification service's
/// topic, through Dapr or, without Dapr, the in-process bus. (Live streams do not wait for it:
/// the process that commits a transition hands its events to them.)
///
/// Nothing is lost across restarts: an event leaves the outbox only once every topic accepted it.
/// A failed event is tried again after a growing wait, and given up on (status `DEAD`) after the
/// configured number of attempts; until then the later events of its execution wait behind it, so
/// each execution's events arrive in order. Delivery is at least once: a retried event may reach a
/// topic that already accepted it, with the same CloudEvent id.
public struct PublisherService: Service {
    let runtime: ExecutionRuntime
    let transport: (any MessageTransport)?
    /// When the due order was last repaired.
    private let repairs = RepairSchedule()

    /// `transport` defaults to Dapr when an endpoint is configured.
    public init(runtime: ExecutionRuntime, transport: (any MessageTransport)? = nil) {
        self.runtime = runtime
        let publishing = runtime.configuration.publishing
        self.transport =
            transport
            ?? publishing.daprEndpoint.map {
                DaprTransport(endpoint: $0, apiToken: publishing.daprAPIToken, pubsubName: publishing.pubsubName, timeout: 5)
            }
    }

    public func run() async throws {
        await repeatUntilShutdown(waitingOn: runtime.publishAlarm) {
            let now = Date()
            let claimedAny = await publishDue(now: now)
            let poll = now.addingTimeInterval(runtime.configuration.publishing.pollInterval.seconds)
            if claimedAny { return now }
            guard let due = try? await runtime.store.outbox.nextDue(), due < poll else { return poll }
            if due > now { return due }
            // Something is due that the claim did not take: held by another process until its
            // claim runs out (the poll looks again), or not in the order the store keeps (rows an
            // older version wrote), which the repair puts right for the next round.
            // At most once a minute: the repair reads every pending event, and events held by
            // another process look the same from here.
            guard repairs.take(every: Self.repairInterval) else { return poll }
            do {
                let repaired = try await runtime.store.outbox.repairDueOrder()
                if repaired > 0 {
                    runtime.logger.notice("put pending events back in their due order", metadata: ["events": "\(repaired)"])
                    return now
                }
            } catch {
                runtime.logger.warning("could not check the outbox's due order", metadata: ["error": "\(error)"])
            }
            return poll
        }
    }

    /// How long claimed events stay reserved for this process: longer than publishing one
    /// execution's batch takes (a publish that hangs fails after 5 s and ends the batch), short
    /// enough that events a killed process held go out soon after.
    static let claimSeconds: TimeInterval = 15

    /// How many executions' events one claim takes.
    static let executionsPerClaim = 50

    /// How many events of one execution one claim takes at most (the rest go in the next).
    static let eventsPerExecution = 200

    /// How long before its claim runs out a batch stops publishing and hands the rest back, so
    /// that no other process takes events this one is still sending.
    /// One more second than a single publish may take (it times out after 5 s), since the
    /// deadline is checked before each publish.
    static let claimMargin: Duration = .seconds(6)

    /// How often, at most, a publisher that finds due events it cannot claim repairs the due order.
    static let repairInterval: Duration = .seconds(60)

    /// How long published events may wait to be removed: removals of executions that finish close
    /// together share one statement.
    static let removalDelay: Duration = .milliseconds(50)

    /// Publishes the events due at `now`, a claim of up to ``executionsPerClaim`` executions at a
    /// time; true when it claimed any (more may be due).
    ///
    /// A batch costs three round trips to the store when its executions publish quickly: the
    /// claim, the executions' notification options, and the removal of what was published. An
    /// execution's published events are removed as soon as it is done (grouped with others done
    /// within ``removalDelay``), so one slow execution does not keep the others' events claimed;
    /// and a batch stops ``claimMargin`` before its claim runs out, handing back what it did not
    /// send.
    @discardableResult
    public func publishDue(now: Date) async -> Bool {
        let owner = runtime.configuration.workerID
        let claimed: [OutboxRecord]
        let deadline = ContinuousClock.now + .seconds(Self.claimSeconds) - Self.claimMargin
        do {
            claimed = try await runtime.store.outbox.claim(
                owner: owner, now: now, claimUntil: now.addingTimeInterval(Self.claimSeconds),
                executions: Self.executionsPerClaim, eventsPerExecution: Self.eventsPerExecution)
        } catch {
            runtime.logger.warning("could not read the outbox", metadata: ["error": "\(error)"])
            return false
        }
        guard !claimed.isEmpty else { return false }
        var order: [String] = []
        var byExecution: [String: [OutboxRecord]] = [:]
        for record in claimed {
            let key = record.executionID?.rawValue ?? "event-\(record.id)"
            if byExecution[key] == nil { order.append(key) }
            byExecution[key, default: []].append(record)
        }
        // Without the audiences nothing is sent: the claim runs out and the events go out later.
        guard let audiences = await self.audiences(of: Array(Set(claimed.compactMap(\.executionID)))) else { return false }
        let traces = audiences.traces
        await withTaskGroup(of: [Int].self) { group in
            for key in order {
                let records = byExecution[key] ?? []
                let executionID = records.first?.executionID
                let audience = executionID.flatMap { audiences.audiences[$0] }
                // Executions that stored no trace context (or older ones) have the derived one.
                let trace = executionID.flatMap { traces[$0] ?? .derived(from: $0) }
                group.addTask { await publish(records, audience: audience, trace: trace, owner: owner, until: deadline) }
            }
            // Published ids wait at most ``removalDelay`` to be removed: the first of a group
            // starts a timer (a task that returns nothing), so a group is removed on time even
            // while the remaining executions are slow.
            var published: [Int] = []
            var oldest: ContinuousClock.Instant?
            while let ids = await group.next() {
                if !ids.isEmpty {
                    published += ids
                    if oldest == nil {
                        oldest = ContinuousClock.now
                        group.addTask {
                            try? await Task.sleep(for: Self.removalDelay)
                            return []
                        }
                    }
                }
                if let since = oldest, ContinuousClock.now - since >= Self.removalDelay {
                    await remove(published, owner: owner)
                    published = []
                    oldest = nil
                }
            }
            await remove(published, owner: owner)
        }
        return true
    }

    /// Removes published events from the outbox.
    private func remove(_ published: [Int], owner: String) async {
        guard !published.isEmpty else { return }
        if runtime.metrics.enabled { runtime.metrics.outboxPublished.increment(by: published.count) }
        do {
            try await runtime.store.outbox.delivered(ids: published, owner: owner)
        } catch {
            runtime.logger.warning("could not remove published events; they will be published again", metadata: ["error": "\(error)"])
        }
    }

    /// Publishes one execution's events in order, stopping at the first that fails or at
    /// `deadline` (handing the rest back); returns the ids of those published. Events of an
    /// execution that no longer exists go nowhere.
    private func publish(
        _ records: [OutboxRecord], audience: NotificationAudience?, trace: TraceParent?, owner: String,
        until deadline: ContinuousClock.Instant
    ) async -> [Int] {
        let publishing = runtime.configuration.publishing
        var delivered: [Int] = []
        for (index, record) in records.enumerated() {
            // What leaves the process shows no secrets; the stored event keeps its values.
            var shown = record.event
            shown.payload = runtime.configuration.secretKeys.masked(record.event.payload)
            do throws(PublishError) {
                guard
                    try await send(
                        shown, of: record, audience: audience, trace: trace, notifyTopic: publishing.notifyTopic, until: deadline)
                else {
                    // Out of time: the event (perhaps sent to some of its topics) and the rest
                    // go back, to be sent again — with the same message ids — by whoever claims them.
                    do {
                        try await runtime.store.outbox.release(ids: records[index...].map(\.id), owner: owner)
                    } catch {
                        runtime.logger.warning("could not hand back unpublished events", metadata: ["error": "\(error)"])
                    }
                    return delivered
                }
                delivered.append(record.id)
            } catch {
                let attempts = record.attempts + 1
                let dead = attempts >= publishing.maximumAttempts
                let retryAt = Date().addingTimeInterval(publishing.backoff(afterFailures: attempts).seconds)
                let metadata: Logger.Metadata = [
                    "execution_id": "\(record.executionID ?? "-")", "event": "\(record.event.eventType)", "attempts": "\(attempts)",
                    "error": "\(error)",
                ]
                if runtime.metrics.enabled {
                    runtime.metrics.outboxPublishFailures.increment()
                    if dead { runtime.metrics.outboxDeadLetters.increment() }
                }
                if dead {
                    runtime.logger.error("giving up on publishing an event; it stays in the outbox as DEAD", metadata: metadata)
                } else {
                    runtime.logger.warning("publishing failed; trying again later", metadata: metadata)
                }
                do {
                    try await runtime.store.outbox.failed(
                        record, owner: owner, error: error.description, retryAt: retryAt, dead: dead,
                        releasing: records[(index + 1)...].map(\.id))
                } catch {
                    runtime.logger.warning("could not record a publish failure", metadata: ["error": "\(error)"])
                }
                return delivered
            }
        }
        return delivered
    }

    /// Sends the notifications for `event` (the record's event as it may be shown) to its topics;
    /// false when `deadline` came before all were sent (none is started after it).
    private func send(
        _ event: OutboxEvent, of record: OutboxRecord, audience: NotificationAudience?, trace: TraceParent?, notifyTopic: String?,
        until deadline: ContinuousClock.Instant
    ) async throws(PublishError) -> Bool {
        guard let audience else { return true }
        let notifications = Notifications.make(for: event, audience: audience)
        for topic in audience.topics(notifyTopic: notifyTopic) {
            for (index, notification) in notifications.enumerated() {
                guard ContinuousClock.now < deadline else { return false }
                let body = Notifications.addressed(notification, to: topic)
                var message = OutgoingMessage(
                    topic: topic, body: body, eventType: event.eventType,
                    messageID: "\(record.executionID ?? "bp")-\(record.id)-\(index)", executionID: record.executionID)
                if let transport {
                    try await publish(message: &message, through: transport, trace: trace)
                } else {
                    runtime.eventBus.publish(
                        EventBus.Message(
                            topic: topic, executionID: record.executionID, eventType: event.eventType, payload: .object(body)))
                }
            }
        }
        return true
    }

    /// The topics and notification options of the executions that still exist, read in one round
    /// trip; `nil` when the store could not be read.
    /// Publishes one message in a producer span (a child of the execution's trace context), which
    /// the message carries as its trace context.
    private func publish(
        message: inout OutgoingMessage, through transport: any MessageTransport, trace: TraceParent?
    ) async throws(PublishError) {
        let tracing = runtime.tracing
        let span = tracing.startSpan("publish \(message.topic)", parent: trace, kind: .producer) { [message] attributes in
            attributes["messaging.system"] = "dapr"
            attributes["messaging.operation.type"] = "send"
            attributes["messaging.operation.name"] = "publish"
            attributes["messaging.destination.name"] = message.topic
            attributes["messaging.message.id"] = message.messageID
            attributes["cloudevents.event_type"] = message.eventType
            if let executionID = message.executionID { attributes["budpipeline.execution.id"] = executionID.rawValue }
        }
        message.traceContext = tracing.headers(of: span, else: trace)
        do {
            try await transport.publish(message)
            span?.end()
        } catch {
            span?.recordError(error)
            span?.end(failure: error.description)
            throw error
        }
    }

    /// The audiences of the executions among `executionIDs` that exist, and their stored trace
    /// contexts; `nil` when the store could not be read.
    private func audiences(
        of executionIDs: [ExecutionID]
    ) async -> (audiences: [ExecutionID: NotificationAudience], traces: [ExecutionID: TraceParent])? {
        do {
            let options = try await runtime.store.executions.notificationOptions(of: executionIDs)
            let audiences = options.mapValues { options in
                NotificationAudience(
                    executionID: options.executionID, callbackTopics: options.callbackTopics, subscriberIDs: options.subscriberIDs,
                    payloadType: options.payloadType, notificationWorkflowID: options.notificationWorkflowID)
            }
            return (audiences, options.compactMapValues { $0.traceParent.flatMap(TraceParent.init) })
        } catch {
            runtime.logger.warning("could not read the executions' topics", metadata: ["error": "\(error)"])
            return nil
        }
    }
}

/// When a repair last ran, so that it runs at most once an interval.
private final class RepairSchedule: Sendable {
    private let last = Mutex<ContinuousClock.Instant?>(nil)

    /// Whether a repair may run now (and, if so, records that it does).
    func take(every interval: Duration) -> Bool {
        last.withLock { last in
            let now = ContinuousClock.now
            if let previous = last, now - previous < interval { return false }
            last = now
            return true
        }
    }
}
