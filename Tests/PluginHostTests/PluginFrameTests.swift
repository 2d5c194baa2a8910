import BudJSON
import PluginSchema
import Testing

@testable import BudPipelineHost

/// What the server reads from a plugin process, without a process: frames with oversized
/// headers are refused before they are parsed, log lines stay single lines, and a flood of log
/// lines is cut to a rate.
@Suite struct PluginFrameTests {
    private func body(of frame: PluginFrame) -> [UInt8] { Array(frame.encoded().dropFirst(4)) }

    @Test func aHeaderPastItsKindsLimitIsRefusedAndOthersAreRead() throws {
        let limits = PluginFrame.HeaderLimits(small: 100, messages: 1000)
        let longLine = PluginFrame(.log, header: ["message": .string(String(repeating: "x", count: 200))])
        #expect(throws: PluginFrameError.self) { try PluginFrame(body: body(of: longLine), headerLimits: limits) }
        // The same header is fine on a result, which may carry an error message.
        let result = PluginFrame(.result, id: 7, header: ["error": .string(String(repeating: "x", count: 200))], blob: [1, 2])
        #expect(try PluginFrame(body: body(of: result), headerLimits: limits) == result)
        // Without limits, only the frame's own bound counts.
        #expect(try PluginFrame(body: body(of: longLine)) == longLine)
    }

    @Test func theDefaultLimitsLeaveRoomForTheLongestLineEvenWhenEscaped() throws {
        let limits = PluginFrame.HeaderLimits(logLineBytes: 8 << 10, errorBytes: 64 << 10)
        let controls = String(repeating: "\u{1}", count: 8 << 10)
        let line = PluginFrame(.log, header: ["level": "info", "message": .string(controls)])
        #expect(try PluginFrame(body: body(of: line), headerLimits: limits) == line)
    }

    @Test func aLogLineNeverStartsAnotherLine() {
        #expect(LogLine.singleLine("plain text\twith a tab") == "plain text\twith a tab")
        #expect(LogLine.singleLine("one\nFAKE level=critical") == "one\\nFAKE level=critical")
        #expect(LogLine.singleLine("a\r\nb\u{1B}[31m\u{2028}c\u{85}") == "a\\r\\nb\\u{1B}[31m\\u{2028}c\\u{85}")
        #expect(LogLine.singleLine("") == "")
    }

    @Test func aFloodOfLogLinesIsCutToTheRateAndTheDropsAreCounted() {
        var limiter = LogLimiter()
        let start = ContinuousClock.now
        var admitted = 0
        for _ in 0..<(Int(LogLimiter.burst) + 500) where limiter.admit(now: start) != nil { admitted += 1 }
        #expect(admitted == Int(LogLimiter.burst))
        // A second later the rate's worth is admitted again; the first says how many were lost.
        #expect(limiter.admit(now: start + .seconds(1)) == 500)
        var later = 1
        while limiter.admit(now: start + .seconds(1)) != nil { later += 1 }
        #expect(later == Int(LogLimiter.perSecond))
    }
}
