import Synchronization

/// `body`'s value, or `nil` when it throws or has not returned within `limit`.
///
/// Returns at the deadline even when `body` does not end then: work blocked on a database that
/// stopped answering cannot be interrupted, so `body` runs in a task of its own, which is
/// cancelled at the deadline (database work still queued then leaves the queue) and left to end
/// by itself. The wait for the deadline ends as soon as `body` returns.
func withTimeout<Value: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> Value) async -> Value? {
    let outcome = Mutex<CheckedContinuation<Value?, Never>?>(nil)
    let finish: @Sendable (Value?) -> Void = { value in
        outcome.withLock { continuation in
            continuation?.resume(returning: value)
            continuation = nil
        }
    }
    let work = Task { try? await body() }
    let timer = Task {
        // Cancelled: `body` returned first (or the caller was cancelled) and answered already.
        do { try await Task.sleep(for: limit) } catch { return }
        work.cancel()
        finish(nil)
    }
    return await withTaskCancellationHandler {
        await withCheckedContinuation { continuation in
            outcome.withLock { $0 = continuation }
            Task {
                let value = await work.value
                finish(value)
                timer.cancel()
            }
        }
    } onCancel: {
        work.cancel()
        timer.cancel()
        finish(nil)
    }
}

/// `body`'s value read from the store within `limit`, or why not: its error, or that the store
/// did not answer in time (see ``withTimeout(_:_:)``).
func readWithin<Value: Sendable>(
    _ limit: Duration, _ body: @escaping @Sendable () async throws -> Value
) async -> Result<Value, ProbeFailure> {
    let outcome = await withTimeout(limit) { () async -> Result<Value, ProbeFailure> in
        do {
            return .success(try await body())
        } catch {
            return .failure(ProbeFailure(message: "\(error)"))
        }
    }
    return outcome ?? .failure(ProbeFailure(message: "the database did not answer within \(limit.components.seconds) s"))
}
