import BudJSON
import Foundation
import Testing
import _BudPipelineTestSupport

/// `budpipeline run FILE` shows its execution's progress: live under a pseudo-terminal (through
/// util-linux `script`), plain lines into a pipe, nothing but the JSON with `--json`.
@Suite(.serialized) struct RunProgressEndToEndTests {
    /// Two `wait_until` steps (about 3 and 4 s: `until_time` must still be ahead when the step
    /// starts, on a loaded machine too) and a `log` step after both: the view changes while they
    /// wait.
    static let dag = #"""
        {"name": "progress", "parameters": [{"name": "wake", "type": "string"}, {"name": "later", "type": "string"}],
         "steps": [
           {"id": "nap", "name": "Nap", "action": "wait_until", "params": {"until_time": "{{ params.wake }}"}},
           {"id": "longer_nap", "name": "Longer nap", "action": "wait_until", "params": {"until_time": "{{ params.later }}"}},
           {"id": "report", "name": "Report", "action": "log", "depends_on": ["nap", "longer_nap"], "params": {"message": "done"}}
         ]}
        """#

    struct Run {
        let directory: URL
        let dagFile: String

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("run-progress-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            dagFile = directory.appendingPathComponent("dag.json").path
            try RunProgressEndToEndTests.dag.write(toFile: dagFile, atomically: true, encoding: .utf8)
        }

        /// `run` with the wake-up times set from now, on a fresh SQLite database.
        func arguments(_ extra: [String] = []) -> [String] {
            let now = Date()
            return [
                "run", dagFile, "--migrate", "--param", "wake=\(Self.iso(now.addingTimeInterval(3)))", "--param",
                "later=\(Self.iso(now.addingTimeInterval(4)))",
            ] + extra
        }

        var environment: [String: String] {
            [
                "DATABASE_URL": "sqlite:///\(directory.appendingPathComponent("db.sqlite").path)",
                "BUDPIPELINE_DATA_DIR": directory.path, "BUDPIPELINE_PLUGIN_DIRS": directory.path, "TERM": "xterm-256color",
                "COLUMNS": "100", "LINES": "30", "LANG": "C.UTF-8",
            ]
        }

        /// The command under a pseudo-terminal: `script` runs it through the shell, so every
        /// argument is quoted.
        func underTerminal(_ arguments: [String]) async throws -> ProcessOutput {
            let command = ([Repository.executable] + arguments).map(Self.quoted).joined(separator: " ")
            return try await ProcessRunner.run(
                "/usr/bin/script", ["-qfec", command, "/dev/null"], environment: environment, removingEnvironment: ["NO_COLOR"],
                timeout: .seconds(120))
        }

        func intoPipe(_ arguments: [String]) async throws -> ProcessOutput {
            try await ProcessRunner.run(Repository.executable, arguments, environment: environment, timeout: .seconds(120))
        }

        static func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: #"'\''"#) + "'" }

        static func iso(_ date: Date) -> String {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            formatter.timeZone = .gmt
            return formatter.string(from: date)
        }

        func remove() { try? FileManager.default.removeItem(at: directory) }
    }

    @Test func aTerminalGetsALiveViewRedrawnInPlace() async throws {
        let run = try Run()
        defer { run.remove() }
        let result = try await run.underTerminal(run.arguments())
        let output = result.standardOutput
        #expect(result.status == 0, "\(output)\n\(result.standardError)")
        // Redrawn in place: the cursor goes up over the previous frame, each line is cleared.
        #expect(output.contains(/\x{1B}\[\d+A/), "\(output.debugDescription)")
        #expect(output.contains("\u{1B}[2K"))
        // It showed the naps waiting with their wake-up times, then everything completed.
        let text = output.replacing(/\x{1B}\[[0-9;]*m/, with: "")
        #expect(text.contains(/nap +WAITING .* until \d\d:\d\d:\d\d \(in \ds\)/), "\(text.debugDescription)")
        #expect(text.contains(/report +PENDING .* after nap, longer_nap/), "\(text.debugDescription)")
        #expect(text.contains(/longer_nap +COMPLETED +\d+\.\ds/))
        #expect(text.contains(/report +COMPLETED/))
        #expect(text.contains("] 100%  3/3 steps  COMPLETED in"))
        // Colour on a terminal that has it; then the result as before.
        #expect(output.contains("\u{1B}[32m"))
        #expect(output.contains(/execution [0-9a-f-]+: COMPLETED/))
        #expect(output.contains("  report: COMPLETED"))
        // The final view stays: the result comes after the last frame.
        let lastFrame = output.range(of: "COMPLETED in", options: .backwards)
        let result_ = output.range(of: ": COMPLETED")
        #expect(
            lastFrame != nil && result_ != nil
                && lastFrame.map(\.lowerBound) ?? output.endIndex < result_.map(\.lowerBound) ?? output.startIndex)
    }

    @Test func withoutColourOrWithPlainLinesUnderATerminal() async throws {
        let run = try Run()
        defer { run.remove() }
        var noColor = run.environment
        noColor["NO_COLOR"] = "1"
        let command = ([Repository.executable] + run.arguments(["--timeout", "60"])).map(Run.quoted).joined(separator: " ")
        let live = try await ProcessRunner.run(
            "/usr/bin/script", ["-qfec", command, "/dev/null"], environment: noColor, timeout: .seconds(120))
        #expect(live.status == 0, "\(live.standardOutput)")
        #expect(live.standardOutput.contains("\u{1B}[2K"))
        #expect(!live.standardOutput.contains(/\x{1B}\[\d+m/), "NO_COLOR: \(live.standardOutput.debugDescription)")

        let plain = try await run.underTerminal(run.arguments(["--progress", "plain"]))
        #expect(plain.status == 0)
        #expect(!plain.standardOutput.contains("\u{1B}"), "\(plain.standardOutput.debugDescription)")
        #expect(plain.standardOutput.contains("step report COMPLETED"))
    }

    @Test func aPipeGetsPlainLinesWithoutEscapes() async throws {
        let run = try Run()
        defer { run.remove() }
        let result = try await run.intoPipe(run.arguments())
        let output = result.standardOutput
        #expect(result.status == 0, "\(output)\n\(result.standardError)")
        #expect(!output.utf8.contains(0x1B), "\(output.debugDescription)")
        let lines = output.split(separator: "\n").map(String.init)
        let time = /\d\d:\d\d:\d\d/
        #expect(lines.contains { $0.wholeMatch(of: /\d\d:\d\d:\d\d execution [0-9a-f-]+ RUNNING/) != nil }, "\(lines)")
        #expect(lines.contains { $0.contains(/^\d\d:\d\d:\d\d step nap AWAITING_EVENT until \d\d:\d\d:\d\d$/) }, "\(lines)")
        #expect(lines.contains { $0.contains(/^\d\d:\d\d:\d\d step longer_nap COMPLETED in \d+\.\ds$/) }, "\(lines)")
        #expect(lines.contains { $0.contains(/^\d\d:\d\d:\d\d step report COMPLETED in \d+\.\ds$/) }, "\(lines)")
        // One line per change: each step completes once; the execution's end comes last of the
        // progress lines, then the result as before.
        #expect(lines.filter { $0.contains("step nap COMPLETED") }.count == 1)
        let end = lines.firstIndex { $0.contains(/execution [0-9a-f-]+ COMPLETED in/) }
        let result_ = lines.firstIndex { $0.contains(/^execution [0-9a-f-]+: COMPLETED$/) }
        #expect(end != nil && result_ != nil && (end ?? 0) < (result_ ?? 0), "\(lines)")
        #expect(lines.prefix(end ?? 0).allSatisfy { $0.prefix(8).wholeMatch(of: time) != nil }, "\(lines)")
        #expect(lines.contains("  report: COMPLETED"))
    }

    @Test func jsonStaysJSON() async throws {
        let run = try Run()
        defer { run.remove() }
        for result in [try await run.intoPipe(run.arguments(["--json"])), try await run.underTerminal(run.arguments(["--json"]))] {
            #expect(result.status == 0, "\(result.standardOutput)\n\(result.standardError)")
            #expect(!result.standardOutput.contains("\u{1B}"))
            let json = try JSONValue(parsing: result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(json["status"]?.stringValue == "COMPLETED")
            #expect(json["steps"]?.arrayValue?.count == 3)
        }
        let refused = try await run.intoPipe(run.arguments(["--json", "--progress", "live"]))
        #expect(refused.status != 0)
        #expect(refused.standardError.contains("--progress live cannot go with --json"))
    }
}
