import BudJSON
import Foundation
import Testing
import _BudPipelineTestSupport

/// Containment of the HTTP server, against a real `budpipeline serve` over loopback: a port
/// already in use, SIGTERM, connections that send too slowly, more connections than the limit,
/// and a live stream that must outlive the idle timeout. Timings are bounded generously: the
/// checks are that things end, not how fast.
@Suite("Connections and shutdown", .serialized)
struct ConnectionLimitTests {
    @Test("a port already in use ends serve at once with one line saying so, and a non-zero status")
    func portInUse() async throws {
        let holder = try PortHolder()
        let database = try await TestDatabase.make(.sqlite, migrated: false)
        defer { Task { await database.close() } }
        let started = ContinuousClock.now
        let process = try BackgroundProcess(
            Repository.executable, ["serve", "--migrate", "--port", String(holder.port)],
            environment: ["DATABASE_URL": database.url, "BUDPIPELINE_PLUGIN_DIRS": Repository.productsDirectory, "LOG_LEVEL": "notice"])
        while process.isRunning, ContinuousClock.now - started < .seconds(30) {
            try await Task.sleep(for: .milliseconds(20))
        }
        let elapsed = ContinuousClock.now - started
        let status = await process.stop(timeout: .seconds(5))
        let lines = process.output.split(separator: "\n")
        let saying = lines.filter { $0.contains("address already in use") }
        #expect(status != nil && status != 0, "\(process.output)")
        #expect(saying == ["Error: cannot listen on 127.0.0.1:\(holder.port): address already in use"], "\(process.output)")
        #expect(!lines.contains { $0.contains("serving HTTP") })
        // Startup (migrations, plugins) included; the failure itself takes well under a second.
        #expect(elapsed < .seconds(15), "serve took \(elapsed) to give up")
    }

