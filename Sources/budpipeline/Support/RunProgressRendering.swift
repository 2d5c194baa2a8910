import Foundation
import PipelineEngine

/// How the progress views draw: with which characters, whether in colour, and in which time zone
/// clock times are told.
struct RunProgressStyle: Sendable, Equatable {
    /// Unicode symbols and bar (else ASCII only).
    var unicode = false
    /// ANSI colours (SGR) around symbols and status words.
    var color = false
    var timeZone = TimeZone.gmt

    var ellipsis: String { unicode ? "…" : "~" }
}

/// A run of text in one colour.
struct RunProgressSpan: Sendable, Equatable {
    enum Tone: Sendable, Equatable {
        case plain, dim, bold, green, red, yellow, cyan
    }

    var text: String
    var tone: Tone = .plain

    init(_ text: String, _ tone: Tone = .plain) {
        self.text = text
        self.tone = tone
    }
}

/// One line of the live view, cut to the terminal's width.
struct RunProgressLine: Sendable, Equatable {
    var spans: [RunProgressSpan]

    /// The text without colours.
    var text: String { spans.map(\.text).joined() }

    /// The line as written: with each coloured span between an SGR colour and a reset when
    /// `color`, else the bare text. The spans' text holds no control character (it was cleaned
    /// and built from fixed words), so this is the only escape sequence in it.
    func encoded(color: Bool) -> String {
        guard color else { return text }
        return spans.map { span in
            let code: String? =
                switch span.tone {
                case .plain: nil
                case .dim: "2"
                case .bold: "1"
                case .green: "32"
                case .red: "31"
                case .yellow: "33"
                case .cyan: "36"
                }
            guard let code, !span.text.isEmpty else { return span.text }
            return "\u{1B}[\(code)m\(span.text)\u{1B}[0m"
        }.joined()
    }

    /// The line cut to `columns` columns (see ``TerminalText/truncate(_:to:ellipsis:)``), the
    /// ellipsis in the tone of the span it cuts.
    func truncated(to columns: Int, ellipsis: String) -> RunProgressLine {
        var left = max(0, columns)
        var result: [RunProgressSpan] = []
        let total = TerminalText.width(text)
        guard total > left else { return self }
        let room = left - TerminalText.width(ellipsis)
        left = max(0, room)
        for span in spans {
            let width = TerminalText.width(span.text)
            if width <= left {
                result.append(span)
                left -= width
                continue
            }
            let cut = TerminalText.truncate(span.text, to: left, ellipsis: "")
            result.append(RunProgressSpan(cut + (room >= 0 ? ellipsis : ""), span.tone))
            return RunProgressLine(spans: result)
        }
        return RunProgressLine(spans: result)
    }
}

extension RunProgress {
    /// The live view at `now` for a terminal of `width` columns and `height` rows: a header, one
    /// line per step (symbol, id, status, duration — so far, for a step under way — and what it
    /// waits for or why it failed), and the overall progress bar with the percentage, the steps
    /// done, the time elapsed and the ETA (see ``secondsLeft(at:)``).
    ///
    /// Guarantees: every line is at most `width - 1` columns (at least 1), so that no line wraps;
    /// there are at most `height - 1` lines (at least 1), so that the view can be redrawn in place
    /// without scrolling; when the steps do not fit, the running and waiting ones come first, then
    /// the failed, the pending and the rest, and a "+N more" line counts those left out. Any
    /// `width`, `height` and `now` are accepted.
    func frame(width: Int, height: Int, now: Date, style: RunProgressStyle) -> [RunProgressLine] {
        let columns = max(1, width - 1)
        let rows = max(1, height - 1)
        let footer = footerLine(columns: columns, now: now, style: style)
        guard rows >= 2 else { return [footer.truncated(to: columns, ellipsis: style.ellipsis)] }
        let header = headerLine(style: style)
        var shown: [Int]
        var more: RunProgressLine?
        if steps.count + 2 <= rows {
            shown = Array(steps.indices)
        } else {
            let room = max(0, rows - 3)
            let order = displayPriority()
            shown = Array(order.prefix(room))
            let hidden = order.dropFirst(room)
            let done = hidden.filter { steps[$0].status.isSettled }.count
            more = RunProgressLine(spans: [
                RunProgressSpan("+\(hidden.count) more (\(done) settled, \(hidden.count - done) to go)", .dim)
            ])
        }
        let idWidth = min(max(4, shown.map { TerminalText.width(steps[$0].id) }.max() ?? 4), max(4, columns / 3))
        var lines = rows >= 3 ? [header] : []
        lines += shown.map { stepLine(steps[$0], idWidth: idWidth, now: now, style: style) }
        if let more { lines.append(more) }
        lines.append(footer)
        return lines.suffix(rows).map { $0.truncated(to: columns, ellipsis: style.ellipsis) }
    }

