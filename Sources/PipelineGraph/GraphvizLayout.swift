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
    public func svg(_ dot: String) async throws(Failure) -> String {
        let executable = self.executable
        let limit = outputLimit
        let milliseconds = Int(deadline.components.seconds) * 1000 + Int(deadline.components.attoseconds / 1_000_000_000_000_000)
        let run: @Sendable () async throws -> String = {
            let result = try await Subprocess.run(
                .name(executable),
                arguments: ["-Tsvg"],
                environment: .custom(Self.environment()),
                input: .string(dot),
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

/// Admits a bounded number of concurrent layouts: each is a process, so a burst of graph
/// requests must not become a burst of processes. Callers over the bound wait their turn, in
/// order, and may be cancelled while they wait.
public actor GraphvizGate {
    private let limit: Int
    private var running = 0
    private var waiting: [(id: Int, continuation: CheckedContinuation<Bool, Never>)] = []
    private var nextID = 0

    public init(limit: Int = 2) {
        self.limit = max(1, limit)
    }

    /// Runs `body` once a slot is free; `nil` when the task was cancelled while it waited.
    public func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T? {
        guard await admit() else { return nil }
        defer { release() }
        return try await body()
    }

    private func admit() async -> Bool {
        if running < limit {
            running += 1
            return true
        }
        nextID += 1
        let id = nextID
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                waiting.append((id, continuation))
            }
        } onCancel: {
            Task { await self.cancelWaiter(id) }
        }
    }

    private func cancelWaiter(_ id: Int) {
        guard let index = waiting.firstIndex(where: { $0.id == id }) else { return }
        waiting.remove(at: index).continuation.resume(returning: false)
    }

    private func release() {
        if waiting.isEmpty {
            running -= 1
        } else {
            waiting.removeFirst().continuation.resume(returning: true)
        }
    }
}
