import ArgumentParser
import AsyncHTTPClient
import BudJSON
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// `end-to-end`: executions through a running server's HTTP API, started and followed the way a
/// client does, with the server's own cost read from `/proc`.
///
/// For each concurrency level, `concurrency` clients each start an execution of a saved pipeline
/// (`POST /executions`), follow it on its live stream (`GET /executions/{id}/stream`, which ends
/// with the execution) and start the next, until `executions` have finished. The client does no
/// polling, so it is not what limits the rate. Reported per level: executions and steps per second,
/// start-to-completion latency (p50, p99), and, for `--server-pid`, the server's CPU time per
/// execution and its resident memory after the level.
///
/// With `--rate`, the load is open instead: executions start on a fixed schedule (so many per
/// second) whether or not earlier ones have finished, as independent clients would start them, and
/// each one's latency counts from when it was due to start — a server that falls behind shows it in
/// the latency rather than by slowing the client down (no coordinated omission).
struct EndToEndBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "end-to-end",
        abstract: "Start and follow executions through a running server; print rates, latency, server CPU and memory."
    )

    enum Shape: String, ExpressibleByArgument, CaseIterable {
        case builtInChain = "chain-builtin"
        case pluginChain = "chain-plugin"
        case fanOut = "fan-out"
    }

    @Option(
        help:
            "The server's base URL, e.g. http://127.0.0.1:8010; several, comma-separated, for processes sharing one database: client i starts its executions on the (i mod n)-th and follows them on the next one's stream."
    )
    var url: String

    @Option(help: "The server's APP_API_TOKEN, sent as dapr-api-token (the service caller).")
    var token: String?

    enum StreamOn: String, ExpressibleByArgument, CaseIterable {
        case same, next
    }

    @Option(
        name: .customLong("stream-on"),
        help: "With several URLs: follow each execution on the process that started it (same) or on the next one (next).")
    var streamOn: StreamOn = .next

    @Option(name: .customLong("server-pid"), help: "The server's process id (several, comma-separated), to read CPU time and memory.")
    var serverPIDs: String?

    @Option(
        name: .customLong("database-pid"),
        help: "A database server's process id (PostgreSQL's postmaster): its CPU time and its children's is reported too.")
    var databasePID: Int32?

    @Option(help: "chain-builtin (5 `log` steps), chain-plugin (5 `noop` plugin steps) or fan-out (1 → 18 → 1 `log` steps).")
    var pipeline: Shape = .builtInChain

    @Option(help: "Concurrency levels, comma-separated.")
    var concurrency = "8,64,256"

    @Option(help: "Executions measured per level.")
    var executions = 2_000

    @Option(help: "Times to run every level (a soak: memory after each round shows whether it stays flat).")
    var rounds = 1

    @Option(name: .customLong("callback-topic"), help: "A callback topic for every execution (its events then go to the outbox).")
    var callbackTopic: String?

    @Option(
        name: .customLong("max-memory-growth"),
        help:
            "With --rounds 2 or more: fail (exit 1) when the server's resident memory after the last round exceeds that after the first by more than this percentage."
    )
    var maxMemoryGrowth: Double?

    @Option(help: "Open load instead of concurrency levels: executions started per second, comma-separated levels.")
    var rate: String?

    @Option(name: .customLong("max-outstanding"), help: "With --rate, at most this many executions in flight; a start due beyond it waits.")
    var maxOutstanding = 4_096

    func run() async throws {
        let levels = concurrency.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !levels.isEmpty, levels.allSatisfy({ (1...10_000).contains($0) }), executions > 0, rounds > 0 else {
            throw ValidationError("--concurrency needs levels of 1…10000; --executions and --rounds must be positive")
        }
        let rates = rate?.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) } ?? []
        let offered = rates.compactMap { $0 }.filter { $0 >= 1 && $0 <= 100_000 }
        guard offered.count == rates.count, rate == nil || !offered.isEmpty, (1...100_000).contains(maxOutstanding) else {
            throw ValidationError("--rate needs levels of 1…100000 executions per second; --max-outstanding 1…100000")
        }
        if let limit = maxMemoryGrowth {
            guard limit.isFinite, limit >= 0, rounds >= 2, serverPIDs != nil else {
                throw ValidationError("--max-memory-growth needs a percentage of 0 or more, --rounds 2 or more and --server-pid")
            }
        }
        let client = HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup,
            configuration: HTTPClient.Configuration(
                timeout: .init(connect: .seconds(5)),
                connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 2 * (levels.max() ?? 8))))
        do {
            let bases = url.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) }
            // With several processes, each client follows its executions on another process's
            // stream than the one that started them (what a load balancer may well do).
            let apis = bases.indices.map { index in
                BenchmarkAPI(
                    client: client, base: bases[index], streamBase: bases[streamOn == .next ? (index + 1) % bases.count : index],
                    token: token)
            }
            guard let api = apis.first else { throw ValidationError("--url needs at least one URL") }
            let (pipelineID, steps) = try await api.savePipeline(pipeline)
            print(
                "== end-to-end: \(pipeline.rawValue) (\(steps) steps), \(executions) executions per level"
                    + (callbackTopic.map { ", callback topic \($0)" } ?? ""))
            if let memory = ServerProcesses(serverPIDs)?.residentMegabytes { print(String(format: "server RSS before: %.1f MB", memory)) }
            // Warm-up: connections, the plugin's threads, the database's caches.
            _ = try await runLevel(apis, pipelineID: pipelineID, concurrency: levels[0], executions: min(200, executions))
            var memoryAfterRounds: [Double] = []
            for round in 1...rounds {
                for level in offered {
                    let result = try await runOpenLevel(apis, pipelineID: pipelineID, rate: level, executions: executions)
                    print(result.line(round: rounds > 1 ? round : nil, offered: level, steps: steps))
                    if callbackTopic != nil { try await reportDrain(api) }
                }
                for level in levels where offered.isEmpty {
                    let result = try await runLevel(apis, pipelineID: pipelineID, concurrency: level, executions: executions)
                    print(result.line(round: rounds > 1 ? round : nil, concurrency: level, steps: steps))
                    // The next level starts with the outbox drained, so that it does not pay for
                    // the publishing this one left behind.
                    if callbackTopic != nil { try await reportDrain(api) }
                }
                // Memory once the round's work has settled (finished executions leave memory).
                try await Task.sleep(for: .seconds(1))
                if let memory = ServerProcesses(serverPIDs)?.residentMegabytes { memoryAfterRounds.append(memory) }
            }
            try checkMemoryGrowth(memoryAfterRounds)
        } catch {
            try await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    /// Waits for the outbox to be drained and says how long that took after the level ended.
    private func reportDrain(_ api: BenchmarkAPI) async throws {
        guard let took = try await api.waitForDrainedOutbox() else {
            throw ValidationError("the outbox was not drained within 300 s of the level's end")
        }
        print(String(format: "    outbox drained %.2f s after the level", took / .seconds(1)))
    }

    /// Prints the growth of resident memory from the first round to the last and, with
    /// `--max-memory-growth`, fails when it is larger.
    private func checkMemoryGrowth(_ memoryAfterRounds: [Double]) throws {
        guard memoryAfterRounds.count >= 2, let first = memoryAfterRounds.first, let last = memoryAfterRounds.last, first > 0 else {
            if maxMemoryGrowth != nil { throw ValidationError("--max-memory-growth needs --rounds 2 or more and --server-pid") }
            return
        }
        let growth = (last - first) / first * 100
        let rounds = memoryAfterRounds.map { String(format: "%.1f", $0) }.joined(separator: " → ")
        print("server RSS after each round: \(rounds) MB; " + String(format: "last against first %+.1f %%", growth))
        if let limit = maxMemoryGrowth, growth > limit {
            print(String(format: "FAILED: resident memory grew %.1f %% across the rounds (limit %.1f %%)", growth, limit))
            throw ExitCode(1)
        }
    }

    struct LevelResult {
        var seconds: Double
        var latencies: [Double]
        var failed: Int
        var serverCPUSeconds: Double?
        var databaseCPUSeconds: Double?
        var residentMegabytes: Double?

        func line(round: Int?, concurrency: Int, steps: Int) -> String {
            line(round: round, level: String(format: "c=%-3d", concurrency), steps: steps)
        }

        func line(round: Int?, offered: Double, steps: Int) -> String {
            line(round: round, level: String(format: "offered %5.0f/s:", offered), steps: steps)
        }

        private func line(round: Int?, level: String, steps: Int) -> String {
            let count = Double(latencies.count)
            let sorted = latencies.sorted()
            var parts = [
                level + String(format: " %6.0f executions/s %7.0f steps/s", count / seconds, count * Double(steps) / seconds),
                String(
                    format: "latency p50 %6.1f ms p99 %6.1f ms p99.9 %6.1f ms", sorted.percentile(0.5) * 1000,
                    sorted.percentile(0.99) * 1000, sorted.percentile(0.999) * 1000),
            ]
            if let serverCPUSeconds { parts.append(String(format: "server CPU %.2f ms/execution", serverCPUSeconds * 1000 / count)) }
            if let databaseCPUSeconds { parts.append(String(format: "database CPU %.2f ms/execution", databaseCPUSeconds * 1000 / count)) }
            if let residentMegabytes { parts.append(String(format: "RSS %.1f MB", residentMegabytes)) }
            if failed > 0 { parts.append("\(failed) not completed") }
            return (round.map { "round \($0): " } ?? "") + parts.joined(separator: ", ")
        }
    }

    private func runLevel(_ apis: [BenchmarkAPI], pipelineID: String, concurrency: Int, executions: Int) async throws -> LevelResult {
        let server = ServerProcesses(serverPIDs)
        let cpuBefore = server?.cpuSeconds
        let databaseBefore = ServerProcess(pid: databasePID)?.cpuSecondsWithChildren
        let tickets = Tickets(executions)
        let started = ContinuousClock.now
        let topic = callbackTopic
        let outcomes = try await withThrowingTaskGroup(of: [(seconds: Double, completed: Bool)].self) { group in
            for client in 0..<concurrency {
                let api = apis[client % apis.count]
                group.addTask {
                    var mine: [(seconds: Double, completed: Bool)] = []
                    while tickets.take() {
                        let begun = ContinuousClock.now
                        // A start the server refuses or a stream that breaks counts as not completed.
                        let completed = (try? await api.runToCompletion(pipelineID: pipelineID, callbackTopic: topic)) ?? false
                        mine.append(((ContinuousClock.now - begun) / .seconds(1), completed))
                    }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        return LevelResult(
            seconds: seconds, latencies: outcomes.map(\.seconds), failed: outcomes.filter { !$0.completed }.count,
            serverCPUSeconds: cpuBefore.flatMap { before in server?.cpuSeconds.map { $0 - before } },
            databaseCPUSeconds: databaseBefore.flatMap { before in
                ServerProcess(pid: databasePID)?.cpuSecondsWithChildren.map { $0 - before }
            },
            residentMegabytes: server?.residentMegabytes)
    }
}

extension EndToEndBenchmark {
    /// One open-load level: `executions` starts due `1 / rate` seconds apart; each execution's
    /// latency runs from when it was due. The rate reported is completions over the time from the
    /// first start to the last completion.
    fileprivate func runOpenLevel(_ apis: [BenchmarkAPI], pipelineID: String, rate: Double, executions: Int) async throws
        -> LevelResult
    {
        let server = ServerProcesses(serverPIDs)
        let cpuBefore = server?.cpuSeconds
        let databaseBefore = ServerProcess(pid: databasePID)?.cpuSecondsWithChildren
        let interval = Duration.nanoseconds(Int64(1_000_000_000 / rate))
        let started = ContinuousClock.now
        let topic = callbackTopic
        let cap = maxOutstanding
        let outcomes = await withTaskGroup(of: (seconds: Double, completed: Bool).self) { group in
            var outcomes: [(seconds: Double, completed: Bool)] = []
            outcomes.reserveCapacity(executions)
            var outstanding = 0
            for index in 0..<executions {
                let due = started + interval * index
                try? await Task.sleep(until: due, clock: .continuous)
                while outstanding >= cap, let outcome = await group.next() {
                    outcomes.append(outcome)
                    outstanding -= 1
                }
                outstanding += 1
                let api = apis[index % apis.count]
                group.addTask {
                    // A start the server refuses or a stream that breaks counts as not completed.
                    let completed = (try? await api.runToCompletion(pipelineID: pipelineID, callbackTopic: topic)) ?? false
                    return ((ContinuousClock.now - due) / .seconds(1), completed)
                }
            }
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        return LevelResult(
            seconds: seconds, latencies: outcomes.filter(\.completed).map(\.seconds), failed: outcomes.filter { !$0.completed }.count,
            serverCPUSeconds: cpuBefore.flatMap { before in server?.cpuSeconds.map { $0 - before } },
            databaseCPUSeconds: databaseBefore.flatMap { before in
                ServerProcess(pid: databasePID)?.cpuSecondsWithChildren.map { $0 - before }
            },
            residentMegabytes: server?.residentMegabytes)
    }
}

/// The few calls the end-to-end benchmark makes, as budapp makes them.
struct BenchmarkAPI: Sendable {
    let client: HTTPClient
    let base: String
    /// Where executions are followed: `base`, or another process of the same database.
    var streamBase: String
    let token: String?

    init(client: HTTPClient, base: String, streamBase: String? = nil, token: String?) {
        self.client = client
        self.base = base
        self.streamBase = streamBase ?? base
        self.token = token
    }

    /// Saves the pipeline of `shape`; returns its id and its number of steps.
    func savePipeline(_ shape: EndToEndBenchmark.Shape) async throws -> (id: String, steps: Int) {
        var steps: [JSONValue] = []
        func step(_ id: String, _ action: String, after: [String]) {
            steps.append([
                "id": .string(id), "name": .string(id), "action": .string(action), "depends_on": .array(after.map(JSONValue.string)),
            ])
        }
        switch shape {
        case .builtInChain, .pluginChain:
            let action = shape == .builtInChain ? "log" : "noop"
            for index in 0..<5 { step("s\(index)", action, after: index == 0 ? [] : ["s\(index - 1)"]) }
        case .fanOut:
            step("first", "log", after: [])
            for index in 0..<18 { step("branch\(index)", "log", after: ["first"]) }
            step("last", "log", after: (0..<18).map { "branch\($0)" })
        }
        let name = "end-to-end \(shape.rawValue) \(UUID().uuidString.prefix(8))"
        let saved = try await send("POST", "/pipelines", ["dag": ["name": .string(name), "steps": .array(steps)], "name": .string(name)])
        guard let id = saved["id"]?.stringValue else { throw ValidationError("POST /pipelines answered without an id: \(saved)") }
        return (id, steps.count)
    }

    /// Starts an execution of the saved pipeline and follows its live stream until it ends;
    /// whether it completed.
    func runToCompletion(pipelineID: String, callbackTopic: String?) async throws -> Bool {
        var body: JSONObject = ["workflow_id": .string(pipelineID), "params": [:]]
        if let callbackTopic { body["callback_topics"] = [.string(callbackTopic)] }
        let started = try await send("POST", "/executions", body)
        guard let executionID = started["execution_id"]?.stringValue else {
            throw ValidationError("POST /executions answered without an execution_id: \(started)")
        }
        var request = HTTPClientRequest(url: streamBase + "/executions/\(executionID)/stream")
        if let token { request.headers.add(name: "dapr-api-token", value: token) }
        let response = try await client.execute(request, timeout: .seconds(600))
        guard response.status == .ok else { throw ValidationError("the live stream answered \(response.status)") }
        // The stream ends with the execution: by its final event, or by a snapshot of it finished
        // (right away for an execution already finished, or when its final event did not come by).
        // Read event by event, so that no event is judged in pieces; one event is held at a time.
        var outcome = StreamOutcome()
        var pending = ""
        for try await buffer in response.body {
            pending += String(buffer: buffer)
            while let end = pending.range(of: "\n\n") {
                outcome.read(event: pending[..<end.lowerBound])
                pending.removeSubrange(..<end.upperBound)
            }
        }
        outcome.read(event: pending[...])
        return outcome.completed
    }

    /// What a live stream said about how its execution ended.
    struct StreamOutcome {
        private var finalEvent: String?
        private var lastSnapshotCompleted = false

        /// Reads one server-sent event (its lines, without the blank line that ends it).
        mutating func read(event: Substring) {
            guard let first = event.split(separator: "\n").first, first.hasPrefix("event: ") else { return }
            let name = first.dropFirst("event: ".count)
            if name == "snapshot" {
                lastSnapshotCompleted = event.contains("\"status\":\"COMPLETED\"")
            } else if ["workflow_completed", "workflow_failed", "workflow_cancelled"].contains(name) {
                finalEvent = String(name)
            }
        }

        var completed: Bool { finalEvent.map { $0 == "workflow_completed" } ?? lastSnapshotCompleted }
    }

    /// Waits until `/health` reports no outbox event pending (at most `limit`); how long it took,
    /// `nil` when the outbox was not drained by then.
    func waitForDrainedOutbox(atMost limit: Duration = .seconds(300)) async throws -> Duration? {
        let started = ContinuousClock.now
        while ContinuousClock.now - started < limit {
            let health = try await send("GET", "/health", nil)
            if health["outbox"]?["pending"]?.intValue == 0 { return ContinuousClock.now - started }
            try await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    private func send(_ method: String, _ path: String, _ body: JSONObject?) async throws -> JSONObject {
        var request = HTTPClientRequest(url: base + path)
        request.method = .init(rawValue: method)
        if let token { request.headers.add(name: "dapr-api-token", value: token) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: JSONValue.object(body).serializedString()))
        }
        let response = try await client.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        let answer = try JSONValue(parsing: String(buffer: bytes))
        guard (200..<300).contains(Int(response.status.code)), let object = answer.objectValue else {
            throw ValidationError("\(method) \(path) answered \(response.status): \(answer.serializedString())")
        }
        return object
    }
}

/// The server processes' counters in `/proc`, added up.
struct ServerProcesses {
    let processes: [ServerProcess]

    /// `pids`: comma-separated process ids; `nil` without any.
    init?(_ pids: String?) {
        let processes = (pids ?? "").split(separator: ",").compactMap { ServerProcess(pid: Int32($0.trimmingCharacters(in: .whitespaces))) }
        guard !processes.isEmpty else { return nil }
        self.processes = processes
    }

    var cpuSeconds: Double? { Self.sum(processes.map(\.cpuSeconds)) }
    var residentMegabytes: Double? { Self.sum(processes.map(\.residentMegabytes)) }

    private static func sum(_ values: [Double?]) -> Double? {
        let known = values.compactMap { $0 }
        return known.count == values.count ? known.reduce(0, +) : nil
    }
}

/// The server process's counters in `/proc`.
struct ServerProcess {
    let pid: Int32

    init?(pid: Int32?) {
        guard let pid else { return nil }
        self.pid = pid
    }

    /// User plus system CPU time so far.
    var cpuSeconds: Double? { Self.cpuAndParent(of: pid)?.seconds }

    /// User plus system CPU time so far of the process, of its children that are alive (a
    /// database server's connection processes) and of those that ended (closed connections).
    var cpuSecondsWithChildren: Double? {
        guard var total = Self.cpuAndParent(of: pid).map({ $0.seconds + $0.endedChildren }) else { return nil }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let child = Int32(entry), child != pid, let stat = Self.cpuAndParent(of: child), stat.parent == pid else { continue }
            total += stat.seconds
        }
        return total
    }

    /// A process's own CPU seconds, its parent, and the CPU seconds of its children that ended.
    private static func cpuAndParent(of pid: Int32) -> (seconds: Double, parent: Int32, endedChildren: Double)? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let afterName = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after the command name: state is field 3, the parent 4, utime 14, stime 15,
        // cutime 16 and cstime 17 (children waited for).
        let fields = stat[stat.index(after: afterName)...].split(separator: " ")
        guard fields.count > 14, let parent = Int32(fields[1]), let user = Double(fields[11]), let system = Double(fields[12]),
            let childrenUser = Double(fields[13]), let childrenSystem = Double(fields[14])
        else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return ((user + system) / ticks, parent, (childrenUser + childrenSystem) / ticks)
    }

    /// Resident memory (VmRSS).
    var residentMegabytes: Double? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "")
        else { return nil }
        return kilobytes / 1024
    }
}

/// A number of executions to start, taken one at a time by the clients.
final class Tickets: Sendable {
    private let left: Atomic<Int>

    init(_ count: Int) { left = Atomic(count) }

    /// Whether one was left (and is now taken).
    func take() -> Bool { left.subtract(1, ordering: .relaxed).oldValue > 0 }
}