    /// The line for `change` when stdout is not a terminal: `HH:MM:SS step ID STATUS …` or
    /// `HH:MM:SS execution ID STATUS …`, without colour or any control character.
    func line(for change: Change, style: RunProgressStyle) -> String {
        switch change {
        case .execution(let status, let at):
            var line = "\(Self.clock(at, style)) execution \(executionID) \(status.rawValue)"
            if status.isFinished, let startedAt {
                line += " in \(Self.duration(max(0, (endedAt ?? at).timeIntervalSince(startedAt))))"
            }
            if status == .failed || status == .cancelled, let error { line += ": \(error)" }
            return line
        case .step(let step, let at):
            var line = "\(Self.clock(at, style)) step \(step.id) \(step.status.rawValue)"
            switch step.status {
            case .running:
                if step.attempt > 0 { line += " (attempt \(step.attempt + 1))" }
            case .completed:
                if let duration = step.duration(at: at) { line += " in \(Self.duration(duration))" }
            case .failed, .timedOut, .cancelled:
                if let duration = step.duration(at: at) { line += " in \(Self.duration(duration))" }
                if let error = step.error { line += ": \(error)" }
            case .skipped:
                if let error = step.error { line += ": \(error)" }
            case .awaitingEvent, .retrying:
                line += " " + waitDetail(step, now: at, style: style, relative: false)
            case .pending:
                break
            }
            return line
        }
    }

    // MARK: Parts

    private func headerLine(style: RunProgressStyle) -> RunProgressLine {
        RunProgressLine(spans: [
            RunProgressSpan("execution ", .dim), RunProgressSpan(executionID, .bold), RunProgressSpan("  "),
            RunProgressSpan(status.rawValue, Self.tone(of: status)),
        ])
    }

    private func footerLine(columns: Int, now: Date, style: RunProgressStyle) -> RunProgressLine {
        let percent = progress.isFinite ? Int(min(100, max(0, progress)).rounded(.down)) : 0
        let settled = steps.filter { $0.status.isSettled }.count
        var tail = " \(percent)%  \(settled)/\(steps.count) steps"
        let elapsed = startedAt.map { max(0, (endedAt ?? now).timeIntervalSince($0)) }
        if status.isFinished {
            tail += "  \(status.rawValue)" + (elapsed.map { " in \(Self.duration($0))" } ?? "")
        } else {
            if let elapsed { tail += "  elapsed \(Self.duration(elapsed))" }
            tail += "  ETA " + (secondsLeft(at: now).map(Self.countdown) ?? "unknown")
        }
        let barWidth = min(30, columns - TerminalText.width(tail) - 2)
        guard barWidth >= 5 else { return RunProgressLine(spans: [RunProgressSpan(String(tail.dropFirst()))]) }
        let filled = min(barWidth, max(0, barWidth * percent / 100))
        let (full, empty) = style.unicode ? ("█", "░") : ("#", ".")
        return RunProgressLine(spans: [
            RunProgressSpan("["), RunProgressSpan(String(repeating: full, count: filled), Self.tone(of: status)),
            RunProgressSpan(String(repeating: empty, count: barWidth - filled), .dim), RunProgressSpan("]"), RunProgressSpan(tail),
        ])
    }

    private func stepLine(_ step: Step, idWidth: Int, now: Date, style: RunProgressStyle) -> RunProgressLine {
        let tone = Self.tone(of: step.status)
        let duration = step.duration(at: now).map(Self.duration) ?? ""
        var spans = [
            RunProgressSpan(Self.symbol(step.status, style), tone), RunProgressSpan(" "),
            RunProgressSpan(TerminalText.fit(step.id, to: idWidth, ellipsis: style.ellipsis)), RunProgressSpan(" "),
            RunProgressSpan(TerminalText.fit(Self.word(step.status), to: 9), tone),
            RunProgressSpan(" " + String(repeating: " ", count: max(0, 7 - duration.count)) + duration),
        ]
        let detail = detail(step, now: now, style: style)
        if !detail.isEmpty { spans.append(RunProgressSpan("  " + detail, step.status.isSettled ? .dim : .plain)) }
        return RunProgressLine(spans: spans)
    }

    /// What the step waits for, how far it got, or why it ended as it did.
    private func detail(_ step: Step, now: Date, style: RunProgressStyle) -> String {
        switch step.status {
        case .pending:
            let waiting = step.dependencies.filter { steps.indices.contains($0) && !steps[$0].status.isSettled }
            guard !waiting.isEmpty else { return step.attempt > 0 ? "attempt \(step.attempt + 1) queued" : "" }
            return "after " + waiting.map { steps[$0].id }.joined(separator: ", ")
        case .running:
            var parts: [String] = []
            if step.progress > 0 { parts.append("\(Int(step.progress.rounded(.down)))%") }
            if step.attempt > 0 { parts.append("attempt \(step.attempt + 1)") }
            return parts.joined(separator: ", ")
        case .awaitingEvent, .retrying:
            return waitDetail(step, now: now, style: style, relative: true)
        case .completed:
            return step.attempt > 0 ? "attempt \(step.attempt + 1)" : ""
        case .failed, .timedOut, .cancelled, .skipped:
            return step.error ?? ""
        }
    }

