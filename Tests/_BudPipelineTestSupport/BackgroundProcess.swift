public import Foundation

/// A child process left running while a test goes on (a worker or a server), its output in a file.
public final class BackgroundProcess: @unchecked Sendable {
    // @unchecked: `process` is configured before `run()` and afterwards only read through
    // Foundation's thread-safe accessors (`isRunning`, `processIdentifier`, `terminationStatus`).
    private let process = Process()
    /// Standard output and error of the process.
    public let logPath: String

    /// With `standardInput`, the process reads from that pipe (the caller keeps its writing end);
    /// otherwise it inherits the test process's standard input.
    public init(_ executable: String, _ arguments: [String], environment: [String: String], standardInput: Pipe? = nil) throws {
        logPath = NSTemporaryDirectory() + "bp-process-\(UUID().uuidString).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.standardOutput = log
        process.standardError = log
        if let standardInput { process.standardInput = standardInput }
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    /// What the process printed so far.
    public var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Waits until the output contains `text`; false after `timeout`.
    public func waitForOutput(_ text: String, timeout: Duration = .seconds(30)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !output.contains(text) {
            guard ContinuousClock.now < deadline, process.isRunning else { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    /// Kills the process with SIGKILL: no cleanup of any kind runs.
    public func kill() async {
        Foundation.kill(process.processIdentifier, SIGKILL)
        await waitForExit(timeout: .seconds(10))
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status (nil if it had to
    /// be killed after `timeout`).
    @discardableResult
    public func stop(timeout: Duration = .seconds(30)) async -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        Foundation.kill(process.processIdentifier, SIGTERM)
        if await waitForExit(timeout: timeout) { return process.terminationStatus }
        Foundation.kill(process.processIdentifier, SIGKILL)
        await waitForExit(timeout: .seconds(10))
        return nil
    }

    @discardableResult
    private func waitForExit(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }
}

/// Lines the `runtime_probe` fixture plugin writes: `<call> <detail> pid=<pid>`.
public struct ProbeLog: Sendable, Equatable {
    public let call: String
    public let detail: String
    public let pid: Int32

    public static func read(_ path: String) -> [ProbeLog] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 3, parts[2].hasPrefix("pid="), let pid = Int32(parts[2].dropFirst(4)) else { return nil }
            return ProbeLog(call: String(parts[0]), detail: String(parts[1]), pid: pid)
        }
    }
}
