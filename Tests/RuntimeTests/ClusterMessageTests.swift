import BudJSON
import Foundation
import PipelineEngine
import Scheduling
import Storage
import Testing

@testable import PipelineRuntime

/// What processes tell each other, and what one keeps of it, without a database.
@Suite("Cluster messages")
struct ClusterMessageTests {
    static let execution = ExecutionID("0b1c3a2e-5a63-4a3f-9f1e-3b2f6d1c0a11")

    @Test("every message reads back as it was sent")
    func roundTrip() {
        let bodies: [ClusterMessage.Body] = [
            .wake, .hello, .watch([Self.execution, ExecutionID("7d0f6a43-1c2b-4e5f-8a9b-0c1d2e3f4a5b")]), .unwatch([Self.execution]),
            .live(executionID: Self.execution, version: 7, eventType: "step_completed", payload: ["step_id": "a", "outputs": ["n": 1]]),
            .live(executionID: Self.execution, version: nil, eventType: "workflow_progress", payload: .null),
        ]
        for body in bodies {
            let message = ClusterMessage(sender: "worker-a", body: body)
            #expect(ClusterMessage(decoding: message.encoded()) == message)
        }
    }

    @Test("an event too large for the channel goes without its payload, for its streams to read the execution again")
    func oversizedEvent() throws {
        let big = JSONValue.string(String(repeating: "é", count: maximumClusterPayloadBytes))
        let message = ClusterMessage(
            sender: "worker-a", body: .live(executionID: Self.execution, version: 3, eventType: "step_completed", payload: ["out": big]))
        let text = message.encoded()
        #expect(text.utf8.count <= maximumClusterPayloadBytes)
        let read = try #require(ClusterMessage(decoding: text))
        #expect(read.body == .live(executionID: Self.execution, version: 3, eventType: "step_completed", payload: nil))
    }

    @Test(
        "anything else on the channel is ignored, never trusted",
        arguments: [
            "", "~join", "not json", "[]", "{}", "{\"w\":\"a\"}", "{\"k\":\"wake\"}", "{\"w\":1,\"k\":\"wake\"}",
            "{\"w\":\"a\",\"k\":\"reboot\"}",
            "{\"w\":\"a\",\"k\":\"watch\"}", "{\"w\":\"a\",\"k\":\"watch\",\"x\":\"id\"}", "{\"w\":\"a\",\"k\":\"live\",\"x\":\"id\"}",
            "{\"w\":\"a\",\"k\":\"live\",\"t\":\"step_completed\"}", String(repeating: "[", count: 10_000),
            // Not an execution id; an event type that would forge lines of a stream; the streams' own marker.
            "{\"w\":\"a\",\"k\":\"live\",\"x\":\"../etc\",\"t\":\"step_started\"}",
            "{\"w\":\"a\",\"k\":\"live\",\"x\":\"0b1c3a2e-5a63-4a3f-9f1e-3b2f6d1c0a11\",\"t\":\"a\\ndata: {}\\n\\nevent: workflow_completed\"}",
            "{\"w\":\"a\",\"k\":\"live\",\"x\":\"0b1c3a2e-5a63-4a3f-9f1e-3b2f6d1c0a11\",\"t\":\"budpipeline.resync\"}",
            "{\"w\":\"a\",\"k\":\"live\",\"x\":\"0b1c3a2e-5a63-4a3f-9f1e-3b2f6d1c0a11\",\"t\":\"\"}",
            "{\"w\":\"" + String(repeating: "w", count: 301) + "\",\"k\":\"wake\"}",
            "{\"w\":\"a\",\"k\":\"wake\",\"pad\":\"" + String(repeating: "x", count: maximumClusterPayloadBytes) + "\"}",
        ])
    func hostileText(_ text: String) {
        #expect(ClusterMessage(decoding: text) == nil)
    }

