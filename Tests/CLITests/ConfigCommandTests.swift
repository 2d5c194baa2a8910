import Foundation
import Testing
import _BudPipelineTestSupport

/// `--config FILE`, `BUDPIPELINE_CONFIG` and `budpipeline config check`.
@Suite("Configuration file")
struct ConfigCommandTests {
    static func file(_ text: String, extension name: String = "yaml") throws -> String {
        let path = NSTemporaryDirectory() + "bp-config-\(UUID().uuidString).\(name)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Runs `config check` without the test process's own settings in the way.
    static func check(_ arguments: [String], environment: [String: String] = [:]) async throws -> ProcessOutput {
        try await ProcessRunner.run(
            Repository.executable, ["config", "check"] + arguments, environment: environment,
            removingEnvironment: ["DATABASE_URL", "APP_API_TOKEN", "LOG_LEVEL", "LOG_FORMAT", "PORT", "HOST", "PSQL_POOL_SIZE"].filter {
                environment[$0] == nil
            },
            timeout: .seconds(60))
    }

    static func row(_ output: String, _ key: String) -> [Substring]? {
        output.split(separator: "\n").first { $0.hasPrefix(key + " ") }?.split(separator: " ", omittingEmptySubsequences: true)
    }

    @Test("a good file: values from the file under the environment, secrets redacted, status 0")
    func goodFile() async throws {
        let path = try Self.file(
            """
            server:
              port: 9123
              app_api_token: file-secret-token
            database:
              url: postgresql://bud:db-password@db:5432/budpipeline
              pool_size: 20
            plugins:
              dirs: [/opt/a, /opt/b]
            retries:
              backoff_multiplier: 2.5
            retention:
              # days: 30
            dapr:
              http_endpoint: http://admin:hunter22@dapr:3500
            logging:
              format: json
              level: null
            """)
        // An empty variable is unset: the file's token applies.
        let result = try await Self.check(["--config", path], environment: ["PSQL_POOL_SIZE": "30", "APP_API_TOKEN": ""])
        #expect(result.status == 0, "\(result.standardError)")
        let output = result.standardOutput
        #expect(Self.row(output, "server.port") == ["server.port", "PORT", "9123", "file"])
        #expect(Self.row(output, "database.pool_size") == ["database.pool_size", "PSQL_POOL_SIZE", "30", "env"])
        #expect(Self.row(output, "plugins.dirs")?[2] == "/opt/a:/opt/b")
        #expect(Self.row(output, "retries.backoff_multiplier")?[2] == "2.5")
        #expect(Self.row(output, "server.app_api_token")?[2] == "***" && Self.row(output, "server.app_api_token")?[3] == "file")
        #expect(Self.row(output, "dapr.http_endpoint")?[2] == "http://***@dapr:3500")
        #expect(!output.contains("hunter22"))
        #expect(Self.row(output, "logging.level")?[3] == "default")
        #expect(Self.row(output, "database.url")?[2] == "postgresql://bud:***@db:5432/budpipeline")
        #expect(!output.contains("file-secret-token") && !output.contains("db-password"))
        #expect(!result.standardError.contains("file-secret-token") && !result.standardError.contains("db-password"))

        // BUDPIPELINE_CONFIG names the file too.
        let named = try await Self.check([], environment: ["BUDPIPELINE_CONFIG": path])
        #expect(named.status == 0 && Self.row(named.standardOutput, "server.port")?[2] == "9123")
    }

    @Test(
        "a bad file is refused with one line naming what is wrong",
        arguments: [
            ("server:\n  prot: 1\n", "unknown setting 'server.prot'"),
            ("port: 1\n", "'port' must be a section"),
            ("server:\n  port: [1, 2]\n", "'server.port' takes one value, not a list"),
            ("server:\n  host:\n    name: x\n", "'server.host' must be a single value"),
            ("plugins:\n  dirs: ['a:b']\n", "every element of 'plugins.dirs' must be one value without ':'"),
            ("server: [\n", "invalid YAML"),
            ("- a\n- b\n", "must be a mapping of sections"),
            // Found by a hostile review: a NUL would cut the value short in the environment.
            ("server:\n  app_api_token: \"ab\\0cdefgh\"\n", "'server.app_api_token' holds a control character"),
            ("server:\n  host: \"127.0.0.1\\nforged\"\n", "'server.host' holds a control character"),
            ("{\"server\": {\"port\": 9000}, \"server\": {\"host\": \"h\"}}", "invalid YAML"),
        ])
    func badFile(text: String, message: String) async throws {
        let path = try Self.file(text, extension: text.hasPrefix("{") ? "json" : "yaml")
        let result = try await Self.check(["--config", path])
        #expect(result.status != 0)
        let lines = result.standardError.split(separator: "\n")
        #expect(lines.count == 1 && lines.first?.contains(message) == true, "\(lines)")
    }

    @Test("every invalid value is one line naming the file key that set it; status 1")
    func badValues() async throws {
        let path = try Self.file(
            """
            server:
              port: 70000
            logging:
              format: xml
            database:
              pool_size: 0
              auto_migrate: perhaps
            metrics:
              enabled: sometimes
            """)
        let result = try await Self.check(["--config", path])
        #expect(result.status == 1)
        let errors = result.standardError.split(separator: "\n").filter { $0.hasPrefix("Error: ") }
        for expected in [
            "PORT=70000 is not a port number (set by server.port",
            "LOG_FORMAT=xml is not one of text, json (set by logging.format",
            "PSQL_POOL_SIZE must be a whole number from 1 to 200, not '0' (set by database.pool_size",
            "AUTO_MIGRATE=perhaps is not true or false (set by database.auto_migrate",
            "BUDPIPELINE_METRICS=sometimes is not true or false (set by metrics.enabled",
        ] {
            #expect(errors.contains { $0.contains(expected) }, "missing \(expected) in \(errors)")
        }
        #expect(errors.count == 5, "\(errors)")
    }

    @Test("a file larger than 1 MiB is refused without being read whole; a bad PSQL_PORT is one line")
    func hugeFileAndBadPort() async throws {
        let path = NSTemporaryDirectory() + "bp-config-\(UUID().uuidString).yaml"
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 1 << 32)  // sparse: 4 GiB that take no disk
        try handle.close()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let huge = try await Self.check(["--config", path])
        #expect(huge.status != 0 && huge.standardError.contains("larger than 1048576 bytes"), "\(huge.standardError)")
        let port = try await Self.check([], environment: ["PSQL_HOST": "db", "PSQL_PORT": "-5"])
        #expect(port.status == 1)
        #expect(port.standardError.contains("Error: PSQL_PORT=-5 is not a port number"), "\(port.standardError)")
    }

