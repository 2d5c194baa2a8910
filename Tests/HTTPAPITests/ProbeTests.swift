import BudJSON
import Foundation
import Testing
import _BudPipelineTestSupport

/// `/health` and `/ready` exercise the store with a deadline, and report disk space and the
/// outbox backlog.
@Suite("Health and readiness probes")
struct ProbeTests {
    @Test("the probes touch the store and report its latency, the disk and the outbox", arguments: TestBackend.available)
    func healthyProbes(backend: TestBackend) async throws {
        try await APIServerProcess.with(backend) { server in
            let ready = try await server.send("GET", "/ready")
            #expect(ready.status == 200, "\(ready.text)")
            #expect(ready.json["status"] == "ready" && ready.json["database_connected"] == true && ready.json["database_writable"] == true)
            #expect(ready.json["database_latency_ms"]?.doubleValue != nil, "\(ready.text)")
            let health = try await server.send("GET", "/health")
            #expect(health.status == 200 && health.json["status"] == "healthy", "\(health.text)")
            #expect(health.json["database"] == "connected")
            #expect(health.json["outbox"]?["pending"] == 0 && health.json["outbox"]?["dead"] == 0, "\(health.text)")
            let disks = health.json["disk"]?.arrayValue ?? []
            #expect(!disks.isEmpty, "\(health.text)")
            for disk in disks {
                #expect((disk["free_bytes"]?.doubleValue ?? 0) > 0 && disk["low"] == false, "\(disk)")
            }
        }
    }

    @Test("SQLite: /ready writes, so it fails as soon as the disk is full, before any request did")
    func sqliteReadinessWrites() async throws {
        try await APIServerProcess.with(.sqlite) { server in
            #expect(try await server.send("GET", "/ready").status == 200)
            // No file of the server's may grow: a full disk. No request has written since.
            #expect(
                try await ProcessRunner.run("/usr/bin/prlimit", ["--pid", String(server.process.pid), "--fsize=1:unlimited"]).status == 0)
            let notReady = try await server.send("GET", "/ready")
            #expect(notReady.status == 503 && notReady.json["database_writable"] == false, "\(notReady.text)")
            #expect(
                try await ProcessRunner.run("/usr/bin/prlimit", ["--pid", String(server.process.pid), "--fsize=unlimited"]).status == 0)
            #expect(try await server.send("GET", "/ready").status == 200)
        }
    }

    @Test("SQLite: a data folder deleted under the server makes it not ready (writes would go to a file nobody opens again)")
    func sqliteFileDeleted() async throws {
        let folder = NSTemporaryDirectory() + "bp-deleted-\(UUID().uuidString)"
        try await APIServerProcess.with(.sqlite, environment: ["DATABASE_URL": "sqlite://\(folder)/budpipeline.sqlite"]) { server in
            #expect(try await server.send("GET", "/ready").status == 200)
            try FileManager.default.removeItem(atPath: folder)
            let notReady = try await server.send("GET", "/ready")
            #expect(notReady.status == 503 && notReady.json["database_writable"] == false, "\(notReady.text)")
            #expect(notReady.json["database_error"]?.stringValue?.contains("was deleted while in use") == true, "\(notReady.text)")
            #expect(try await server.send("GET", "/health").json["status"] == "degraded")
        }
    }

    @Test("PostgreSQL: a database that stops answering makes /ready fail within its deadline; /health still answers")
    func postgresReadinessTimesOut() async throws {
        guard TestBackend.available.contains(.postgres) else { return }
        let database = try await TestDatabase.make(.postgres, migrated: true)
        defer { Task { await database.close() } }
        let proxy = try await StoppableProxy.start(forwardingTo: database.url)
        defer { proxy.stop() }
        try await APIServerProcess.with(.sqlite, environment: ["DATABASE_URL": proxy.url]) { server in
            #expect(try await server.send("GET", "/ready").status == 200)
            proxy.pause()
            let started = ContinuousClock.now
            let notReady = try await server.send("GET", "/ready")
            let took = ContinuousClock.now - started
            #expect(notReady.status == 503 && notReady.json["database_connected"] == false, "\(notReady.text)")
            #expect(notReady.json["database_error"]?.stringValue?.contains("did not answer") == true, "\(notReady.text)")
            #expect(took < .seconds(5), "the probe waited \(took)")
            let health = try await server.send("GET", "/health")
            #expect(health.status == 200 && health.json["status"] == "degraded" && health.json["database"] == "disconnected")
            proxy.resume()
            var ready = false
            for _ in 0..<50 where !ready {
                ready = try await server.send("GET", "/ready").status == 200
                if !ready { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(ready, "/ready did not come back once the database answered again")
        }
    }
}

/// A TCP proxy to a PostgreSQL server, in a Python process of its own: stopping that process
/// (SIGSTOP) makes the database stop answering without closing a connection.
struct StoppableProxy {
    let process: BackgroundProcess
    let url: String

    static let script = """
        import socket, sys, threading
        target = (sys.argv[1], int(sys.argv[2]))
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        print("listening", server.getsockname()[1], flush=True)
        def pump(source, sink):
            try:
                while True:
                    data = source.recv(65536)
                    if not data:
                        break
                    sink.sendall(data)
            except OSError:
                pass
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        while True:
            client, _ = server.accept()
            upstream = socket.create_connection(target)
            threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
        """

    static func start(forwardingTo url: String) async throws -> StoppableProxy {
        guard let components = URLComponents(string: url), let host = components.host, let port = components.port else {
            throw ServerError("cannot read host and port from \(url)")
        }
        let process = try BackgroundProcess("/usr/bin/python3", ["-c", script, host, String(port)], environment: [:])
        guard await process.waitForOutput("listening "),
            let line = process.output.split(separator: "\n").first(where: { $0.hasPrefix("listening ") }),
            let proxyPort = Int(line.dropFirst("listening ".count))
        else {
            await process.stop()
            throw ServerError("the proxy did not start: \(process.output)")
        }
        var proxied = components
        proxied.port = proxyPort
        return StoppableProxy(process: process, url: proxied.string ?? url)
    }

    func pause() { kill(process.pid, SIGSTOP) }
    func resume() { kill(process.pid, SIGCONT) }
    func stop() {
        kill(process.pid, SIGCONT)
        kill(process.pid, SIGKILL)
    }
}
