import BudJSON
import Foundation
import Logging
import PipelineEngine
import Scheduling
public import ServiceLifecycle
import Storage
import Telemetry

/// Keeps this process in the group of processes that share its database (PostgreSQL; see
/// docs/operations.md, "Scaling out") for the life of the service group:
/// - sends what the runtime queues on its ``ClusterRelay`` (wake-ups, watches, live events),
///   several messages per statement;
/// - hands other processes' live events to this process's streams, and wakes this process's
///   timer, lease, schedule and publishing loops when another says work is waiting;
/// - when a member dies, hands its claimed work back to the group and wakes everyone, so that
///   its running steps, timers and events are taken over at once rather than when their claims
///   run out;
/// - on shutdown, after the runtime stopped (it is placed before the runtime's own service, so it
///   stops after it), wakes the others for the work this process released, and leaves.
///
/// A database without groups (SQLite) makes it wait for shutdown and do nothing. A database that
/// cannot be reached at start is tried again every few seconds.
public struct ClusterService: Service {
    let runtime: ExecutionRuntime

    public init(runtime: ExecutionRuntime) {
        self.runtime = runtime
    }

    /// The most messages one statement sends.
    static let messagesPerSend = 200

    /// The shortest time between two looks for work that wake-ups from other processes cause.
    static let wakeInterval: Duration = .milliseconds(50)

    public func run() async throws {
        guard runtime.configuration.clusterSignals, let link = await join() else {
            try? await gracefulShutdown()
            return
        }
        let relay = runtime.cluster
        relay.joined(true)
        relay.broadcast(.hello)
        relay.repeatWatches()
        runtime.logger.info("joined the processes sharing the database", metadata: ["worker_id": "\(runtime.configuration.workerID)"])
        await withDiscardingTaskGroup { group in
            group.addTask {
                // When a wake-up from another process last made this one look for work.
                var lastWake = ContinuousClock.now - .seconds(1)
                for await signal in link.signals { await handle(signal, lastWake: &lastWake) }
            }
            group.addTask { await sendUntilShutdown(link) }
            try? await gracefulShutdown()
            // The runtime has stopped: what it released is for the others now.
            relay.broadcast(.wake)
            await flush(link)
            relay.joined(false)
            await link.leave()
            group.cancelAll()
        }
    }

    /// Joins the group, trying again every 5 s while the database cannot be reached; `nil` when
    /// the database has no groups or the service group shuts down first.
    private func join() async -> (any ClusterLink)? {
        var link: (any ClusterLink)?
        await repeatUntilShutdown(waitingOn: Alarm()) {
            do {
                link = try await runtime.store.database.joinCluster(workerID: runtime.configuration.workerID)
                return nil
            } catch {
                runtime.logger.warning("could not join the processes sharing the database; trying again", metadata: ["error": "\(error)"])
                return Date().addingTimeInterval(5)
            }
        }
        return link
    }

    // MARK: Sending

    private func sendUntilShutdown(_ link: any ClusterLink) async {
        let relay = runtime.cluster
        var nextRepeat = ContinuousClock.now + ClusterRelay.watchRepeat
        await repeatUntilShutdown(waitingOn: relay.alarm) {
            if ContinuousClock.now >= nextRepeat {
                relay.repeatWatches()
                relay.expireWatches()
                nextRepeat = ContinuousClock.now + ClusterRelay.watchRepeat
            }
            for executionID in relay.takeOverflowed() {
                runtime.eventBus.publish(.resync(executionID))
            }
            await flush(link)
            return Date().addingTimeInterval(ClusterRelay.watchRepeat.seconds)
        }
    }

    /// Sends everything waiting, in order.
    private func flush(_ link: any ClusterLink) async {
        while true {
            let batch = runtime.cluster.takeOutgoing(limit: Self.messagesPerSend)
            guard !batch.isEmpty else { return }
            do {
                try await link.send(batch)
            } catch {
                // Lost messages are wake-ups (the polls still run) and live events (their streams
                // find the gap and read the execution again).
                runtime.logger.warning("could not tell the other processes", metadata: ["error": "\(error)", "messages": "\(batch.count)"])
                return
            }
        }
    }

    // MARK: Receiving

    private func handle(_ signal: ClusterSignal, lastWake: inout ContinuousClock.Instant) async {
        let relay = runtime.cluster
        switch signal {
        case .message(let text):
            guard let message = ClusterMessage(decoding: text) else { return }
            guard message.sender != relay.sender else {
                if case .watch(let ids) = message.body { relay.echoed(ids) }
                return
            }
            switch message.body {
            case .wake:
                // At most one look per ``wakeInterval``: a flood of wake-ups costs no more than the
                // polls would (one that is skipped is made up for by them).
                guard ContinuousClock.now - lastWake >= Self.wakeInterval else { return }
                lastWake = ContinuousClock.now
                runtime.lookForSharedWork()
            case .hello:
                relay.repeatWatches()
            case .watch(let ids):
                relay.received(watch: ids, from: message.sender, watching: true)
            case .unwatch(let ids):
                relay.received(watch: ids, from: message.sender, watching: false)
            case .live(let executionID, let version, let eventType, let payload):
                guard let payload else {
                    runtime.eventBus.publish(.resync(executionID))
                    return
                }
                runtime.eventBus.publish(
                    EventBus.Message(topic: nil, executionID: executionID, eventType: eventType, payload: payload, version: version))
            }
        case .memberGone(let workerID):
            relay.forget(workerID)
            await takeOver(from: workerID)
        case .reconnected:
            // Messages were missed meanwhile: look for work, tell the others what is streamed
            // here, and let the streams read their executions again.
            runtime.logger.notice("back in touch with the processes sharing the database")
            relay.broadcast(.hello)
            relay.repeatWatches()
            runtime.lookForSharedWork()
            for executionID in relay.watchedHere { runtime.eventBus.publish(.resync(executionID)) }
        }
    }

    /// Hands back the work of a process that died, and has every process look for it.
    private func takeOver(from workerID: String) async {
        do {
            let released = try await runtime.store.cluster.releaseClaims(of: workerID, now: Date())
            runtime.logger.notice(
                "a process sharing the database is gone; its work is taken over",
                metadata: [
                    "gone_worker_id": "\(workerID)", "steps": "\(released.steps)", "timers": "\(released.timers)",
                    "events": "\(released.events)", "schedules": "\(released.schedules)",
                ])
            if runtime.metrics.enabled, released.total > 0 { runtime.metrics.clusterTakeovers.increment() }
        } catch {
            runtime.logger.warning(
                "could not hand back the work of a process that is gone; its claims run out instead",
                metadata: ["gone_worker_id": "\(workerID)", "error": "\(error)"])
        }
        runtime.cluster.broadcast(.wake)
        runtime.lookForSharedWork()
    }
}