    @Test("a live event's version is read only when it is an integer; its execution id is read as stored")
    func versionKinds() {
        let text = #"{"w":"a","k":"live","x":"0B1C3A2E-5A63-4A3F-9F1E-3B2F6D1C0A11","t":"step_started","v":"7","p":{}}"#
        #expect(
            ClusterMessage(decoding: text)?.body
                == .live(executionID: Self.execution, version: nil, eventType: "step_started", payload: [:]))
    }

    @Test("each member watches the next by id, the last the first; a lone member watches nobody")
    func ring() {
        let members = [5, 1, 9].map { ClusterMember(id: Int64($0), workerID: "w\($0)") }
        #expect(ClusterRing.watched(by: 1, among: members)?.id == 5)
        #expect(ClusterRing.watched(by: 5, among: members)?.id == 9)
        #expect(ClusterRing.watched(by: 9, among: members)?.id == 1)
        // A member whose own row is not (yet) listed still watches someone.
        #expect(ClusterRing.watched(by: 7, among: members)?.id == 9)
        #expect(ClusterRing.watched(by: 1, among: [ClusterMember(id: 1, workerID: "w1")]) == nil)
        #expect(ClusterRing.watched(by: 1, among: []) == nil)
    }

    @Test("events are forwarded only while another process watches, and only once the process is in a group")
    func relayForwardsToWatchers() throws {
        let relay = ClusterRelay(workerID: "here")
        let there = "there 42"
        relay.received(watch: [Self.execution], from: there, watching: true)
        #expect(!relay.isWatchedElsewhere(Self.execution), "not in a group: nothing goes anywhere")
        relay.joined(true)
        relay.received(watch: [Self.execution], from: there, watching: true)
        #expect(relay.isWatchedElsewhere(Self.execution))
        relay.forward([("step_started", ["step_id": "a"])], of: Self.execution, version: 4)
        let sent = relay.takeOutgoing(limit: 10).compactMap(ClusterMessage.init(decoding:))
        #expect(sent.map(\.body) == [.live(executionID: Self.execution, version: 4, eventType: "step_started", payload: ["step_id": "a"])])
        #expect(sent.allSatisfy { ClusterRelay.sender($0.sender, isRunOf: "here") && $0.sender == relay.sender })
        #expect(!ClusterRelay.sender(relay.sender, isRunOf: "her"), "a run of one worker id is not one of its prefix")

        relay.received(watch: [Self.execution], from: there, watching: false)
        #expect(!relay.isWatchedElsewhere(Self.execution))
        relay.received(watch: [Self.execution], from: there, watching: true)
        relay.forget("the")
        #expect(relay.isWatchedElsewhere(Self.execution), "another worker id is not forgotten with it")
        relay.forget("there")
        #expect(!relay.isWatchedElsewhere(Self.execution), "a process that left or died watches nothing")
        relay.received(watch: [Self.execution], from: there, watching: true)
        relay.expireWatches(now: .now + ClusterRelay.watchLifetime + .seconds(1))
        #expect(!relay.isWatchedElsewhere(Self.execution), "a watch not repeated runs out")
    }

    @Test("this process's streams are announced once per execution, repeated in bounded messages, withdrawn by the last")
    func relayAnnouncesWatches() {
        let relay = ClusterRelay(workerID: "here")
        relay.joined(true)
        relay.watch(Self.execution)
        relay.watch(Self.execution)
        #expect(relay.takeOutgoing(limit: 10).compactMap(ClusterMessage.init(decoding:)).map(\.body) == [.watch([Self.execution])])
        relay.unwatch(Self.execution)
        #expect(relay.takeOutgoing(limit: 10).isEmpty, "another stream still follows it")
        relay.unwatch(Self.execution)
        relay.unwatch(Self.execution)
        #expect(relay.takeOutgoing(limit: 10).compactMap(ClusterMessage.init(decoding:)).map(\.body) == [.unwatch([Self.execution])])

        let many = (0..<250).map { ExecutionID(String(format: "00000000-0000-4000-8000-%012d", $0)) }
        for id in many { relay.watch(id) }
        _ = relay.takeOutgoing(limit: 1000)
        relay.repeatWatches()
        let repeated = relay.takeOutgoing(limit: 1000)
        #expect(repeated.count == 3 && repeated.allSatisfy { $0.utf8.count <= maximumClusterPayloadBytes })
        let named = repeated.compactMap(ClusterMessage.init(decoding:)).flatMap { message -> [ExecutionID] in
            if case .watch(let ids) = message.body { ids } else { [] }
        }
        #expect(Set(named) == Set(many))
    }

    @Test("a stream waits for its watch to come back from the database, so that what others commit next reaches it")
    func watchEcho() async {
        let relay = ClusterRelay(workerID: "here")
        #expect(relay.watch(Self.execution) == nil, "in no group: nothing to wait for")
        relay.unwatch(Self.execution)
        relay.joined(true)
        guard let told = relay.watch(Self.execution) else {
            Issue.record("a first watch in a group must be awaited")
            return
        }
        #expect(relay.watch(Self.execution) == nil, "a second stream here: the watch is out already")
        #expect(await told.sleep(for: .milliseconds(50)) == .deadline, "not before the echo")
        relay.echoed([Self.execution])
        #expect(await told.sleep(for: .seconds(60)) == .woken)
        // A stream that ends while waiting is let go.
        let other = ExecutionID("7d0f6a43-1c2b-4e5f-8a9b-0c1d2e3f4a5b")
        let waiting = relay.watch(other)
        relay.unwatch(other)
        #expect(await waiting?.sleep(for: .seconds(60)) == .woken)
    }

    @Test("memory stays bounded whatever arrives: remote watches and waiting messages have ceilings")
    func relayBounds() {
        let relay = ClusterRelay(workerID: "here")
        relay.joined(true)
        let flood = (0..<(ClusterRelay.maximumRemoteWatches + 10)).map { ExecutionID("e\($0)") }
        relay.received(watch: flood, from: "noisy 1", watching: true)
        #expect(!relay.isWatchedElsewhere(ExecutionID("e\(ClusterRelay.maximumRemoteWatches + 5)")))
        #expect(relay.isWatchedElsewhere(ExecutionID("e0")))
        // The ceiling counts pairs: another process watching the same executions adds nothing.
        relay.received(watch: [ExecutionID("e0")], from: "noisy 2", watching: true)
        relay.received(watch: [ExecutionID("e0")], from: "noisy 2", watching: false)
        relay.received(watch: [ExecutionID("e0")], from: "noisy 1", watching: false)
        relay.received(watch: [ExecutionID("late")], from: "noisy 3", watching: true)
        #expect(relay.isWatchedElsewhere(ExecutionID("late")), "a withdrawn watch frees its place")
        let events = Array(repeating: (eventType: "step_progress", payload: JSONValue.null), count: ClusterRelay.maximumOutgoing + 1)
        relay.forward(events, of: Self.execution, version: 1)
        #expect(relay.takeOutgoing(limit: 10).isEmpty)
        #expect(relay.takeOverflowed() == [Self.execution], "its streams are told to read the execution again")
    }
}
