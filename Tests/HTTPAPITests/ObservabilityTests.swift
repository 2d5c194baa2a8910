import BudJSON
import Foundation
import Testing
import _BudPipelineTestSupport

/// `GET /metrics`, the request log and its correlation id, against a real server process.
@Suite("Metrics and request logs")
struct ObservabilityTests {
    static let token = "metrics-test-token"

    /// A log step, then the Greeter plugin's `greet`.
    static let pipeline: JSONValue = [
        "pipeline_definition": [
            "name": "observed",
            "steps": [
                ["id": "first", "name": "first", "action": "log", "params": ["message": "hello"]],
                ["id": "second", "name": "second", "action": "greet", "params": ["name": "metrics"], "depends_on": ["first"]],
            ],
        ]
    ]

    @Test("/metrics needs the token, parses as Prometheus text, and counts one execution exactly", arguments: TestBackend.available)
    func metricsCountOneExecution(backend: TestBackend) async throws {
        try await APIServerProcess.with(backend, environment: ["APP_API_TOKEN": Self.token, "LOG_LEVEL": "info"]) { server in
            #expect(try await server.send("GET", "/metrics", authenticated: false).status == 401)
            #expect(try await server.send("GET", "/metrics", headers: ["dapr-api-token": "wrong"], authenticated: false).status == 401)

            let started = try await server.send("POST", "/executions/run", json: Self.pipeline, headers: ["X-Request-ID": "trace-42.a:b"])
            #expect(started.status == 201, "\(started.text)")
            #expect(started.headers["x-request-id"] == "trace-42.a:b")
            let id = try #require(started.json["execution_id"]?.stringValue)
            #expect(try await server.finished(id)["status"]?.stringValue == "COMPLETED")

            // Prometheus sends its credentials as a bearer token.
            let scrape = try await server.send(
                "GET", "/metrics", headers: ["Authorization": "Bearer \(Self.token)"], authenticated: false)
            #expect(scrape.status == 200)
            #expect(scrape.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
            let exposition = try PrometheusText(scrape.text)

            #expect(exposition["budpipeline_executions_started_total"] == 1)
            #expect(exposition["budpipeline_executions_finished_total", ["status": "completed"]] == 1)
            #expect(exposition["budpipeline_executions_finished_total", ["status": "failed"]] == nil)
            #expect(exposition["budpipeline_execution_duration_seconds_count", ["status": "completed"]] == 1)
            for (action, outcome) in [("log", "started"), ("log", "completed"), ("greet", "started"), ("greet", "completed")] {
                #expect(
                    exposition["budpipeline_step_transitions_total", ["action": action, "outcome": outcome]] == 1, "\(action) \(outcome)")
            }
            #expect(exposition["budpipeline_step_duration_seconds_count", ["action": "greet", "outcome": "completed"]] == 1)
            #expect(exposition["budpipeline_plugin_calls_total", ["plugin": "greeter", "outcome": "completed"]] == 1)
            #expect(exposition["budpipeline_plugin_call_duration_seconds_count", ["plugin": "greeter"]] == 1)
            #expect(exposition["budpipeline_http_requests_total", ["method": "POST", "route": "/executions/run", "status": "201"]] == 1)
            #expect(exposition["budpipeline_http_requests_total", ["method": "GET", "route": "/metrics", "status": "401"]] == 2)
            #expect((exposition["budpipeline_transitions_total"] ?? 0) >= 2)
            #expect(exposition["budpipeline_plugin_healthy", ["plugin": "greeter"]] == 1)
            #expect(exposition["budpipeline_db_writable"] == 1)
            #expect(exposition["budpipeline_outbox_pending"] == 0)
            #expect(exposition["budpipeline_executions_in_memory"] == 0)
            let pool = backend == .postgres ? "postgres" : "sqlite_writer"
            #expect((exposition["budpipeline_db_queue_wait_seconds_count", ["pool": pool]] ?? 0) > 0)
            #expect((exposition["process_resident_memory_bytes"] ?? 0) > 1_000_000)
            #expect((exposition["process_open_fds"] ?? 0) > 0)
            #expect(exposition.types["budpipeline_http_request_duration_seconds"] == "histogram")
            #expect(exposition.types["budpipeline_executions_started_total"] == "counter")
            #expect(exposition.helps["budpipeline_executions_started_total"]?.isEmpty == false)

            // The request's log line: method, route, status, duration and the caller's id.
            let logged = server.process.output.split(separator: "\n").first {
                $0.contains("request_id=trace-42.a:b") && $0.contains(" request")
            }
            let line = try #require(logged, "no request line in:\n\(server.process.output.suffix(3000))")
            for part in ["method=POST", "route=/executions/run", "status=201", "duration_ms="] {
                #expect(line.contains(part), "\(line)")
            }
        }
    }

    @Test("a correlation id that is not safe is replaced, and unmatched routes and odd methods keep the labels bounded")
    func unsafeCorrelationIDsAndUnmatchedRoutes() async throws {
        try await APIServerProcess.with(.sqlite) { server in
            let unsafe = try await server.send("GET", "/health", headers: ["X-Request-ID": String(repeating: "x", count: 200)])
            let replaced = try #require(unsafe.headers["x-request-id"])
            #expect(replaced.count == 16 && replaced.allSatisfy(\.isHexDigit))
            let spaced = try await server.send("GET", "/health", headers: ["X-Correlation-ID": "a b"])
            #expect(spaced.headers["x-request-id"]?.contains(" ") == false)
            for index in 0..<30 { _ = try await server.send("GET", "/no/such/route/\(index)") }
            _ = try await server.send("BREW", "/executions")
            let exposition = try PrometheusText(try await server.send("GET", "/metrics").text)
            let unmatched = exposition.samples.filter { $0.name == "budpipeline_http_requests_total" && $0.labels["route"] == "unmatched" }
            #expect(unmatched.reduce(0) { $0 + $1.value } >= 30)
            #expect(!exposition.samples.contains { $0.labels["route"]?.hasPrefix("/no/such") == true })
            #expect(!exposition.samples.contains { $0.labels["method"] == "BREW" })
        }
    }

    @Test("text logs show control characters escaped: a step's message cannot forge a log line")
    func textLogsEscapeControlCharacters() async throws {
        try await APIServerProcess.with(.sqlite, environment: ["LOG_LEVEL": "info"]) { server in
            let forged = "hello\n2026-12-05T17:30:00+0000 critical budpipeline.serve: FORGED\r\u{1b}[2J"
            let run: JSONValue = [
                "pipeline_definition": [
                    "name": "forge",
                    "steps": [["id": "s1\nforged-step", "name": "s", "action": "log", "params": ["message": .string(forged)]]],
                ]
            ]
            let started = try await server.send("POST", "/executions/run", json: run)
            let id = try #require(started.json["execution_id"]?.stringValue, "\(started.text)")
            _ = try await server.finished(id)
            try await Task.sleep(for: .milliseconds(200))
            let lines = server.process.output.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(!lines.contains { $0.hasPrefix("2026-12-05T17:30:00+0000 critical") || $0.hasPrefix("forged-step") })
            #expect(server.process.output.contains("hello\\u{a}2026-12-05T17:30:00+0000 critical"), "\(server.process.output.suffix(1500))")
            #expect(!server.process.output.unicodeScalars.contains("\u{1b}"))
        }
    }

    @Test("LOG_FORMAT=json writes one JSON object per line; an unknown format is one line and status 1")
    func jsonLogs() async throws {
        try await APIServerProcess.with(.sqlite, environment: ["LOG_FORMAT": "json", "LOG_LEVEL": "info"]) { server in
            _ = try await server.send("GET", "/executions", headers: ["X-Request-ID": "json-1"])
            try await Task.sleep(for: .milliseconds(200))
            let lines = server.process.output.split(separator: "\n")
            #expect(!lines.isEmpty)
            var sawRequest = false
            for line in lines {
                let object = try JSONValue(parsing: String(line))
                #expect(object["timestamp"]?.stringValue != nil && object["level"]?.stringValue != nil, "\(line)")
                if object["message"]?.stringValue == "request", object["request_id"]?.stringValue == "json-1" {
                    sawRequest = true
                    #expect(object["route"]?.stringValue == "/executions")
                    #expect(object["status"]?.stringValue == "200")
                }
            }
            #expect(sawRequest, "\(server.process.output.suffix(2000))")
        }
        let refused = try await ProcessRunner.run(
            Repository.executable, ["serve", "--port", "0"],
            environment: ["LOG_FORMAT": "xml", "DATABASE_URL": "sqlite:///\(NSTemporaryDirectory())bp-log-\(UUID().uuidString).sqlite"],
            timeout: .seconds(60))
        #expect(refused.status != 0)
        let lines = refused.standardError.split(separator: "\n")
        #expect(lines.count == 1 && lines.first?.contains("LOG_FORMAT=xml is not one of text, json") == true, "\(lines)")
    }
}

