import Foundation
import Synchronization

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

extension URLSession {
    /// `data(for:)` that fails with `URLError(.timedOut)` once `timeout` has passed without a
    /// complete answer.
    ///
    /// `URLRequest.timeoutInterval` is not enough: it bounds the idle time between bytes, and on
    /// Linux a service that holds the request open without answering is not cut off by it.
    func data(for request: URLRequest, within timeout: Duration) async throws -> (Data, URLResponse) {
        let outcome = BoundedOutcome()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let task = dataTask(with: request) { data, response, error in
                    if let data, let response {
                        outcome.finish(.success((data, response)))
                    } else {
                        outcome.finish(.failure(error ?? URLError(.badServerResponse)))
                    }
                }
                let timer = Task {
                    try await Task.sleep(for: timeout)
                    outcome.finish(.failure(URLError(.timedOut)))
                }
                outcome.start(
                    continuation,
                    cancel: {
                        timer.cancel()
                        task.cancel()
                    })
                task.resume()
            }
        } onCancel: {
            outcome.finish(.failure(CancellationError()))
        }
    }
}

/// The one outcome of a bounded request: the first of answer, timeout and cancellation wins and
/// resumes the caller; the others find it finished.
private final class BoundedOutcome: Sendable {
    private struct State {
        var continuation: CheckedContinuation<(Data, URLResponse), any Error>?
        var cancel: (@Sendable () -> Void)?
        var early: Result<(Data, URLResponse), any Error>?
        var finished = false
    }

    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<(Data, URLResponse), any Error>, cancel: @escaping @Sendable () -> Void) {
        let early = state.withLock { state -> Result<(Data, URLResponse), any Error>? in
            state.continuation = continuation
            state.cancel = cancel
            return state.early
        }
        if let early {
            cancel()
            continuation.resume(with: early)
        }
    }

    /// Finishes with `result` unless already finished; returns whether this call finished it.
    @discardableResult
    func finish(_ result: Result<(Data, URLResponse), any Error>) -> Bool {
        let waiting = state.withLock { state -> (CheckedContinuation<(Data, URLResponse), any Error>?, (@Sendable () -> Void)?)? in
            guard !state.finished else { return nil }
            state.finished = true
            guard let continuation = state.continuation else {
                state.early = result
                return (nil, nil)
            }
            return (continuation, state.cancel)
        }
        guard let (continuation, cancel) = waiting else { return false }
        cancel?()
        continuation?.resume(with: result)
        return true
    }
}