    @Test("a missing file, and a misspelt variable, are reported")
    func missingFileAndUnknownVariable() async throws {
        let missing = try await Self.check(["--config", "/nonexistent/budpipeline.yaml"])
        #expect(missing.status != 0 && missing.standardError.contains("cannot read the configuration file /nonexistent/budpipeline.yaml"))
        let typo = try await Self.check([], environment: ["BUDPIPELINE_MAX_CONECTIONS": "10"])
        #expect(typo.status == 0)
        #expect(typo.standardError.contains("warning: BUDPIPELINE_MAX_CONECTIONS is not a setting of budpipeline"))
    }

    @Test("the server takes its settings from the file; the environment wins over it")
    func serveWithFile() async throws {
        let data = NSTemporaryDirectory() + "bp-config-serve-\(UUID().uuidString)"
        let path = try Self.file(
            """
            database:
              url: sqlite://\(data)/db.sqlite
            logging:
              format: json
              level: info
            server:
              port: 0
            """)
        let process = try BackgroundProcess(
            Repository.executable, ["serve", "--migrate", "--config", path],
            environment: ["LOG_LEVEL": "notice", "BUDPIPELINE_PLUGIN_DIRS": Repository.productsDirectory])
        let started = await process.waitForOutput("serving HTTP")
        await process.stop()
        #expect(started, "\(process.output)")
        #expect(FileManager.default.fileExists(atPath: data + "/db.sqlite"))
        let lines = process.output.split(separator: "\n")
        #expect(lines.first?.hasPrefix("{") == true, "JSON logs from the file: \(lines.prefix(3))")
        // LOG_LEVEL=notice from the environment wins over the file's info.
        #expect(!lines.contains { $0.contains("\"level\":\"info\"") }, "\(lines.prefix(5))")
    }

    @Test("the catalog and the settings tables of the docs agree: every setting has its variable and file key in one row")
    func documented() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let catalog = try String(
            contentsOf: root.appendingPathComponent("Sources/budpipeline/Settings/SettingsCatalog.swift"), encoding: .utf8)
        let docs = try ["docs/operations.md", "docs/plugins.md"].map {
            try String(contentsOf: root.appendingPathComponent($0), encoding: .utf8)
        }.joined(separator: "\n")
        let rows = docs.split(separator: "\n").filter { $0.hasPrefix("|") }
        let pattern = #/Setting\(variable: "([A-Z0-9_]+)", key: "([a-z0-9_.]+)"/#
        var count = 0
        for match in catalog.matches(of: pattern) {
            count += 1
            let (variable, key) = (String(match.output.1), String(match.output.2))
            #expect(rows.contains { $0.contains("`\(variable)`") && $0.contains("`\(key)`") }, "\(variable) / \(key) is not documented")
        }
        #expect(count > 60)
    }
}
