import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// The runtime's outbound HTTP (Dapr publishing, service invocation for plugins), on one
/// async-http-client that lives as long as the process.
///
/// Guarantees:
/// - Every request has a deadline that covers connecting, sending and reading the whole answer;
///   a request past it is cancelled and fails.
/// - An answer larger than its bound fails instead of filling memory.
/// - Redirects are never followed: a called service cannot send the server on to another address.
/// - Connections are pooled per host and reused (idle ones close after 60 s); a connection that
///   cannot be made within a second fails the request.
enum OutboundHTTP {
    /// An answer: its status and body.
    struct Answer: Sendable {
        let status: Int
        let body: [UInt8]
    }

    /// Why no answer came.
    struct Failure: Error, Sendable, CustomStringConvertible {
        let description: String
    }

    /// The client: on the process's shared event loops, never shut down (a process-wide value).
    static let client = HTTPClient(
        eventLoopGroup: HTTPClient.defaultEventLoopGroup,
        configuration: HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            // The client keeps trying to connect until this passes: a refused connection (a
            // sidecar that is down) fails after a second, not after the request's whole timeout.
            // Every address it calls is the local Dapr sidecar, which accepts in microseconds.
            timeout: .init(connect: .seconds(1)),
            connectionPool: .init(idleTimeout: .seconds(60))
        )
    )

    /// Sends one request and reads its answer, all within `timeout`; answers over
    /// `maximumAnswerBytes` fail. Any HTTP status is an answer.
    static func send(
        _ method: String, to url: String, headers: [(String, String)], body: [UInt8]?, timeout: Duration, maximumAnswerBytes: Int
    ) async throws(Failure) -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let limit = timeout
        do {
            return try await withThrowingTaskGroup(of: Answer?.self) { group in
                group.addTask { [request] in
                    let response = try await client.execute(request, timeout: TimeAmount(limit))
                    let bytes = try await response.body.collect(upTo: maximumAnswerBytes)
                    return Answer(status: Int(response.status.code), body: Array(bytes.readableBytesView))
                }
                // The client's own deadline ends with the answer's head; this one covers the body.
                group.addTask {
                    try await Task.sleep(for: limit)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let answer = first else {
                    throw Failure(description: "no answer within \(limit)")
                }
                return answer
            }
        } catch let failure as Failure {
            throw failure
        } catch let error as NIOTooManyBytesError {
            throw Failure(description: "the answer is larger than \(maximumAnswerBytes) bytes (\(error))")
        } catch {
            throw Failure(description: Self.describe(error))
        }
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout: return "no answer in time"
            case .connectTimeout: return "the connection timed out"
            case .remoteConnectionClosed: return "the connection was closed before an answer"
            default: return "\(error)"
            }
        }
        return "\(error)"
    }
}
