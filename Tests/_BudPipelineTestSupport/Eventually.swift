import Testing

/// Waits until `condition` holds, looking every 20 ms; records an issue (and returns) when it
/// still does not after `limit`. For states that follow an action asynchronously: a process that
/// ends, a log line written by another thread.
public func eventually(within limit: Duration = .seconds(30), _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + limit
    while !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("condition not met within \(limit)")
            return
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// Waits until the asynchronous `condition` holds, looking every 20 ms; records an issue (and
/// returns) when it still does not after `limit`. For states read from a database or a server.
public func eventually(within limit: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + limit
    while try await !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("condition not met within \(limit)")
            return
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}
