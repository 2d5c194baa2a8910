import Foundation

/// Times a closure in batches and reports the median time per operation.
struct Measurement {
    let name: String
    let nanosecondsPerOperation: Double

    /// Runs `operation` `iterations` times per round after a warm-up, for `rounds` rounds, and keeps
    /// the median round (robust against a noisy shared machine).
    static func run(_ name: String, iterations: Int, rounds: Int = 7, _ operation: () throws -> Void) rethrows -> Measurement {
        for _ in 0..<max(1, iterations / 10) { try operation() }
        var perOperation: [Double] = []
        for _ in 0..<rounds {
            let started = ContinuousClock.now
            for _ in 0..<iterations { try operation() }
            let elapsed = ContinuousClock.now - started
            perOperation.append(Double(elapsed.components.attoseconds) / 1e9 + Double(elapsed.components.seconds) * 1e9)
        }
        let median = perOperation.sorted()[rounds / 2] / Double(iterations)
        return Measurement(name: name, nanosecondsPerOperation: median)
    }

    /// The asynchronous counterpart of ``run(_:iterations:rounds:_:)``.
    static func run(_ name: String, iterations: Int, rounds: Int = 7, _ operation: () async throws -> Void) async rethrows -> Measurement {
        for _ in 0..<max(1, iterations / 10) { try await operation() }
        var perOperation: [Double] = []
        for _ in 0..<rounds {
            let started = ContinuousClock.now
            for _ in 0..<iterations { try await operation() }
            let elapsed = ContinuousClock.now - started
            perOperation.append(Double(elapsed.components.attoseconds) / 1e9 + Double(elapsed.components.seconds) * 1e9)
        }
        let median = perOperation.sorted()[rounds / 2] / Double(iterations)
        return Measurement(name: name, nanosecondsPerOperation: median)
    }

    var line: String {
        let figure =
            nanosecondsPerOperation >= 10_000
            ? String(format: "%8.1f µs", nanosecondsPerOperation / 1000) : String(format: "%8.0f ns", nanosecondsPerOperation)
        return "\(figure)  \(name)"
    }
}

/// Mean nanoseconds per call of `body` over `iterations` calls on this thread, after a tenth as
/// many calls to warm up.
func meanNanoseconds(iterations: Int, _ body: () -> Void) -> Double {
    for _ in 0..<(iterations / 10) { body() }
    let started = ContinuousClock.now
    for _ in 0..<iterations { body() }
    return (ContinuousClock.now - started) / .nanoseconds(1) / Double(max(1, iterations))
}
