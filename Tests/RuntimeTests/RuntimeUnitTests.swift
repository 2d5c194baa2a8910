import BudJSON
import BudPipelineHost
import Foundation
import PipelineEngine
import PluginSchema
import Scheduling
import Storage
import Testing

@testable import PipelineRuntime

@Suite("Runtime configuration")
struct RuntimeConfigurationTests {
    static let locations: [(url: String, location: DatabaseLocation)] = [
        ("sqlite:///var/lib/bp/db.sqlite", .sqlite(path: "/var/lib/bp/db.sqlite")),
        ("sqlite://data/db.sqlite", .sqlite(path: "data/db.sqlite")),
        ("postgresql://u:p@db:5432/bp", .postgres(url: "postgresql://u:p@db:5432/bp")),
        ("postgres://u@db/bp?sslmode=disable", .postgres(url: "postgresql://u@db/bp?sslmode=disable")),
        ("postgresql+asyncpg://u@db/bp", .postgres(url: "postgresql://u@db/bp")),
    ]

    @Test(arguments: locations)
    func databaseURLs(_ example: (url: String, location: DatabaseLocation)) throws {
        #expect(try DatabaseLocation.parse(example.url) == example.location)
    }

    @Test(arguments: ["mysql://x/y", "no-scheme", "sqlite:relative", "sqlite://", "sqlite:///"])
    func unusableURLs(_ url: String) {
        #expect(throws: ConfigurationError.self) { try DatabaseLocation.parse(url) }
    }

    @Test func defaultsAndReferenceVariables() throws {
        #expect(try DatabaseLocation.from(environment: [:]) == .sqlite(path: "data/budpipeline.sqlite"))
        #expect(try DatabaseLocation.from(environment: ["BUDPIPELINE_DATA_DIR": "/srv/bp"]) == .sqlite(path: "/srv/bp/budpipeline.sqlite"))
        let fromParts = try DatabaseLocation.from(environment: [
            "PSQL_HOST": "db", "PSQL_PORT": "6543", "PSQL_USER": "bud", "PSQL_PASSWORD": "s3cret", "PSQL_DB_NAME": "pipes",
        ])
        #expect(fromParts == .postgres(url: "postgresql://bud:s3cret@db:6543/pipes"))
        #expect(fromParts.description == "postgresql://bud:***@db:6543/pipes")
        #expect(try DatabaseLocation.from(environment: ["DATABASE_URL": "sqlite:///x.db", "PSQL_HOST": "db"]) == .sqlite(path: "/x.db"))
    }

    @Test func environmentSettings() throws {
        let configuration = try RuntimeConfiguration.from(environment: [
            "BUDPIPELINE_LEASE_SECONDS": "9", "RETRY_MAX_ATTEMPTS": "5", "RETRY_BACKOFF_SECONDS": "1.5", "DEFAULT_ASYNC_STEP_TIMEOUT": "60",
            "PIPELINE_RETENTION_DAYS": "7", "PIPELINE_CLEANUP_SCHEDULE": "@hourly", "BUDPIPELINE_WORKER_ID": "node-a",
        ])
        #expect(configuration.leaseDuration == .seconds(9))
        #expect(configuration.engineOptions.defaultRetry.maxAttempts == 5)
        #expect(configuration.engineOptions.defaultRetry.backoffSeconds == 1.5)
        #expect(configuration.engineOptions.defaultAwaitTimeoutSeconds == 60)
        #expect(configuration.retentionDays == 7)
        #expect(configuration.retentionSchedule.source == "@hourly")
        #expect(configuration.workerID == "node-a")
    }

    static let badSettings: [(name: String, value: String, message: String)] = [
        ("BUDPIPELINE_LEASE_SECONDS", "0", "BUDPIPELINE_LEASE_SECONDS=0 is not a whole number in 1...3600"),
        ("RETRY_BACKOFF_MULTIPLIER", "0.5", "RETRY_BACKOFF_MULTIPLIER=0.5 is not a number in 1.0...100.0"),
        ("PIPELINE_RETENTION_DAYS", "forever", "PIPELINE_RETENTION_DAYS=forever is not a whole number in 0...36500"),
        ("PIPELINE_CLEANUP_SCHEDULE", "0 3 * *", "PIPELINE_CLEANUP_SCHEDULE '0 3 * *': Too few fields (expected 5)"),
        (
            "BUDPIPELINE_SECRET_KEYS", "ssn,,pin",
            "BUDPIPELINE_SECRET_KEYS: an entry is empty (write comma-separated keys, e.g. ssn,pin_code)"
        ),
        (
            "BUDPIPELINE_SECRET_KEYS", "ssn;pin",
            "BUDPIPELINE_SECRET_KEYS: 'ssn;pin' may hold letters, digits, '_', '-' and '.' only (write comma-separated keys, e.g. ssn,pin_code)"
        ),
    ]

