import ArgumentParser
import Foundation
import PipelineEngine
import PipelineRuntime
import Storage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `budpipeline run --progress`: what the command shows on stdout while its execution runs.
enum RunProgressMode: String, CaseIterable, ExpressibleByArgument, Sendable {
    /// A live view on a terminal, plain lines otherwise, nothing with `--json`.
    case auto
    /// The live view, redrawn in place with ANSI escapes.
    case live
    /// One line per change, no escape codes.
    case plain
    /// Nothing until the result.
    case none

    /// The output to use: `auto` is `none` with `--json`, `live` when stdout is a terminal whose
    /// `TERM` is set and not `dumb`, else `plain`. The others are what they say (`--json` with
    /// `live` or `plain` is refused by the command before this is asked).
    func resolved(json: Bool, stdoutIsTerminal: Bool, environment: [String: String]) -> RunProgressMode {
        guard self == .auto else { return self }
        if json { return .none }
        let term = environment["TERM"] ?? ""
        return stdoutIsTerminal && !term.isEmpty && term != "dumb" ? .live : .plain
    }
}

extension RunProgressStyle {
    /// The style for stdout: Unicode when the locale's character set is UTF-8 (the first of
    /// `LC_ALL`, `LC_CTYPE`, `LANG` that is set); colour only on a terminal whose `TERM` is set and
    /// not `dumb`, and only when `NO_COLOR` is not set (or empty, as no-color.org says).
    static func forStandardOutput(isTerminal: Bool, environment: [String: String], timeZone: TimeZone = .current) -> RunProgressStyle {
        let locale = ["LC_ALL", "LC_CTYPE", "LANG"].lazy.compactMap { environment[$0] }.first { !$0.isEmpty } ?? ""
        let term = environment["TERM"] ?? ""
        return RunProgressStyle(
            unicode: locale.lowercased().contains("utf-8") || locale.lowercased().contains("utf8"),
            color: isTerminal && !term.isEmpty && term != "dumb" && (environment["NO_COLOR"] ?? "").isEmpty,
            timeZone: timeZone)
    }
}

/// Shows an execution's progress on stdout while `budpipeline run` waits for it, as a live view
/// redrawn in place or as plain lines (see ``RunProgress``, which decides what is shown).
///
/// It follows the runtime's live event bus — the events `GET /executions/{id}/stream` sends,
/// handed over right after each transition commits — so a change shows within a redraw. The
/// events do not carry everything the view shows (an awaiting step's deadline, the engine's ETA,
/// steps abandoned when an execution fails), so the execution is also read from the store (one
/// read of the execution with its steps): at once when an awaited event, a resync or the end
/// comes in, at most four times a second after other events, every five seconds regardless (as
/// the stream checks with each keep-alive), and once more at the end for the final view. The
/// reads are events' consequences, not a poll in place of them.
struct RunProgressReporter: Sendable {
    let runtime: ExecutionRuntime
    let executionID: ExecutionID
    let definition: PipelineDefinition?
    /// `.live` or `.plain` (``RunProgressMode/none`` shows nothing).
    let mode: RunProgressMode
    let style: RunProgressStyle

    /// The least time between two redraws of the live view (at most ten a second).
    static let redrawInterval = Duration.milliseconds(100)
    /// The least time between two store reads that events asked for.
    static let readInterval = Duration.milliseconds(250)
    /// The longest time without a store read.
    static let checkInterval = Duration.seconds(5)

    private enum Item: Sendable {
        case message(EventBus.Message)
        case tick
        case end
    }

    /// Shows the progress from `messages` (a subscription to the execution's events on the
    /// runtime's bus, made before it started) until `ended` finishes, then shows the final state
    /// as stored and returns. Writes only to stdout; never throws.
    func run(messages: AsyncStream<EventBus.Message>, ended: AsyncStream<Void>) async {
        let (items, sink) = AsyncStream<Item>.makeStream(bufferingPolicy: .bufferingNewest(1000))
        let following = runtime.sharesDatabase
        await withDiscardingTaskGroup { group in
            if following {
                // Other processes sharing the database may commit some of its transitions: they
                // forward its events here too (as for a stream).
                group.addTask { await runtime.follow(executionID) }
            }
            group.addTask {
                for await message in messages where message.topic == nil { sink.yield(.message(message)) }
            }
            group.addTask {
                for await _ in ended {}
                sink.yield(.end)
            }
            group.addTask {
                let tick = mode == .live ? Self.redrawInterval : Self.readInterval
                while (try? await Task.sleep(for: tick)) != nil { sink.yield(.tick) }
            }
            await show(items)
            group.cancelAll()
        }
        if following { runtime.unfollow(executionID) }
    }

