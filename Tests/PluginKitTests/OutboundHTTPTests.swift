import BudJSON
import BudPipelineHost
import Foundation
import PipelineRuntime
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A server that answers every connection with bytes the test writes itself, so that a test can
/// send what no well-behaved server sends: a body that trickles, an oversized one, a redirect.
final class RawHTTPServer: Sendable {
    let port: Int
    private let listener: Int32
    private let accepted = Atomic<Int>(0)

    /// How many connections the server took.
    var connections: Int { accepted.load(ordering: .acquiring) }

    init(answer: @escaping @Sendable (_ write: (String) -> Bool) -> Void) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(listener, socketAddress, length) == 0 && listen(listener, 16) == 0
                    && getsockname(listener, socketAddress, &length) == 0
            }
        }
        guard listener >= 0, bound else { throw POSIXError(.EADDRNOTAVAIL) }
        self.listener = listener
        self.port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }
                accepted.add(1, ordering: .releasing)
                // Read the request head (the tests send small requests), then answer.
                var buffer = [UInt8](repeating: 0, count: 65_536)
                _ = read(client, &buffer, buffer.count)
                answer { text in
                    let bytes = Array(text.utf8)
                    return bytes.withUnsafeBytes { write(client, $0.baseAddress, $0.count) } == bytes.count
                }
                close(client)
            }
        }
        thread.start()
    }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }
}

@Suite("Outbound HTTP")
struct OutboundHTTPTests {
    static func invocation(timeout: Duration = .seconds(10)) throws -> ServiceInvocation {
        var invocation = try ServiceInvocation(
            appID: "budapp", method: "GET", path: "models/1", body: [], pluginName: "test", executionID: nil, stepID: nil)
        invocation.timeout = timeout
        return invocation
    }

    @Test("a body that trickles in past the deadline fails at the deadline")
    func tricklingBodyTimesOut() async throws {
        let server = try RawHTTPServer { write in
            guard write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n") else { return }
            for _ in 0..<300 {
                guard write("x") else { return }
                Thread.sleep(forTimeInterval: 0.2)
            }
        }
        defer { server.stop() }
        let invoker = DaprServiceInvoker(endpoint: "http://127.0.0.1:\(server.port)", apiToken: nil)
        let started = ContinuousClock.now
        await #expect(throws: ServiceInvocationError.self) { try await invoker.invoke(try Self.invocation(timeout: .seconds(1))) }
        // The whole body would take 60 s; the call ends at its 1 s deadline (the bound is wide: a
        // loaded machine delays the test's own threads by seconds).
        #expect(ContinuousClock.now - started < .seconds(30))
    }

    @Test("a redirect is an answer, never followed")
    func redirectsAreNotFollowed() async throws {
        let elsewhere = try RawHTTPServer { write in _ = write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") }
        defer { elsewhere.stop() }
        let server = try RawHTTPServer { write in
            _ = write(
                "HTTP/1.1 302 Found\r\nConnection: close\r\nLocation: http://127.0.0.1:\(elsewhere.port)/secret\r\nContent-Length: 0\r\n\r\n"
            )
        }
        defer { server.stop() }
        let invoker = DaprServiceInvoker(endpoint: "http://127.0.0.1:\(server.port)", apiToken: nil)
        let answer = try await invoker.invoke(try Self.invocation())
        #expect(answer.statusCode == 302)
        #expect(elsewhere.connections == 0)
    }

    @Test("an answer over the limit fails instead of filling memory")
    func oversizedAnswerFails() async throws {
        let body = String(repeating: "y", count: 8192)
        let server = try RawHTTPServer { write in
            _ = write("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        }
        defer { server.stop() }
        let invoker = DaprServiceInvoker(endpoint: "http://127.0.0.1:\(server.port)", apiToken: nil, maximumAnswerBytes: 1024)
        let invocation = try Self.invocation()
        do throws(ServiceInvocationError) {
            _ = try await invoker.invoke(invocation)
            Issue.record("an oversized answer was accepted")
        } catch {
            #expect(error.message.contains("larger than 1024 bytes"), "\(error.message)")
        }
        let roomy = DaprServiceInvoker(endpoint: "http://127.0.0.1:\(server.port)", apiToken: nil)
        #expect(try await roomy.invoke(try Self.invocation()).body.count == 8192)
    }

    @Test("a publish Dapr does not finish answering fails at its timeout")
    func publishTimesOut() async throws {
        let server = try RawHTTPServer { write in
            // A head that never ends: a header line every 0.2 s for a minute.
            guard write("HTTP/1.1 204 No Content\r\n") else { return }
            for _ in 0..<300 {
                guard write("X-Pad: 1\r\n") else { return }
                Thread.sleep(forTimeInterval: 0.2)
            }
        }
        defer { server.stop() }
        let transport = DaprTransport(endpoint: "http://127.0.0.1:\(server.port)", apiToken: nil, pubsubName: "pubsub", timeout: 1)
        let started = ContinuousClock.now
        await #expect(throws: PublishError.self) {
            try await transport.publish(
                OutgoingMessage(topic: "t", body: ["a": 1], eventType: "step_completed", messageID: "m-1", executionID: nil))
        }
        #expect(ContinuousClock.now - started < .seconds(30))
    }
}
