/// A build made at most once per test process, however many tests ask for it at once: the first
/// caller starts it, the others wait for the same result (a failure included).
public actor BuildOnce {
    private let make: @Sendable () async throws -> String
    private var build: Task<String, any Error>?

    public init(_ make: @escaping @Sendable () async throws -> String) {
        self.make = make
    }

    /// What the build produced (a path).
    public func path() async throws -> String {
        if let build { return try await build.value }
        let task = Task { try await make() }
        build = task
        return try await task.value
    }
}
