import Subprocess

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Lays a DOT graph out with Graphviz's `dot` and returns the SVG.
///
/// `dot` runs as a child process (never in this process, never on an event loop thread) with
/// the graph on its standard input, a small environment of its own and a deadline: it is killed
/// when the deadline passes or the caller's task is cancelled, and its output is capped. In
/// Graphviz's restricted mode (`SERVER_NAME` set, an empty `GV_FILE_PATH`) it reads no files a
/// graph might name; the writers never name any anyway. Concurrent layouts are limited by a
/// ``GraphvizGate`` the caller owns.
public struct GraphvizLayout: Sendable {
    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// `dot` is not installed (or not on `PATH`).
        case unavailable
        /// `dot` ran longer than the deadline and was killed.
        case timedOut(milliseconds: Int)
        /// The SVG exceeded the output limit.
        case outputTooLarge(bytes: Int)
        /// `dot` exited with an error; its message.
        case failed(String)

        public var description: String {
            switch self {
            case .unavailable: "Graphviz's dot is not installed (apt-get install graphviz); DOT and Mermaid need no renderer"
            case .timedOut(let milliseconds): "Graphviz took longer than \(milliseconds) ms to lay the graph out"
            case .outputTooLarge(let bytes): "the laid-out graph is larger than \(bytes) bytes"
            case .failed(let message): "Graphviz could not lay the graph out: \(message)"
            }
        }
    }

    /// The program to run: a name looked up on `PATH`.
    public let executable: String
    public let deadline: Duration
    public let outputLimit: Int

    public init(executable: String = "dot", deadline: Duration = .seconds(10), outputLimit: Int = 16 << 20) {
        self.executable = executable
        self.deadline = deadline
        self.outputLimit = outputLimit
    }

    /// Whether `dot` can be found, without running it.
    public var isAvailable: Bool {
        let path = (getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin")
        return path.split(separator: ":").contains { access("\($0)/\(executable)", X_OK) == 0 }
    }

    /// The SVG of `dot`, laid out top to bottom.
    ///
    /// The graph reaches `dot` as a file of its own (mode 0600, removed afterwards), not through
    /// its standard input: `dot` may stop reading early (it refuses a string over 16 KB), and a
    /// pipe it leaves unread must not cost more than its answer.
    public func svg(_ dot: String) async throws(Failure) -> String {
        let executable = self.executable
        let limit = outputLimit
        let milliseconds = Int(deadline.components.seconds) * 1000 + Int(deadline.components.attoseconds / 1_000_000_000_000_000)
        let file = try Self.temporaryFile(holding: dot)
        defer { unlink(file) }
        let run: @Sendable () async throws -> String = {
            let result = try await Subprocess.run(
                .name(executable),
                arguments: ["-Tsvg", file],
                environment: .custom(Self.environment()),
                output: .string(limit: limit),
                error: .string(limit: 64 << 10)
            )
            let svg = result.standardOutput
            guard result.terminationStatus.isSuccess, !svg.isEmpty else {
                let message = result.standardError.split(separator: "\n").prefix(3).joined(separator: "; ")
                throw Failure.failed(message.isEmpty ? "\(result.terminationStatus)" : message)
            }
            return svg
        }
        do {
            return try await withThrowingTaskGroup(of: String?.self) { group in
                group.addTask { try await run() }
                group.addTask {
                    try await Task.sleep(for: self.deadline)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let svg = first else { throw Failure.timedOut(milliseconds: milliseconds) }
                return svg
            }
        } catch let failure as Failure {
            throw failure
        } catch let error as SubprocessError {
            switch error.code {
            case .executableNotFound: throw .unavailable
            case .outputLimitExceeded: throw .outputTooLarge(bytes: limit)
            default: throw .failed("\(error)")
            }
        } catch {
            throw .failed("\(error)")
        }
    }

    /// A new file under `TMPDIR` (or `/tmp`) holding `text`, readable by this user only.
    static func temporaryFile(holding text: String) throws(Failure) -> String {
        let directory = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array(
            "\(directory.hasSuffix("/") ? String(directory.dropLast()) : directory)/budpipeline-graph-XXXXXX.gv".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress.map { mkstemps($0, 3) } ?? -1
        }
        guard descriptor >= 0 else { throw .failed("cannot create a file for the graph in \(directory): errno \(errno)") }
        defer { close(descriptor) }
        let path = template.withUnsafeBufferPointer { buffer in buffer.baseAddress.map { String(cString: $0) } ?? "" }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else {
                unlink(path)
                throw .failed("cannot write the graph to \(path): errno \(errno)")
            }
            written += count
        }
        return path
    }

    /// `dot`'s whole environment: a search path, a UTF-8 locale, and Graphviz's restricted mode.
    static func environment() -> [Environment.Key: String] {
        var environment: [Environment.Key: String] = [
            "PATH": getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "SERVER_NAME": "budpipeline",
            "GV_FILE_PATH": "/nonexistent/",
        ]
        if let home = getenv("HOME") { environment["HOME"] = String(cString: home) }
        return environment
    }
}

