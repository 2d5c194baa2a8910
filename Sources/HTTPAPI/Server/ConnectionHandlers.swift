import BudJSON
import Dispatch
import Hummingbird
import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization

/// The connections one server serves, shared by all of them: at most `maximum` are admitted at
/// once; the others are refused (see ``ConnectionGateHandler``).
final class ConnectionCounter: Sendable {
    let maximum: Int
    private let admitted = Atomic<Int>(0)
    /// Refusals since the last one that was logged, and when that was (uptime, in nanoseconds).
    private let refusals = Mutex<(count: Int, loggedAt: UInt64?)>((0, nil))

    init(maximum: Int) {
        self.maximum = maximum
    }

    /// Admits a connection unless `maximum` are admitted already; true when admitted (the caller
    /// then calls ``release()`` once, when it closes). Two connections arriving together on
    /// different threads at the limit may both be refused: never more than `maximum` are admitted.
    func admit() -> Bool {
        if admitted.wrappingAdd(1, ordering: .relaxed).newValue <= maximum { return true }
        admitted.wrappingSubtract(1, ordering: .relaxed)
        return false
    }

    func release() {
        admitted.wrappingSubtract(1, ordering: .relaxed)
    }

    /// Counts a refusal; returns how many there were since the last report when one is due (at
    /// most one every 10 s, so that a flood of connections cannot flood the log).
    func refused() -> Int? {
        let now = DispatchTime.now().uptimeNanoseconds
        return refusals.withLock { state -> Int? in
            state.count += 1
            if let last = state.loggedAt, now &- last < 10_000_000_000 { return nil }
            defer { state = (0, now) }
            return state.count
        }
    }
}

/// Admits a connection while its server serves fewer than the maximum; on a connection beyond
/// it, answers the first request `503` with `{"code": "SERVER_BUSY", …}`, `Connection: close` and
/// `Retry-After: 1`, and closes the connection once that request has arrived (the idle timeout
/// closes one whose request never completes). Nothing a refused connection sends reaches the
/// application.
final class ConnectionGateHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let counter: ConnectionCounter
    private let logger: Logger
    private var admitted = false
    private var answered = false

    init(counter: ConnectionCounter, logger: Logger) {
        self.counter = counter
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        admitted = counter.admit()
        if !admitted, let refused = counter.refused() {
            logger.warning(
                "refusing connections: the server serves its maximum",
                metadata: ["max_connections": "\(counter.maximum)", "refused": "\(refused)"])
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if admitted { counter.release() }
        admitted = false
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !admitted else {
            context.fireChannelRead(data)
            return
        }
        switch unwrapInboundIn(data) {
        case .head:
            guard !answered else { return }
            answered = true
            let body = ByteBuffer(string: Self.busyBody(maximum: counter.maximum))
            var head = HTTPResponse(status: .serviceUnavailable)
            head.headerFields[.contentType] = "application/json"
            head.headerFields[.contentLength] = String(body.readableBytes)
            head.headerFields[.connection] = "close"
            head.headerFields[.retryAfter] = "1"
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(body)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        case .body:
            break
        case .end:
            context.close(promise: nil)
        }
    }

    /// The answer's body, in the shape of every API error.
    static func busyBody(maximum: Int) -> String {
        APIError(
            .serviceUnavailable, code: "SERVER_BUSY",
            message: "The server is serving its maximum of \(maximum) connections; try again shortly"
        ).body.serializedString()
    }
}

/// Closes a connection whose request body has not arrived in full within `timeout` of its
/// header. (The idle timeout alone would not: every body byte that arrives counts as activity,
/// so a body trickled a byte at a time would hold the connection for ever.)
final class RequestDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            deadline?.cancel()
            deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
                guard let self, self.deadline != nil else { return }
                self.deadline = nil
                context.close(promise: nil)
            }
        case .body:
            break
        case .end:
            deadline?.cancel()
            deadline = nil
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }
}
