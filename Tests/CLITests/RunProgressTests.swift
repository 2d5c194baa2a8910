import BudJSON
import Foundation
import PipelineEngine
import Testing

@testable import budpipeline

/// The progress view of `budpipeline run` as a value: events and stored states in, lines out. No
/// I/O.
@Suite struct RunProgressTests {
    static let t0 = Date(timeIntervalSince1970: 1_767_225_600)  // 2026-01-01T00:00:00Z
    static let utc = RunProgressStyle(unicode: false, color: false, timeZone: .gmt)

    static func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    static func definition(_ steps: [(id: String, dependsOn: [String], action: String)]) -> PipelineDefinition {
        PipelineDefinition(
            name: "p", version: "1", parameters: [], settings: PipelineSettings(),
            steps: steps.map { PipelineStep(id: $0.id, name: $0.id.uppercased(), action: $0.action, dependsOn: $0.dependsOn) },
            outputs: [])
    }

    /// build → test → deploy (awaits an event) and a `wait_until` nap beside them.
    static func pipeline() -> RunProgress {
        RunProgress(
            executionID: "e1",
            definition: definition([
                ("build", [], "log"), ("test", ["build"], "work"), ("deploy", ["test"], "deployment_create"), ("nap", [], "wait_until"),
            ]))
    }

    static func event(_ type: String, _ payload: JSONObject, version: Int, at seconds: Double) -> RunProgress.Input {
        .event(type: type, payload: .object(payload), version: version, at: at(seconds))
    }

    static func state(
        _ id: String, _ status: StepStatus, attempt: Int = 0, started: Double? = nil, ended: Double? = nil, error: String? = nil,
        externalID: String? = nil, deadline: Double? = nil, action: String = "log"
    ) -> StepState {
        var state = StepState(stepID: id, name: id, action: action, sequence: 1)
        state.status = status
        state.attempt = attempt
        state.startedAt = started.map(at)
        state.endedAt = ended.map(at)
        state.error = error
        state.externalWorkflowID = externalID
        state.deadline = deadline.map(at)
        return state
    }

    /// Whether `text` holds anything a terminal acts on: C0 or C1 controls or DEL.
    static func hasControl(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
    }

    // MARK: The state machine

    @Test func eventsMoveStepsAndEachChangeIsReportedOnce() {
        var progress = Self.pipeline()
        #expect(progress.apply(Self.event("execution_started", [:], version: 1, at: 0)) == [.execution(.running, at: Self.at(0))])
        let started = progress.apply(Self.event("step_started", ["step_id": "build", "attempt": 0], version: 1, at: 0))
        #expect(started.count == 1)
        #expect(progress.step("build")?.status == .running)
        // The same event again, and an older transition's, change nothing.
        #expect(progress.apply(Self.event("step_started", ["step_id": "build", "attempt": 0], version: 1, at: 0)).isEmpty)
        let completed = progress.apply(Self.event("step_completed", ["step_id": "build", "progress": 25.0], version: 2, at: 1.25))
        #expect(completed.count == 1)
        #expect(progress.progress == 25)
        #expect(progress.apply(Self.event("step_started", ["step_id": "build", "attempt": 0], version: 1, at: 2)).isEmpty)
        #expect(progress.step("build")?.status == .completed)
        // A stored state older than the events is ignored; one as new but behind does not move a step back.
        let stale = RunProgress.Stored(version: 1, status: .running, steps: [Self.state("build", .running, started: 0)], at: Self.at(3))
        #expect(progress.apply(.stored(stale)).isEmpty)
        let behind = RunProgress.Stored(version: 2, status: .running, steps: [Self.state("build", .running, started: 0)], at: Self.at(3))
        #expect(progress.apply(.stored(behind)).isEmpty)
        #expect(progress.step("build")?.status == .completed)
        // Unknown steps and event types are ignored.
        #expect(progress.apply(Self.event("step_started", ["step_id": "nope"], version: 3, at: 3)).isEmpty)
        #expect(progress.apply(Self.event("something_else", ["step_id": "build"], version: 3, at: 3)).isEmpty)
    }

