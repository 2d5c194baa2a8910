import BudJSON
import Foundation
import _BudPipelineTestSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A `budpipeline serve` process on a free loopback port, over a fresh database of one backend,
/// and a small HTTP client for it.
struct APIServerProcess: APIServing {
    let process: BackgroundProcess
    let database: TestDatabase
    let baseURL: String
    let port: Int
    /// The server's `APP_API_TOKEN`, which ``send(_:_:body:headers:authenticated:)`` presents.
    var appToken: String?

    /// `launcher` runs the server through another program: `["/bin/sh", "-c", "…; exec \"$0\" \"$@\""]`.
    static func with(
        _ backend: TestBackend, environment: [String: String] = [:], launcher: [String] = [],
        _ body: (APIServerProcess) async throws -> Void
    ) async throws {
        let database = try await TestDatabase.make(backend, migrated: false)
        let server: APIServerProcess
        do {
            server = try await launch(database, environment: environment, launcher: launcher)
        } catch {
            await database.close()
            throw error
        }
        let process = server.process
        do {
            try await body(server)
        } catch {
            await process.stop()
            await database.close()
            throw error
        }
        let status = await process.stop()
        await database.close()
        guard status == 0 else { throw ServerError("the server exited with \(status.map(String.init) ?? "no status"):\n\(process.output)") }
    }

    /// Starts a server over `database` (migrating it) on `port` (0: a free one), through
    /// `launcher` when there is one.
    static func launch(
        _ database: TestDatabase, environment: [String: String] = [:], port: Int = 0, launcher: [String] = []
    ) async throws -> APIServerProcess {
        let arguments = ["serve", "--migrate", "--port", String(port)]
        let process = try BackgroundProcess(
            launcher.first ?? Repository.executable,
            launcher.isEmpty ? arguments : Array(launcher.dropFirst()) + [Repository.executable] + arguments,
            environment: [
                "DATABASE_URL": database.url, "BUDPIPELINE_PLUGIN_DIRS": Repository.productsDirectory, "LOG_LEVEL": "notice",
            ].merging(environment) { _, new in new })
        guard await process.waitForOutput("serving HTTP"), let bound = Self.port(in: process.output) else {
            await process.stop()
            throw ServerError("the server did not start:\n\(process.output)")
        }
        return APIServerProcess(
            process: process, database: database, baseURL: "http://127.0.0.1:\(bound)", port: bound, appToken: environment["APP_API_TOKEN"])
    }

    /// The port of the `serving HTTP` line, logged as text or as JSON (`LOG_FORMAT=json`).
    private static func port(in output: String) -> Int? {
        guard let range = output.range(of: "address=127.0.0.1:") ?? output.range(of: "\"address\":\"127.0.0.1:") else { return nil }
        return Int(output[range.upperBound...].prefix { $0.isNumber })
    }

}

struct ServerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// What the HTTP tests need of a running server, whether it runs in a process of its own
/// (``APIServerProcess``) or in the test process (``InProcessAPIServer``): its address and app
/// token, and a small HTTP client for it.
protocol APIServing: Sendable {
    var baseURL: String { get }
    var port: Int { get }
    var database: TestDatabase { get }
    /// The server's `APP_API_TOKEN`, which ``send(_:_:body:headers:authenticated:)`` presents.
    var appToken: String? { get }
}

struct APIReply {
    let status: Int
    let text: String
    /// Header fields by lower-case name.
    var headers: [String: String] = [:]
    var json: JSONValue { (try? JSONValue(parsing: text)) ?? .null }
}

extension APIServing {
    typealias Reply = APIReply

    /// Sends a request; `body` is raw text (so malformed JSON can be sent too). The server's app
    /// token goes in `dapr-api-token` unless `authenticated` is false or `headers` name one.
    func send(
        _ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:], authenticated: Bool = true
    ) async throws -> Reply {
        guard let url = URL(string: baseURL + path) else { throw ServerError("bad path \(path)") }
        var request = URLRequest(url: url)
        request.httpMethod = method
        if authenticated, let appToken { request.setValue(appToken, forHTTPHeaderField: "dapr-api-token") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let body {
            request.httpBody = Data(body.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        guard let http = response as? HTTPURLResponse else { throw ServerError("no HTTP response") }
        let headers = Dictionary(http.allHeaderFields.map { ("\($0.key)".lowercased(), "\($0.value)") }) { first, _ in first }
        return Reply(status: http.statusCode, text: String(decoding: data, as: UTF8.self), headers: headers)
    }

    func send(
        _ method: String, _ path: String, json: JSONValue, headers: [String: String] = [:], authenticated: Bool = true
    ) async throws -> Reply {
        try await send(method, path, body: json.serializedString(), headers: headers, authenticated: authenticated)
    }

    /// Polls `GET /executions/{id}` until it has finished.
    func finished(_ executionID: String) async throws -> JSONValue {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let execution = try await send("GET", "/executions/\(executionID)").json
            if let status = execution["status"]?.stringValue, ["COMPLETED", "FAILED", "CANCELLED"].contains(status) { return execution }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ServerError("execution \(executionID) did not finish in 30 s")
    }
}