    @Test("PSQL_* settings form an encoded URL; a port that is not 1…65535 is one line, never a trap")
    func postgresSettings() throws {
        for port in ["-5", "0", "65536", "abc", "99999999999999999999"] {
            #expect(throws: ConfigurationError.self) {
                try DatabaseLocation.from(environment: ["PSQL_HOST": "db", "PSQL_PORT": port])
            }
        }
        let location = try DatabaseLocation.from(environment: [
            "PSQL_HOST": "db", "PSQL_PORT": "5433", "PSQL_USER": "u@x", "PSQL_PASSWORD": "p:w/d@e", "PSQL_DB_NAME": "pipes",
        ])
        #expect(location == .postgres(url: "postgresql://u%40x:p%3Aw%2Fd%40e@db:5433/pipes"))
        #expect(location.description == "postgresql://u%40x:***@db:5433/pipes")
        #expect(try DatabaseLocation.from(environment: ["PSQL_HOST": "::1"]) == .postgres(url: "postgresql://[::1]:5432/budpipeline"))
    }

    @Test func secretKeysSetting() throws {
        #expect(try RuntimeConfiguration.from(environment: [:]).secretKeys == .builtIn)
        let keys = try RuntimeConfiguration.from(environment: ["BUDPIPELINE_SECRET_KEYS": "ssn, pin_code"]).secretKeys
        #expect(keys.isSecret("customer_ssn") && keys.isSecret("pinCode") && keys.isSecret("db_password"))
        #expect(!keys.isSecret("max_tokens"))
    }

    @Test func secretsNeverShowInConfigurationDescriptions() throws {
        let publishing = try PublishingConfiguration.from(environment: [
            "DAPR_HTTP_ENDPOINT": "http://127.0.0.1:3500", "DAPR_API_TOKEN": "tok-4471",
        ])
        #expect(publishing.daprAPIToken?.revealed == "tok-4471")
        #expect(!"\(publishing)".contains("tok-4471"))
        let transport = DaprTransport(endpoint: "http://127.0.0.1:3500", apiToken: publishing.daprAPIToken, pubsubName: "pubsub")
        let invoker = DaprServiceInvoker(endpoint: "http://127.0.0.1:3500", apiToken: publishing.daprAPIToken)
        #expect(!"\(transport)".contains("tok-4471") && !String(reflecting: invoker.apiToken).contains("tok-4471"))
    }

    @Test(
        arguments: [
            ("postgresql://bud:s3cret@db:5432/pipes", "postgresql://bud:***@db:5432/pipes"),
            ("postgresql://bud@db/pipes?password=s3cret&sslmode=require", "postgresql://bud@db/pipes?password=***&sslmode=require"),
            ("postgresql://db/pipes?sslpassword=s3cret", "postgresql://db/pipes?sslpassword=***"),
            ("postgresql://bud:s3c ret^{}@db/pipes", "postgresql://bud:***@db/pipes"),
            ("postgresql://bud:a@b@db/pipes", "postgresql://bud:***@db/pipes"),
            // Found by a hostile review: unencoded '/', '?', '#' and a host-like tail in a password.
            ("postgresql://budpipeline:Ab:Cd/Ef?Gh#Ij@127.0.0.1:1/x", "postgresql://budpipeline:***@127.0.0.1:1/x"),
            ("postgresql://budpipeline:Mx@host.evil:99/Kq@127.0.0.1:1/x", "postgresql://budpipeline:***@127.0.0.1:1/x"),
            ("postgresql://db/x?user=u&password='a b&c'&sslmode=require", "postgresql://db/x?user=u&password='***'&sslmode=require"),
            ("postgresql://db/pipes", "postgresql://db/pipes"),
            // Found by a hostile review: libpq allows blanks around '=' in a keyword string.
            ("postgresql://u@db/x?password = s3cretpw", "postgresql://u@db/x?password = ***"),
            ("postgresql://u@db/x?sslpassword\t=\t s3cretpw&sslmode=require", "postgresql://u@db/x?sslpassword\t=\t ***&sslmode=require"),
        ])
    func databaseURLsAreShownWithoutPasswords(url: String, shown: String) throws {
        let location = try DatabaseLocation.parse(url)
        #expect(location.description == shown)
        #expect(!location.description.contains("s3c") && !location.description.contains("a@b"))
    }

    @Test(arguments: badSettings)
    func badSettingsAreOneLine(_ example: (name: String, value: String, message: String)) {
        #expect(throws: ConfigurationError(example.message)) { try RuntimeConfiguration.from(environment: [example.name: example.value]) }
    }
}

