import Foundation

/// What a finished child process printed and returned.
public struct ProcessOutput: Sendable {
    public let status: Int32
    public let standardOutput: String
    public let standardError: String
}

/// Runs executables for end-to-end tests.
public enum ProcessRunner {
    /// Runs `executable` with `arguments`, adding `environment` to the current environment, and
    /// waits for it to exit (killing it after `timeout`).
    public static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String] = [:],
        removingEnvironment: [String] = [],
        directory: String? = nil,
        timeout: Duration = .seconds(600)
    ) async throws -> ProcessOutput {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        for name in removingEnvironment { merged[name] = nil }
        process.environment = merged
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        // Reading blocks until the process closes its end: on GCD threads, never on Swift's
        // cooperative pool, which other tests (and the timers they measure) need.
        let outputData = Self.readToEnd(output.fileHandleForReading)
        let errorData = Self.readToEnd(error.fileHandleForReading)
        try process.run()
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline {
                process.terminate()
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        while process.isRunning { try await Task.sleep(for: .milliseconds(5)) }
        return ProcessOutput(
            status: process.terminationStatus,
            standardOutput: String(decoding: await outputData.value, as: UTF8.self),
            standardError: String(decoding: await errorData.value, as: UTF8.self)
        )
    }

    private static func readToEnd(_ handle: FileHandle) -> Task<Data, Never> {
        Task {
            await withCheckedContinuation { continuation in
                DispatchQueue.global().async { continuation.resume(returning: handle.readDataToEndOfFile()) }
            }
        }
    }
}