/// Admits a bounded number of concurrent layouts, keeps a bounded queue, and remembers recent
/// answers: each layout is a process, so a burst of graph requests must become neither a burst of
/// processes nor an unbounded queue that delays everyone else's graphs.
///
/// At most `limit` layouts run at once; at most `maxWaiting` callers wait for a slot, in order,
/// each at most `maxWait` (then ``Busy``); a caller cancelled while it waits leaves the queue.
/// Answers are kept by their DOT text (least recently used first out) up to `cacheBytes`, so the
/// same picture asked again is not laid out again.
public actor GraphvizGate {
    /// No slot came free in time, or the queue was full.
    public struct Busy: Error, Sendable, Equatable {}

    private enum Admission {
        case admitted, busy, cancelled
    }

    private let limit: Int
    private let maxWaiting: Int
    private let maxWait: Duration
    private let cacheBytes: Int
    private var running = 0
    private var waiting: [(id: Int, continuation: CheckedContinuation<Admission, Never>)] = []
    private var nextID = 0
    private var cache: [String: String] = [:]
    /// Cached keys, least recently used first.
    private var recency: [String] = []
    private var cachedBytes = 0

    public init(limit: Int = 2, maxWaiting: Int = 8, maxWait: Duration = .seconds(5), cacheBytes: Int = 8 << 20) {
        self.limit = max(1, limit)
        self.maxWaiting = max(0, maxWaiting)
        self.maxWait = maxWait
        self.cacheBytes = max(0, cacheBytes)
    }

    /// The SVG of `dot`: remembered, or laid out by `layout` once a slot is free.
    public func svg(_ dot: String, layout: GraphvizLayout) async throws -> String {
        if let svg = remembered(dot) { return svg }
        let svg = try await run {
            try await layout.svg(dot)
        }
        guard let svg else { throw CancellationError() }
        remember(dot, svg)
        return svg
    }

    /// Runs `body` once a slot is free; `nil` when the task was cancelled while it waited;
    /// ``Busy`` when the queue is full or no slot came free within `maxWait`.
    public func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T? {
        switch await admit() {
        case .admitted: break
        case .busy: throw Busy()
        case .cancelled: return nil
        }
        defer { release() }
        return try await body()
    }

    private func admit() async -> Admission {
        if running < limit {
            running += 1
            return .admitted
        }
        guard waiting.count < maxWaiting else { return .busy }
        nextID += 1
        let id = nextID
        let maxWait = self.maxWait
        let timer = Task {
            try? await Task.sleep(for: maxWait)
            self.leave(id, as: .busy)
        }
        defer { timer.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                waiting.append((id, continuation))
            }
        } onCancel: {
            Task { await self.leave(id, as: .cancelled) }
        }
    }

    private func leave(_ id: Int, as admission: Admission) {
        guard let index = waiting.firstIndex(where: { $0.id == id }) else { return }
        waiting.remove(at: index).continuation.resume(returning: admission)
    }

    private func release() {
        if waiting.isEmpty {
            running -= 1
        } else {
            waiting.removeFirst().continuation.resume(returning: .admitted)
        }
    }

    private func remembered(_ dot: String) -> String? {
        guard let svg = cache[dot] else { return nil }
        if let index = recency.firstIndex(of: dot) { recency.append(recency.remove(at: index)) }
        return svg
    }

    private func remember(_ dot: String, _ svg: String) {
        let size = dot.utf8.count + svg.utf8.count
        guard size <= cacheBytes / 4, cache[dot] == nil else { return }
        cache[dot] = svg
        recency.append(dot)
        cachedBytes += size
        while cachedBytes > cacheBytes, !recency.isEmpty {
            let oldest = recency.removeFirst()
            if let svg = cache.removeValue(forKey: oldest) { cachedBytes -= oldest.utf8.count + svg.utf8.count }
        }
    }
}