extension ObservabilityTests {
    @Test("a worker with a port serves /health, /ready and /metrics, and nothing else")
    func workerOperationsPort() async throws {
        let database = try await TestDatabase.make(.sqlite, migrated: true)
        let process = try BackgroundProcess(
            Repository.executable, ["worker", "--port", "0"],
            environment: [
                "DATABASE_URL": database.url, "BUDPIPELINE_PLUGIN_DIRS": Repository.productsDirectory, "LOG_LEVEL": "notice",
                "APP_API_TOKEN": Self.token,
            ])
        guard await process.waitForOutput("serving HTTP"), let range = process.output.range(of: "address=127.0.0.1:"),
            let port = Int(process.output[range.upperBound...].prefix { $0.isNumber })
        else {
            await process.stop()
            await database.close()
            Issue.record("the worker did not serve: \(process.output)")
            return
        }
        let worker = APIServerProcess(
            process: process, database: database, baseURL: "http://127.0.0.1:\(port)", port: port, appToken: Self.token)
        #expect(try await worker.send("GET", "/health", authenticated: false).status == 200)
        #expect(try await worker.send("GET", "/ready", authenticated: false).status == 200)
        #expect(try await worker.send("GET", "/metrics", authenticated: false).status == 401)
        let scrape = try await worker.send("GET", "/metrics")
        #expect(scrape.status == 200)
        #expect(try PrometheusText(scrape.text)["budpipeline_db_writable"] == 1)
        #expect(try await worker.send("GET", "/executions").status == 404)
        #expect(try await worker.send("POST", "/executions/run", json: Self.pipeline).status == 404)
        #expect(try await worker.send("GET", "/openapi.json").status == 404)
        #expect(await process.stop() == 0, "\(process.output)")
        await database.close()
    }
}