    @Test func aRetryMovesOnToTheNextAttempt() {
        var progress = Self.pipeline()
        _ = progress.apply(Self.event("step_started", ["step_id": "test", "attempt": 0], version: 1, at: 0))
        let retrying = progress.apply(
            Self.event("step_retrying", ["step_id": "test", "next_attempt": 1, "delay_seconds": 5.0, "error": "boom"], version: 2, at: 1))
        #expect(retrying.count == 1)
        #expect(progress.step("test")?.retryAt == Self.at(6))
        // The stored state of the same attempt keeps the retry time only the event told.
        let stored = RunProgress.Stored(
            version: 2, status: .running, steps: [Self.state("test", .retrying, attempt: 0, started: 0, ended: 1, error: "boom")],
            at: Self.at(1.5))
        #expect(progress.apply(.stored(stored)).isEmpty)
        #expect(progress.step("test")?.retryAt == Self.at(6))
        let again = progress.apply(Self.event("step_started", ["step_id": "test", "attempt": 1], version: 3, at: 6))
        #expect(again.count == 1)
        #expect(progress.step("test")?.attempt == 1)
        #expect(progress.line(for: again[0], style: Self.utc) == "00:00:06 step test RUNNING (attempt 2)")
    }

    @Test func plainLinesTellEachChange() {
        var progress = Self.pipeline()
        var lines: [String] = []
        func take(_ input: RunProgress.Input) {
            lines += progress.apply(input).map { progress.line(for: $0, style: Self.utc) }
        }
        take(Self.event("execution_started", [:], version: 1, at: 0))
        take(Self.event("step_started", ["step_id": "build", "attempt": 0], version: 1, at: 0))
        take(Self.event("step_started", ["step_id": "nap", "attempt": 0], version: 1, at: 0))
        take(
            .stored(
                RunProgress.Stored(
                    version: 2, status: .running, startedAt: Self.at(0),
                    steps: [
                        Self.state("build", .completed, started: 0, ended: 1.2),
                        Self.state("nap", .awaitingEvent, started: 0, externalID: "wait_until:x", deadline: 65, action: "wait_until"),
                        Self.state("test", .running, started: 1.2),
                    ], at: Self.at(1.3))))
        take(Self.event("step_awaiting_event", ["step_id": "deploy", "external_workflow_id": "ext-1"], version: 3, at: 2))
        take(Self.event("step_failed", ["step_id": "test", "status": "FAILED", "error": "no\nway"], version: 4, at: 3.5))
        take(Self.event("step_skipped", ["step_id": "deploy", "reason": "upstream failed"], version: 4, at: 3.5))
        take(Self.event("workflow_failed", ["error": "test failed"], version: 4, at: 3.5))
        #expect(
            lines == [
                "00:00:00 execution e1 RUNNING",
                "00:00:00 step build RUNNING",
                "00:00:00 step nap RUNNING",
                "00:00:01 step build COMPLETED in 1.2s",
                "00:00:01 step test RUNNING",
                "00:00:01 step nap AWAITING_EVENT until 00:01:05",
                "00:00:02 step deploy AWAITING_EVENT event ext-1",
                "00:00:03 step test FAILED in 2.3s: no way",
                "00:00:03 step deploy SKIPPED: upstream failed",
                "00:00:03 execution e1 FAILED in 3.5s: test failed",
            ])
        #expect(!lines.contains(where: Self.hasControl))
    }

    @Test func theEndOfTheExecutionComesAfterItsStepsFromAStoredState() {
        var progress = Self.pipeline()
        _ = progress.apply(Self.event("execution_started", [:], version: 1, at: 0))
        let stored = RunProgress.Stored(
            version: 5, status: .completed, startedAt: Self.at(0), endedAt: Self.at(4), progress: 100,
            steps: ["build", "test", "deploy", "nap"].map { Self.state($0, .completed, started: 0, ended: 4) }, at: Self.at(4))
        let changes = progress.apply(.stored(stored))
        #expect(changes.count == 5)
        #expect(changes.last == .execution(.completed, at: Self.at(4)))
        #expect(progress.line(for: changes[4], style: Self.utc) == "00:00:04 execution e1 COMPLETED in 4.0s")
    }

    // MARK: ETA

    @Test func theEstimateCountsDownAndFallsBackOnTheProgress() {
        var progress = Self.pipeline()
        _ = progress.apply(Self.event("execution_started", [:], version: 1, at: 0))
        #expect(progress.secondsLeft(at: Self.at(1)) == nil)
        _ = progress.apply(Self.event("workflow_progress", ["progress": 50.0], version: 2, at: 10))
        // No estimate from the engine: 10 s for half, so 10 s more.
        #expect(progress.secondsLeft(at: Self.at(10)) == 10)
        _ = progress.apply(Self.event("workflow_progress", ["progress": 60.0, "eta_seconds": 30], version: 3, at: 12))
        #expect(progress.secondsLeft(at: Self.at(20)) == 22)
        #expect(progress.secondsLeft(at: Self.at(100)) == 0)
        let stored = RunProgress.Stored(
            version: 4, status: .running, startedAt: Self.at(0), steps: [], estimatedSecondsLeft: 7, at: Self.at(21))
        _ = progress.apply(.stored(stored))
        #expect(progress.secondsLeft(at: Self.at(22)) == 6)
        _ = progress.apply(Self.event("workflow_completed", [:], version: 5, at: 23))
        #expect(progress.secondsLeft(at: Self.at(23)) == 0)
        // Absurd values are clamped, never trapped on.
        _ = progress.apply(Self.event("workflow_progress", ["progress": .double(.infinity), "eta_seconds": 1e300], version: 6, at: 23))
    }

    // MARK: The live view

    @Test func theLiveViewShowsEveryStepAndTheOverallProgress() {
        var progress = Self.pipeline()
        _ = progress.apply(
            .stored(
                RunProgress.Stored(
                    version: 3, status: .running, startedAt: Self.at(0), progress: 40,
                    steps: [
                        Self.state("build", .completed, started: 0, ended: 1.2),
                        Self.state("test", .awaitingEvent, started: 1.2, externalID: "ext-9", deadline: 1800),
                        Self.state("nap", .awaitingEvent, started: 0, externalID: "wait_until:x", deadline: 65, action: "wait_until"),
                    ], estimatedSecondsLeft: 90, at: Self.at(5))))
        let lines = progress.frame(width: 100, height: 24, now: Self.at(5), style: Self.utc).map(\.text)
        #expect(lines.count == 6)
        #expect(lines[0] == "execution e1  RUNNING")
        #expect(lines[1].hasPrefix("+ build  COMPLETED    1.2s"))
        #expect(lines[2].hasPrefix("~ test   WAITING      3.8s  event ext-9, times out 00:30:00 (in 29m55s)"))
        #expect(lines[3].hasPrefix(". deploy PENDING            after test"))
        #expect(lines[4].hasPrefix("~ nap    WAITING      5.0s  until 00:01:05 (in 1m00s)"))
        #expect(lines[5].hasPrefix("[############..................] 40%  1/4 steps  elapsed 5.0s  ETA 1m30s"))
        for line in lines { #expect(TerminalText.width(line) <= 99) }
        // Colour only when asked, and only around words the view chose.
        let coloured = progress.frame(width: 100, height: 24, now: Self.at(5), style: RunProgressStyle(unicode: true, color: true))
        #expect(coloured[1].encoded(color: true).contains("\u{1B}[32m✓\u{1B}[0m"))
        #expect(!coloured.map { $0.encoded(color: false) }.joined().contains("\u{1B}"))
    }

    @Test func aRetryingStepSaysWhenItTriesAgain() {
        var progress = Self.pipeline()
        _ = progress.apply(Self.event("step_started", ["step_id": "build", "attempt": 0], version: 1, at: 0))
        _ = progress.apply(
            Self.event("step_retrying", ["step_id": "build", "next_attempt": 1, "delay_seconds": 4.0, "error": "flaky"], version: 2, at: 1))
        let line = progress.frame(width: 100, height: 24, now: Self.at(2), style: Self.utc).map(\.text)[1]
        #expect(line.hasPrefix("r build  RETRYING     1.0s  attempt 2 at 00:00:05 (in 3s): flaky"), "\(line)")
    }

    @Test func moreStepsThanRowsShowTheActiveOnesFirst() {
        let ids = (0..<500).map { "s\($0)" }
        var progress = RunProgress(executionID: "e", definition: Self.definition(ids.map { ($0, [], "log") }))
        _ = progress.apply(
            .stored(
                RunProgress.Stored(
                    version: 2, status: .running, startedAt: Self.at(0),
                    steps: ids.enumerated().map { index, id in
                        index < 300
                            ? Self.state(id, .completed, started: 0, ended: 1)
                            : index == 450 ? Self.state(id, .running, started: 1) : Self.state(id, .pending)
                    }, at: Self.at(2))))
        let lines = progress.frame(width: 60, height: 10, now: Self.at(2), style: Self.utc).map(\.text)
        #expect(lines.count == 9)
        #expect(lines[1].hasPrefix("> s450"))
        #expect(lines[7] == "+494 more (300 settled, 194 to go)")
        #expect(lines[8].contains("300/500 steps"))
    }

    @Test(arguments: [1, 2, 3, 5, 8, 13, 21, 40, 79, 200])
    func anyTerminalSizeGivesLinesThatFit(width: Int) {
        var progress = Self.pipeline()
        _ = progress.apply(Self.event("step_started", ["step_id": "build", "attempt": 0], version: 1, at: 0))
        _ = progress.apply(Self.event("step_awaiting_event", ["step_id": "build", "external_workflow_id": "漢字漢字漢字"], version: 2, at: 0))
        for height in [-5, 0, 1, 2, 3, 4, 6, 7, 50] {
            for ellipsis in [true, false] {
                let lines = progress.frame(
                    width: width, height: height, now: Self.at(3), style: RunProgressStyle(unicode: ellipsis, color: false))
                #expect(lines.count >= 1 && lines.count <= max(1, height - 1), "\(width)×\(height)")
                for line in lines { #expect(TerminalText.width(line.text) <= max(1, width - 1), "\(width)×\(height): \(line.text)") }
            }
        }
    }

    // MARK: Hostile input

    static let hostile = [
        "\u{1B}[2J\u{1B}[31mred", "a\nb\rc\td", "\u{9B}31m-csi", "\u{7}bell\u{8}\u{7F}", "\u{202E}txet\u{2066}x\u{2069}",
        "漢字🙂👨‍👩‍👧e\u{301}", String(repeating: "x", count: 100_000), String(repeating: "e\u{301}\u{302}\u{303}", count: 5_000),
        "\u{1B}]0;title\u{7}", "", "\u{0}", "line\u{2028}sep\u{85}nel",
    ]

    @Test func hostileTextFromTheDAGNeverReachesTheTerminal() {
        let steps = Self.hostile.enumerated().map { index, text in (id: text + "\(index)", dependsOn: [String](), action: text) }
        var progress = RunProgress(executionID: "\u{1B}[1Aid", definition: Self.definition(steps))
        var lines: [String] = []
        for (index, step) in steps.enumerated() {
            let text = Self.hostile[index]
            lines += progress.apply(Self.event("step_started", ["step_id": .string(step.id), "attempt": 0], version: 2 * index, at: 0)).map
            {
                progress.line(for: $0, style: Self.utc)
            }
            let failed: JSONObject = ["step_id": .string(step.id), "status": "FAILED", "error": .string(text)]
            let awaiting: JSONObject = ["step_id": .string(step.id), "external_workflow_id": .string(text)]
            let event =
                index % 2 == 0
                ? Self.event("step_failed", failed, version: 2 * index + 1, at: 1)
                : Self.event("step_awaiting_event", awaiting, version: 2 * index + 1, at: 1)
            lines += progress.apply(event).map { progress.line(for: $0, style: Self.utc) }
        }
        lines += progress.apply(Self.event("workflow_failed", ["error": .string(Self.hostile[0])], version: 100, at: 2)).map {
            progress.line(for: $0, style: Self.utc)
        }
        // The execution running, each step starting and failing or waiting, the execution failing.
        #expect(lines.count == 1 + 2 * Self.hostile.count + 1)
        for line in lines {
            #expect(!Self.hasControl(line), "\(line.debugDescription)")
            #expect(line.unicodeScalars.count < 1_000)
        }
        for (width, height) in [(80, 24), (10, 5), (1, 1), (300, 100)] {
            for style in [RunProgressStyle(unicode: true, color: true), Self.utc] {
                for line in progress.frame(width: width, height: height, now: Self.at(3), style: style) {
                    #expect(!Self.hasControl(line.text))
                    #expect(TerminalText.width(line.text) <= max(1, width - 1))
                    // The only escapes are the view's own colours.
                    let stripped = line.encoded(color: true).replacing(/\x{1B}\[[0-9]+m/, with: "")
                    #expect(!Self.hasControl(stripped))
                }
            }
        }
    }

    @Test func cleaningKeepsTextButNoControls() {
        #expect(TerminalText.clean("\u{1B}[31mred\u{1B}[0m") == "[31mred[0m")
        #expect(TerminalText.clean("a\nb\tc") == "a b c")
        #expect(TerminalText.clean("\u{202E}abc") == "abc")
        #expect(TerminalText.clean("漢字🙂") == "漢字🙂")
        #expect(TerminalText.clean("abcdef", limit: 3) == "abc…")
        #expect(TerminalText.clean("abc", limit: -1) == "…")
    }

    @Test func widthsAndCuts() {
        #expect(TerminalText.width("abc") == 3)
        #expect(TerminalText.width("漢字") == 4)
        #expect(TerminalText.width("🙂") == 2)
        #expect(TerminalText.width("e\u{301}") == 1)
        #expect(TerminalText.truncate("abcdef", to: 4) == "abc…")
        #expect(TerminalText.truncate("漢字漢字", to: 5) == "漢字…")
        #expect(TerminalText.truncate("abc", to: 3) == "abc")
        #expect(TerminalText.truncate("abc", to: 0) == "")
        #expect(TerminalText.truncate("abcdef", to: 2, ellipsis: "...") == "ab")
        #expect(TerminalText.fit("ab", to: 4) == "ab  ")
    }

    @Test func durationsAndClockTimes() {
        #expect(RunProgress.duration(0.44) == "0.4s")
        #expect(RunProgress.duration(12.34) == "12.3s")
        #expect(RunProgress.duration(59.96) == "1m00s")
        #expect(RunProgress.duration(245) == "4m05s")
        #expect(RunProgress.duration(7_380) == "2h03m")
        #expect(RunProgress.duration(273_600) == "3d04h")
        #expect(RunProgress.duration(-1) == "0.0s")
        #expect(RunProgress.duration(.nan) == "0.0s")
        #expect(RunProgress.duration(.infinity) == "0.0s")
        #expect(RunProgress.duration(1e300) == "9999d00h")
        #expect(RunProgress.countdown(0.2) == "1s")
        #expect(RunProgress.countdown(59.5) == "1m00s")
        #expect(RunProgress.countdown(.nan) == "0s")
        #expect(RunProgress.clock(Self.at(3_723), Self.utc) == "01:02:03")
        #expect(RunProgress.clock(.distantFuture, Self.utc).count == 8)
        #expect(RunProgress.clock(Date(timeIntervalSince1970: -1), Self.utc) == "23:59:59")
    }

    // MARK: Choosing the output

    @Test func theModeFollowsStdoutAndJSON() {
        let term = ["TERM": "xterm"]
        #expect(RunProgressMode.auto.resolved(json: false, stdoutIsTerminal: true, environment: term) == .live)
        #expect(RunProgressMode.auto.resolved(json: false, stdoutIsTerminal: false, environment: term) == .plain)
        #expect(RunProgressMode.auto.resolved(json: false, stdoutIsTerminal: true, environment: ["TERM": "dumb"]) == .plain)
        #expect(RunProgressMode.auto.resolved(json: false, stdoutIsTerminal: true, environment: [:]) == .plain)
        #expect(RunProgressMode.auto.resolved(json: true, stdoutIsTerminal: true, environment: term) == .none)
        #expect(RunProgressMode.live.resolved(json: false, stdoutIsTerminal: false, environment: [:]) == .live)
        #expect(RunProgressMode.none.resolved(json: false, stdoutIsTerminal: true, environment: term) == .none)
    }

    @Test func colourAndSymbolsFollowTheEnvironment() {
        let utf8 = ["TERM": "xterm-256color", "LANG": "en_US.UTF-8"]
        #expect(RunProgressStyle.forStandardOutput(isTerminal: true, environment: utf8).color)
        #expect(RunProgressStyle.forStandardOutput(isTerminal: true, environment: utf8).unicode)
        #expect(!RunProgressStyle.forStandardOutput(isTerminal: true, environment: utf8.merging(["NO_COLOR": "1"]) { $1 }).color)
        #expect(RunProgressStyle.forStandardOutput(isTerminal: true, environment: utf8.merging(["NO_COLOR": ""]) { $1 }).color)
        #expect(!RunProgressStyle.forStandardOutput(isTerminal: false, environment: utf8).color)
        #expect(!RunProgressStyle.forStandardOutput(isTerminal: true, environment: ["TERM": "dumb"]).color)
        #expect(!RunProgressStyle.forStandardOutput(isTerminal: true, environment: utf8.merging(["LC_ALL": "C"]) { $1 }).unicode)
    }
}