@Suite("Transition plans")
struct TransitionPlanTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let settings = PlanSettings(workerID: "worker-1", leaseSeconds: 30, timerClaimGrace: 2)

    static func live(_ json: String, params: JSONObject = [:], ownerID: String? = "0d1c2b3a-4f5e-4a6b-8c7d-9e8f7a6b5c4d") throws
        -> LiveExecution
    {
        let catalog = StaticActionCatalog(
            BuiltInActions.all + [ActionMetadata(type: "work", name: "Work", category: "Test", description: "A plugin action.")])
        let (report, compiled) = PipelineCompiler.compile(try JSONValue(parsing: json), catalog: catalog)
        let pipeline = try #require(compiled, "\(report.errors)")
        let machine = ExecutionStateMachine(pipeline: pipeline, executionID: "exec-1", params: params)
        let rows = Dictionary(uniqueKeysWithValues: machine.steps.map { ($0.stepID, "row-\($0.stepID)") })
        return LiveExecution(
            machine: machine, version: 1, eventSequence: 0, pipelineID: "pipe-1", ownerID: ownerID, stepRowIDs: rows, publishes: true,
            traceParent: nil)
    }

    static let start = TimerRecord(executionID: "exec-1", key: RuntimeTimerKey.start, dueAt: now)

    @Test func startingLeasesTheDispatchedStepAndConsumesTheStartTimer() throws {
        var live = try Self.live(
            #"{"name": "p", "steps": [{"id": "a", "name": "A", "action": "work", "params": {"x": 1}, "timeout_seconds": 60}]}"#)
        let plan = live.plan([.timer(Self.start)], now: Self.now, settings: Self.settings)
        #expect(plan.transition.expectedVersion == 1)
        #expect(plan.transition.consumedTimers == [Self.start])
        #expect(plan.transition.execution.status == .running)
        let write = try #require(plan.transition.steps.first)
        #expect(write.state.status == .running)
        #expect(write.lease?.owner == "worker-1")
        #expect(write.lease?.expiresAt == Self.now.addingTimeInterval(30))
        let request = try ExecuteRequest(json: try #require(write.lease?.dispatch))
        #expect(request.idempotencyKey == "exec-1/a/0")
        #expect(request.stepExecutionID == "row-a")
        #expect(request.params == ["x": 1])
        // The plugin acts for the execution's owner, named by the host.
        #expect(request.userID == "0d1c2b3a-4f5e-4a6b-8c7d-9e8f7a6b5c4d")
        #expect(plan.calls.map(\.request) == [request])
        #expect(
            plan.transition.timers == [
                .set(
                    key: "step_deadline:a:0", dueAt: Self.now.addingTimeInterval(60), claimedBy: "worker-1",
                    claimedUntil: Self.now.addingTimeInterval(62))
            ])
        #expect(plan.transition.outbox.map(\.eventType) == ["step_started"], "the start notifies no topic")
        #expect(plan.liveEvents.map(\.eventType) == ["execution_started", "step_started"])
        #expect(plan.transition.outbox.first?.payload["pipeline_id"] == "pipe-1")
        #expect(plan.finished == nil)
    }

    @Test func aStepCancelledInTheSameBatchIsNeitherCalledNorCleanedUp() throws {
        var live = try Self.live(#"{"name": "p", "steps": [{"id": "a", "name": "A", "action": "work"}]}"#)
        let plan = live.plan([.timer(Self.start), .engine(.cancel(reason: "stop"))], now: Self.now, settings: Self.settings)
        #expect(plan.calls.isEmpty)
        #expect(plan.abandonments.isEmpty)
        #expect(plan.transition.steps.map(\.state.status) == [.cancelled])
        #expect(plan.transition.steps.first?.lease == nil)
        #expect(plan.finished == .cancelled)
        #expect(plan.transition.progressEvents.last?.kind == .workflowCompleted)
    }

    @Test func progressEventsAreNumberedFromTheStoredSequence() throws {
        var live = try Self.live(#"{"name": "p", "steps": [{"id": "a", "name": "A", "action": "log", "params": {"message": "hi"}}]}"#)
        live.eventSequence = 7
        let plan = live.plan([.timer(Self.start)], now: Self.now, settings: Self.settings)
        #expect(plan.logLines == [EngineLogLine(stepID: "a", level: "info", message: "hi")])
        #expect(plan.transition.progressEvents.map(\.sequenceNumber) == Array(8...(7 + plan.transition.progressEvents.count)))
        #expect(plan.transition.eventSequence == 7 + plan.transition.progressEvents.count)
        #expect(plan.finished == .completed)
        live.committed(plan)
        #expect(live.version == 2)
        #expect(live.eventSequence == plan.transition.eventSequence)
    }

    @Test func anUnknownTimerIsDeletedAndNoted() throws {
        var live = try Self.live(#"{"name": "p", "steps": [{"id": "a", "name": "A", "action": "work"}]}"#)
        let stray = TimerRecord(executionID: "exec-1", key: "mystery", dueAt: Self.now)
        let plan = live.plan([.timer(stray)], now: Self.now, settings: Self.settings)
        #expect(plan.transition.consumedTimers == [stray])
        #expect(plan.notes.contains { $0.contains("mystery") })
        #expect(plan.calls.isEmpty)
    }
}

@Suite("Local timer queue")
struct LocalTimerQueueTests {
    let base = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func timersComeDueInOrderAndCancelledOnesNever() {
        let queue = LocalTimerQueue()
        let first = TimerRecord(executionID: "e", key: "one", dueAt: base.addingTimeInterval(1))
        let moved = TimerRecord(executionID: "e", key: "two", dueAt: base.addingTimeInterval(2))
        let cancelled = TimerRecord(executionID: "e", key: "three", dueAt: base.addingTimeInterval(3))
        queue.apply([.set(cancelled), .set(moved), .set(first)], executionID: "e")
        queue.apply(
            [.cancel(key: "three"), .set(TimerRecord(executionID: "e", key: "two", dueAt: base.addingTimeInterval(5)))], executionID: "e")
        #expect(queue.nextDue() == base.addingTimeInterval(1))
        #expect(queue.takeDue(now: base.addingTimeInterval(4)) == [first])
        #expect(queue.nextDue() == base.addingTimeInterval(5))
        #expect(queue.takeDue(now: base.addingTimeInterval(5)).map(\.key) == ["two"])
        #expect(queue.nextDue() == nil)
        #expect(queue.count == 0)
    }

    @Test func anEarlierTimerWakesTheSleeper() async {
        let queue = LocalTimerQueue()
        let started = ContinuousClock.now
        // A sleep of a minute that ends well before: on a loaded machine the test's own tasks can
        // wait seconds for a thread, so the bound is wide; without the wake it would be 60 s.
        async let slept: Void = queue.sleep(until: Date().addingTimeInterval(60))
        while queue.alarm.sleepingUntil == nil { await Task.yield() }
        queue.apply([.set(TimerRecord(executionID: "e", key: "soon", dueAt: Date()))], executionID: "e")
        await slept
        #expect(ContinuousClock.now - started < .seconds(30))
    }

    @Test func aCancelledSleepEndsAtOnce() async {
        let queue = LocalTimerQueue()
        let alarm = Alarm()
        let started = ContinuousClock.now
        let sleeper = Task {
            await queue.sleep(until: Date().addingTimeInterval(60))
            await alarm.sleep(for: .seconds(60))
        }
        while queue.alarm.sleepingUntil == nil { await Task.yield() }
        sleeper.cancel()
        await sleeper.value
        #expect(ContinuousClock.now - started < .seconds(20))
    }

    @Test func aWakeBeforeTheSleepIsNotLost() async {
        let queue = LocalTimerQueue()
        queue.wake()
        let started = ContinuousClock.now
        await queue.sleep(until: Date().addingTimeInterval(30))
        #expect(ContinuousClock.now - started < .seconds(10))
    }
}

@Suite("Event bus")
struct EventBusTests {
    @Test("a message reaches its execution's subscribers and those of every execution, no one else")
    func messagesReachTheirSubscribers() async {
        let bus = EventBus()
        let first = ExecutionID.generate()
        let second = ExecutionID.generate()
        let followingFirst = bus.subscribe(executionID: first)
        let followingSecond = bus.subscribe(executionID: second)
        let followingAll = bus.subscribe(executionID: nil)
        #expect(bus.subscriberCount == 3)
        bus.publish(EventBus.Message(topic: nil, executionID: first, eventType: "one", payload: [:]))
        bus.publish(EventBus.Message(topic: nil, executionID: second, eventType: "two", payload: [:]))
        bus.unsubscribe(followingFirst.id)
        bus.unsubscribe(followingSecond.id)
        bus.unsubscribe(followingAll.id)
        #expect(bus.subscriberCount == 0)
        #expect(await followingFirst.messages.reduce(into: []) { $0.append($1.eventType) } == ["one"])
        #expect(await followingSecond.messages.reduce(into: []) { $0.append($1.eventType) } == ["two"])
        #expect(await followingAll.messages.reduce(into: []) { $0.append($1.eventType) } == ["one", "two"])
        // Unsubscribing twice, or an id never given, changes nothing.
        bus.unsubscribe(followingFirst.id)
        bus.unsubscribe(12_345)
        #expect(bus.subscriberCount == 0)
    }
}