    /// For an awaiting step: the event awaited and when it times out (a `wait_until` step: when it
    /// wakes); for a retrying step: the next attempt, when it is due, and why the last failed.
    private func waitDetail(_ step: Step, now: Date, style: RunProgressStyle, relative: Bool) -> String {
        func when(_ date: Date) -> String {
            let clock = Self.clock(date, style)
            guard relative else { return clock }
            let left = date.timeIntervalSince(now)
            return left > 0 ? "\(clock) (in \(Self.countdown(left)))" : "\(clock) (due)"
        }
        if step.status == .retrying {
            var text = "attempt \(step.attempt + 2)" + (step.retryAt.map { " at " + when($0) } ?? " soon")
            if let error = step.error { text += ": \(error)" }
            return text
        }
        if step.action == "wait_until" { return step.deadline.map { "until " + when($0) } ?? "waiting" }
        var text = "event " + (step.externalWorkflowID ?? "?")
        if let deadline = step.deadline { text += ", times out " + when(deadline) }
        return text
    }

    /// The steps in the order they are shown when not all fit: running and waiting, failed,
    /// pending, then the rest; in definition order within each.
    private func displayPriority() -> [Int] {
        func group(_ index: Int) -> Int {
            switch steps[index].status {
            case .running, .awaitingEvent, .retrying: 0
            case .failed, .timedOut: 1
            case .pending: 2
            case .completed, .skipped, .cancelled: 3
            }
        }
        return steps.indices.sorted { (group($0), $0) < (group($1), $1) }
    }

    // MARK: Words

    static func word(_ status: StepStatus) -> String {
        status == .awaitingEvent ? "WAITING" : status.rawValue
    }

    static func symbol(_ status: StepStatus, _ style: RunProgressStyle) -> String {
        switch status {
        case .pending: style.unicode ? "·" : "."
        case .running: style.unicode ? "▶" : ">"
        case .awaitingEvent: style.unicode ? "◆" : "~"
        case .retrying: style.unicode ? "↻" : "r"
        case .completed: style.unicode ? "✓" : "+"
        case .failed, .timedOut: style.unicode ? "✗" : "x"
        case .skipped, .cancelled: "-"
        }
    }

    static func tone(of status: StepStatus) -> RunProgressSpan.Tone {
        switch status {
        case .pending, .skipped, .cancelled: .dim
        case .running: .cyan
        case .awaitingEvent, .retrying: .yellow
        case .completed: .green
        case .failed, .timedOut: .red
        }
    }

    static func tone(of status: ExecutionStatus) -> RunProgressSpan.Tone {
        switch status {
        case .pending: .dim
        case .running: .cyan
        case .completed: .green
        case .failed, .cancelled: .red
        }
    }

    /// `0.4s`, `12.3s` (to the nearest tenth), `4m05s`, `2h03m`, `3d04h` (cut down); anything
    /// negative or not finite is `0.0s`, anything beyond 9,999 days that.
    static func duration(_ seconds: Double) -> String {
        let seconds = seconds.isFinite ? min(max(0, seconds), 9_999 * 86_400) : 0
        let tenths = Int((seconds * 10).rounded())
        if tenths < 600 { return "\(tenths / 10).\(tenths % 10)s" }
        let whole = max(60, Int(seconds.rounded(.down)))
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        if whole < 3_600 { return "\(whole / 60)m\(two(whole % 60))s" }
        if whole < 86_400 { return "\(whole / 3_600)h\(two(whole % 3_600 / 60))m" }
        return "\(whole / 86_400)d\(two(whole % 86_400 / 3_600))h"
    }

    /// A time still to go, in whole seconds rounded up: `3s`, `4m05s`, `2h03m` (see ``duration(_:)``).
    static func countdown(_ seconds: Double) -> String {
        let seconds = seconds.isFinite ? min(max(0, seconds), 9_999 * 86_400).rounded(.up) : 0
        return seconds < 60 ? "\(Int(seconds))s" : duration(seconds)
    }

    /// `HH:MM:SS` of `date` in the style's time zone.
    static func clock(_ date: Date, _ style: RunProgressStyle) -> String {
        let local = date.timeIntervalSince1970 + Double(style.timeZone.secondsFromGMT(for: date))
        guard local.isFinite, abs(local) < 1e15 else { return "--:--:--" }
        let day = 86_400
        let second = ((Int(local.rounded(.down)) % day) + day) % day
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(two(second / 3_600)):\(two(second % 3_600 / 60)):\(two(second % 60))"
    }
}