    @Test("SIGTERM stops a serve with an idle connection and an open live stream, with status 0, within the grace period")
    func sigterm() async throws {
        let database = try await TestDatabase.make(.sqlite, migrated: false)
        defer { Task { await database.close() } }
        let server = try await APIServerProcess.launch(database, environment: WorkflowEventTests.environment)
        do {
            let idle = try RawConnection(port: server.port)
            idle.send("GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
            #expect(await idle.response(timeout: .seconds(20))?.status == 200)
            let request = String(UUID().uuidString.prefix(8).lowercased())
            let executionID = try await WorkflowEventTests.run(WorkflowEventTests.diamond(request: request), on: server)
            _ = try await WorkflowEventTests.awaiting("approve", of: executionID, on: server)
            let stream = try RawConnection(port: server.port)
            stream.send(
                "GET /executions/\(executionID)/stream HTTP/1.1\r\nHost: test\r\ndapr-api-token: \(WorkflowEventTests.token)\r\n\r\n")
            #expect(await stream.wait(timeout: .seconds(20)) { text, _ in text.contains("event: snapshot") })

            let stopping = ContinuousClock.now
            let status = await server.process.stop(timeout: .seconds(40))
            let elapsed = ContinuousClock.now - stopping
            #expect(status == 0, "\(server.process.output)")
            #expect(elapsed < .seconds(10), "the stop took \(elapsed)")
            let streamClosed = await stream.waitForClose(timeout: .seconds(5))
            let idleClosed = await idle.waitForClose(timeout: .seconds(5))
            #expect(streamClosed && idleClosed)
        } catch {
            await server.process.stop()
            throw error
        }
    }

    @Test("a header that never ends is closed after the idle timeout, a body trickled a byte a second after the request timeout")
    func slowClients() async throws {
        let environment = ["BUDPIPELINE_HTTP_IDLE_TIMEOUT_SECONDS": "2", "BUDPIPELINE_HTTP_REQUEST_TIMEOUT_SECONDS": "3"]
        try await APIServerProcess.with(.sqlite, environment: environment) { server in
            #expect(server.process.output.contains("idle_timeout_seconds=2") && server.process.output.contains("request_timeout_seconds=3"))

            let header = try RawConnection(port: server.port)
            let opened = ContinuousClock.now
            header.send("GET /health HTTP/1.1\r\nHost: test\r\nX-Slow: ")
            #expect(await header.waitForClose(timeout: .seconds(30)), "a half-sent header was never closed")
            #expect(ContinuousClock.now - opened >= .seconds(1.5))
            #expect(header.text.isEmpty, "no answer to a request that never arrived")

            let body = try RawConnection(port: server.port)
            let headed = ContinuousClock.now
            body.send("POST /validate HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
            var sentBytes = 0
            while !body.isClosed, ContinuousClock.now - headed < .seconds(30) {
                guard body.send(" ") else { break }
                sentBytes += 1
                _ = await body.wait(timeout: .seconds(1)) { _, closed in closed }
            }
            #expect(await body.waitForClose(timeout: .seconds(5)), "a trickled body was never closed")
            #expect(sentBytes >= 2, "bytes arriving more often than the idle timeout kept it open until the request timeout")
            #expect(ContinuousClock.now - headed < .seconds(30))

            #expect(try await server.send("GET", "/health").status == 200)
        }
    }

    @Test("beyond the connection limit derived from a low descriptor limit: 503 SERVER_BUSY, the same process, and service again")
    func connectionLimit() async throws {
        raiseDescriptorLimit()
        // 400 descriptors: 400 - 256 reserved = 144 connections.
        let launcher = ["/bin/sh", "-c", "ulimit -n 400 && exec \"$0\" \"$@\""]
        try await APIServerProcess.with(.sqlite, environment: ["BUDPIPELINE_HTTP_IDLE_TIMEOUT_SECONDS": "60"], launcher: launcher) {
            server in
            #expect(server.process.output.contains("descriptor_limit=400"), "\(server.process.output)")
            #expect(server.process.output.contains("max_connections=144"), "\(server.process.output)")
            let pid = server.process.pid

            var open: [RawConnection] = []
            var served = 0
            var busy = 0
            var other: [String] = []
            for _ in 0..<300 {
                let connection = try RawConnection(port: server.port)
                connection.send("GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
                guard let response = await connection.response(timeout: .seconds(30)) else {
                    other.append("no answer")
                    continue
                }
                switch response.status {
                case 200:
                    served += 1
                    open.append(connection)
                case 503:
                    busy += 1
                    let json = (try? JSONValue(parsing: response.body)) ?? .null
                    let head = response.head.lowercased()
                    let closed = await connection.waitForClose(timeout: .seconds(10))
                    if json["code"] != "SERVER_BUSY" || json["message"]?.stringValue == nil || !head.contains("retry-after: 1")
                        || !head.contains("connection: close") || !closed
                    {
                        other.append("a 503 unlike the others: \(response.head) \(response.body)")
                    }
                default:
                    other.append("\(response.status)")
                }
            }
            #expect(served == 144 && busy == 156, "served \(served), busy \(busy)")
            #expect(other.isEmpty, "\(other.prefix(5))")
            #expect(server.process.isRunning && server.process.pid == pid)

            for connection in open { connection.close() }
            let deadline = ContinuousClock.now + .seconds(20)
            var health = 0
            while health != 200, ContinuousClock.now < deadline {
                health = (try? await server.send("GET", "/health").status) ?? 0
                if health != 200 { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(health == 200)
            // A fresh connection is served once the server has seen the others close (on a busy
            // machine it may take a moment to account for all of them: 503 until then).
            var fresh = 0
            let freshDeadline = ContinuousClock.now + .seconds(20)
            while fresh != 200, ContinuousClock.now < freshDeadline {
                let again = try RawConnection(port: server.port)
                again.send("GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                fresh = await again.response(timeout: .seconds(10))?.status ?? 0
                again.close()
                if fresh != 200 { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(fresh == 200, "a new connection is served once the others closed")
        }
    }

    @Test("with a connection limit above the descriptor limit, accepting pauses before descriptors run out, and never crashes")
    func descriptorsRunOut() async throws {
        raiseDescriptorLimit()
        let launcher = ["/bin/sh", "-c", "ulimit -n 300 && exec \"$0\" \"$@\""]
        try await APIServerProcess.with(.sqlite, environment: ["BUDPIPELINE_MAX_CONNECTIONS": "1000"], launcher: launcher) { server in
            #expect(server.process.output.contains("leaves fewer than 256 descriptors"), "\(server.process.output)")
            let pid = server.process.pid
            // More than the server can hold open. It stops accepting before its descriptors run
            // out (the rest wait in the kernel's queue): a process out of descriptors can be
            // ended by the system's thread pool (libdispatch traps when it cannot read a worker
            // thread's /proc state), which a hostile review saw happen under load.
            var idle: [RawConnection] = []
            for _ in 0..<400 { idle.append(try RawConnection(port: server.port)) }
            var mostOpen = 0
            for _ in 0..<20 {
                let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
                mostOpen = max(mostOpen, open)
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(mostOpen > 0 && mostOpen < 250, "the server held \(mostOpen) of its 300 descriptors")
            #expect(server.process.isRunning && server.process.pid == pid, "\(server.process.output)")

            for connection in idle { connection.close() }
            let deadline = ContinuousClock.now + .seconds(30)
            var health = 0
            while health != 200, ContinuousClock.now < deadline {
                health = (try? await server.send("GET", "/health").status) ?? 0
                if health != 200 { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(health == 200, "served again once descriptors were free")
            #expect(server.process.isRunning && server.process.pid == pid)
        }
    }

    @Test("a live stream outlives a short idle timeout: keep-alives arrive, then the execution's events")
    func streamOutlivesIdleTimeout() async throws {
        let environment = WorkflowEventTests.environment.merging(["BUDPIPELINE_HTTP_IDLE_TIMEOUT_SECONDS": "2"]) { _, new in new }
        try await APIServerProcess.with(.sqlite, environment: environment) { server in
            let request = String(UUID().uuidString.prefix(8).lowercased())
            let executionID = try await WorkflowEventTests.run(WorkflowEventTests.diamond(request: request), on: server)
            _ = try await WorkflowEventTests.awaiting("approve", of: executionID, on: server)
            let stream = try RawConnection(port: server.port)
            stream.send(
                "GET /executions/\(executionID)/stream HTTP/1.1\r\nHost: test\r\ndapr-api-token: \(WorkflowEventTests.token)\r\n\r\n")
            #expect(await stream.wait(timeout: .seconds(20)) { text, _ in text.contains("event: snapshot") })
            let opened = ContinuousClock.now
            // Keep-alives come every 15 s, far past the 2 s idle timeout.
            let kept = await stream.wait(timeout: .seconds(40)) { text, closed in closed || text.contains(": keep-alive") }
            #expect(kept && !stream.isClosed && stream.text.contains(": keep-alive"), "closed after \(ContinuousClock.now - opened)")

            let event: JSONValue = [
                "id": .string("idle-\(request)"), "type": "approval", "workflow_id": .string("approval:\(request)"), "decision": "approved",
            ]
            let delivered = try await server.send("POST", "/workflow-events", json: event, headers: WorkflowEventTests.authorized)
            #expect(delivered.json["step_completed"] == true)
            #expect(await stream.wait(timeout: .seconds(20)) { text, _ in text.contains("event: workflow_completed") })
            // The stream over, the connection is idle: the idle timeout closes it.
            #expect(await stream.waitForClose(timeout: .seconds(30)))
        }
    }
}