    private func show(_ items: AsyncStream<Item>) async {
        var state = RunProgress(executionID: executionID.rawValue, definition: definition)
        var screen = LiveScreen()
        let clock = ContinuousClock()
        take(.stored(await read() ?? Self.nothingStored(at: Date())), into: &state)
        if mode == .live { screen.draw(state, style: style, force: true) }
        var lastRead = clock.now
        var readWanted = false
        for await item in items {
            switch item {
            case .message(let message):
                let resync = message.eventType == EventBus.Message.resyncEventType
                if resync || Self.eventsNeedingTheStore.contains(message.eventType), let stored = await read() {
                    // Read before the event is applied, so that its line tells what only the store knows.
                    take(.stored(stored), into: &state)
                    lastRead = clock.now
                }
                if !resync {
                    take(.event(type: message.eventType, payload: message.payload, version: message.version, at: Date()), into: &state)
                    readWanted = true
                }
            case .tick:
                break
            case .end:
                if let stored = await read() { take(.stored(stored), into: &state) }
                if mode == .live { screen.draw(state, style: style, force: true) }
                return
            }
            let sinceRead = clock.now - lastRead
            if (readWanted && sinceRead >= Self.readInterval) || sinceRead >= Self.checkInterval {
                if let stored = await read() { take(.stored(stored), into: &state) }
                lastRead = clock.now
                readWanted = false
            }
            if mode == .live { screen.draw(state, style: style, force: false) }
        }
    }

    /// Applies `input` to `state`; in plain mode, writes a line for each change it made.
    private func take(_ input: RunProgress.Input, into state: inout RunProgress) {
        let changes = state.apply(input)
        guard mode == .plain, !changes.isEmpty else { return }
        StandardOutput.write(changes.map { state.line(for: $0, style: style) + "\n" }.joined())
    }

    /// Events after which the view reads the store at once: an awaiting step's deadline, and the
    /// steps an ending execution abandoned, are told only there.
    private static let eventsNeedingTheStore: Set<String> = [
        "step_awaiting_event", "workflow_completed", "workflow_failed", "workflow_cancelled",
    ]

    /// The execution as stored now, with the engine's ETA; `nil` when it cannot be read.
    private func read() async -> RunProgress.Stored? {
        guard let found = try? await runtime.store.executions.findWithSteps(id: executionID) else { return nil }
        let now = Date()
        return RunProgress.Stored(
            execution: found.execution, steps: found.steps,
            estimatedSecondsLeft: found.execution.status.isFinished
                ? 0 : runtime.estimatedSecondsLeft(found.execution, steps: found.steps, at: now),
            at: now)
    }

    /// A stored state that changes nothing, for when the first read fails.
    private static func nothingStored(at now: Date) -> RunProgress.Stored {
        RunProgress.Stored(version: 0, status: .pending, steps: [], at: now)
    }
}

/// The live view on the terminal: the lines last drawn, redrawn in place.
struct LiveScreen {
    private var drawn: [String] = []
    private var lastDraw: ContinuousClock.Instant?

    /// Draws `state` over the previous frame — at most every ``RunProgressReporter/redrawInterval``
    /// unless `force`, and only when the frame differs. Moves the cursor up over the previous
    /// frame, rewrites each line after clearing it, and clears whatever is left below, so the
    /// frame ends with the cursor at the start of the line under it.
    mutating func draw(_ state: RunProgress, style: RunProgressStyle, force: Bool) {
        let now = ContinuousClock.now
        if !force, let lastDraw, now - lastDraw < RunProgressReporter.redrawInterval { return }
        let size = StandardOutput.terminalSize()
        let lines = state.frame(width: size.width, height: size.height, now: Date(), style: style).map { $0.encoded(color: style.color) }
        guard lines != drawn else { return }
        var text = drawn.isEmpty ? "" : "\r\u{1B}[\(drawn.count)A"
        for line in lines { text += "\u{1B}[2K" + line + "\n" }
        text += "\u{1B}[J"
        StandardOutput.write(text)
        drawn = lines
        lastDraw = now
    }
}

/// Stdout, below the buffering of `print`.
enum StandardOutput {
    /// Whether stdout is a terminal.
    static var isTerminal: Bool { isatty(STDOUT_FILENO) == 1 }

    /// The terminal's columns and rows (`TIOCGWINSZ`), else `COLUMNS` and `LINES`, else 80×24.
    static func terminalSize() -> (width: Int, height: Int) {
        var size = winsize()
        let asked = withUnsafeMutablePointer(to: &size) { ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), $0) }
        if asked == 0, size.ws_col > 0, size.ws_row > 0 { return (Int(size.ws_col), Int(size.ws_row)) }
        let environment = ProcessInfo.processInfo.environment
        let columns = environment["COLUMNS"].flatMap { Int($0) }.flatMap { (1...10_000).contains($0) ? $0 : nil }
        let lines = environment["LINES"].flatMap { Int($0) }.flatMap { (1...10_000).contains($0) ? $0 : nil }
        return (columns ?? 80, lines ?? 24)
    }

    /// Writes all of `text` (retrying after interruptions); gives up silently when stdout fails.
    static func write(_ text: String) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return -1 }
                #if canImport(Glibc)
                    return Glibc.write(STDOUT_FILENO, base + offset, buffer.count - offset)
                #else
                    return Darwin.write(STDOUT_FILENO, base + offset, buffer.count - offset)
                #endif
            }
            if written > 0 {
                offset += written
            } else if written < 0, errno == EINTR {
                continue
            } else {
                return
            }
        }
    }
}