/// Prometheus text format 0.0.4, as read by a scraper: every line a comment (`# HELP`, `# TYPE`)
/// or a sample `name{label="value",…} number`; anything else fails the parse.
struct PrometheusText {
    struct Sample {
        let name: String
        let labels: [String: String]
        let value: Double
    }

    var samples: [Sample] = []
    var types: [String: String] = [:]
    var helps: [String: String] = [:]

    struct ParseError: Error, CustomStringConvertible {
        let description: String
    }

    init(_ text: String) throws {
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst(7).split(separator: " ")
                guard parts.count == 2, ["counter", "gauge", "histogram", "summary", "untyped"].contains(String(parts[1])) else {
                    throw ParseError(description: "bad TYPE line: \(line)")
                }
                types[String(parts[0])] = String(parts[1])
            } else if line.hasPrefix("# HELP ") {
                let rest = line.dropFirst(7)
                let name = rest.prefix { $0 != " " }
                helps[String(name)] = String(rest.dropFirst(name.count).drop { $0 == " " })
            } else if line.hasPrefix("#") {
                continue
            } else {
                samples.append(try Self.sample(line))
            }
        }
        for sample in samples {
            let family = types.keys.first { sample.name == $0 || sample.name.hasPrefix($0 + "_") }
            guard family != nil else { throw ParseError(description: "no TYPE for \(sample.name)") }
        }
    }

    private static func sample(_ line: Substring) throws -> Sample {
        let name = line.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }
        guard !name.isEmpty, name.first?.isNumber == false else { throw ParseError(description: "bad sample: \(line)") }
        var rest = line.dropFirst(name.count)
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                let label = rest.prefix { $0 != "=" }
                rest = rest.dropFirst(label.count)
                guard rest.hasPrefix("=\"") else { throw ParseError(description: "bad label in: \(line)") }
                rest = rest.dropFirst(2)
                var value = ""
                while let character = rest.first, character != "\"" {
                    rest = rest.dropFirst()
                    if character == "\\", let escaped = rest.first {
                        rest = rest.dropFirst()
                        value.append(escaped == "n" ? "\n" : escaped)
                    } else {
                        value.append(character)
                    }
                }
                guard rest.first == "\"" else { throw ParseError(description: "unterminated label in: \(line)") }
                rest = rest.dropFirst()
                labels[String(label)] = value
                if rest.first == "," { rest = rest.dropFirst() }
                guard !rest.isEmpty else { throw ParseError(description: "unterminated labels in: \(line)") }
            }
            rest = rest.dropFirst()
        }
        let fields = rest.split(separator: " ")
        guard (1...2).contains(fields.count), let value = Double(fields[0]) ?? (fields[0] == "+Inf" ? .infinity : nil) else {
            throw ParseError(description: "bad value in: \(line)")
        }
        return Sample(name: String(name), labels: labels, value: value)
    }

    /// The value of the series of `name` with exactly `labels`.
    subscript(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }
}
