import ArgumentParser
import DequeModule
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// `http-load`: an open-loop HTTP load at a fixed rate over keep-alive connections.
///
/// Closed-loop tools such as wrk send the next request only when the previous answer arrived, so
/// their latency at saturation is the number of connections divided by the throughput, and a stall
/// delays the requests that would have been sent meanwhile without counting them (coordinated
/// omission). Here requests are due at fixed times (`rate` per second); each is sent on a free
/// connection as soon as it is due, or waits for one, and its latency runs from the time it was due.
struct HTTPLoadBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http-load",
        abstract: "GET one URL at a fixed rate over keep-alive connections; print the rate reached and the latency percentiles."
    )

    @Option(help: "The URL to GET (http only).")
    var url: String

    @Option(help: "Keep-alive connections.")
    var connections = 64

    @Option(help: "Requests per second.")
    var rate = 8_000

    @Option(help: "Seconds measured, after the warm-up.")
    var duration = 15

    @Option(help: "Seconds of load before measuring.")
    var warmup = 3

    @Option(name: .customLong("header"), help: "A request header, `Name: value` (repeatable), e.g. the app API token.")
    var headers: [String] = []

    func run() async throws {
        guard var target = LoadTarget(url) else { throw ValidationError("--url must look like http://host:port/path") }
        for header in headers {
            let parts = header.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { throw ValidationError("--header must look like 'Name: value'") }
            target.headers.append(
                (String(parts[0]).trimmingCharacters(in: .whitespaces), String(parts[1]).trimmingCharacters(in: .whitespaces)))
        }
        guard connections > 0, rate > 0, duration > 0, warmup >= 0 else {
            throw ValidationError("--connections, --rate and --duration must be positive, --warmup not negative")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let plan = LoadPlan(
            target: target, connections: connections, rate: rate, warmup: .seconds(Int64(warmup)), measured: .seconds(Int64(duration)))
        let report = try await loop.flatSubmit { LoadRun(plan: plan, loop: loop).start() }.get()
        try await group.shutdownGracefully()
        print("== GET \(target.path), \(connections) connections, \(rate) req/s offered, \(duration) s measured after \(warmup) s")
        print(report.description)
    }
}

struct LoadTarget: Sendable {
    let host: String
    let port: Int
    let path: String
    /// Sent with every request besides `Host` and `Connection`.
    var headers: [(name: String, value: String)] = []

    init?(_ url: String) {
        guard let components = URLComponents(string: url), components.scheme == "http", let host = components.host else { return nil }
        self.host = host
        port = components.port ?? 80
        let query = components.percentEncodedQuery.map { "?" + $0 } ?? ""
        path = (components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath) + query
    }
}

struct LoadPlan: Sendable {
    let target: LoadTarget
    let connections: Int
    let rate: Int
    let warmup: TimeAmount
    let measured: TimeAmount
}

/// What one run measured: requests due in the measured window and their latencies.
struct LoadReport: Sendable, CustomStringConvertible {
    let offeredRate: Int
    let seconds: Double
    /// Latencies in milliseconds of the requests answered, sorted.
    let latencies: [Double]
    let failedStatuses: Int
    let connectionErrors: Int
    /// Requests due in the window that got no answer before the run ended.
    let unanswered: Int

    var description: String {
        let rate = Double(latencies.count) / seconds
        let lines = [
            String(format: "Requests/sec: %.0f answered (%d offered)", rate, offeredRate),
            String(
                format: "Latency ms: p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f", latencies.percentile(0.5),
                latencies.percentile(0.9), latencies.percentile(0.99), latencies.percentile(0.999), latencies.percentile(1)),
            "Answers: \(latencies.count), non-2xx \(failedStatuses), connection errors \(connectionErrors), unanswered \(unanswered)",
        ]
        return lines.joined(separator: "\n")
    }
}

/// The state of a run. Confined to its event loop: every method runs there.
final class LoadRun {
    private let plan: LoadPlan
    private let loop: any EventLoop
    private let promise: EventLoopPromise<LoadReport>
    private let interval: TimeAmount
    private var startedAt = NIODeadline.now()
    private var idle: [LoadConnection] = []
    /// Due times of requests waiting for a free connection.
    private var waiting: Deque<NIODeadline> = []
    private var scheduled = 0
    private var inFlight = 0
    private var latencies: [Double] = []
    private var failedStatuses = 0
    private var connectionErrors = 0

    init(plan: LoadPlan, loop: any EventLoop) {
        self.plan = plan
        self.loop = loop
        promise = loop.makePromise()
        interval = .nanoseconds(max(1, 1_000_000_000 / Int64(plan.rate)))
        latencies.reserveCapacity(plan.rate * Int(plan.measured.nanoseconds / 1_000_000_000 + 1))
    }

    private var measureFrom: NIODeadline { startedAt + plan.warmup }
    private var end: NIODeadline { measureFrom + plan.measured }

    /// Opens the connections, then sends requests until the window closes.
    func start() -> EventLoopFuture<LoadReport> {
        let bound = NIOLoopBound(self, eventLoop: loop)
        let bootstrap = ClientBootstrap(group: loop).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                try channel.pipeline.syncOperations.addHandler(LoadConnection(run: bound.value, target: bound.value.plan.target))
            }
        }
        let connecting = (0..<plan.connections).map { _ in bootstrap.connect(host: plan.target.host, port: plan.target.port) }
        EventLoopFuture.andAllSucceed(connecting, on: loop).whenComplete { result in
            let run = bound.value
            switch result {
            case .success:
                run.startedAt = .now()
                run.sendDue()
            case .failure(let error): run.promise.fail(error)
            }
        }
        return promise.futureResult
    }

    func connectionReady(_ connection: LoadConnection) {
        idle.append(connection)
    }

    /// Queues the requests due by now, hands them to free connections and sets a timer for the next.
    private func sendDue() {
        let now = NIODeadline.now()
        while startedAt + interval * Int64(scheduled) <= min(now, end - .nanoseconds(1)) {
            waiting.append(startedAt + interval * Int64(scheduled))
            scheduled += 1
        }
        dispatchWaiting()
        if now >= end {
            finishWhenQuiet(until: now + .seconds(2))
            return
        }
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.scheduleTask(deadline: startedAt + interval * Int64(scheduled)) { bound.value.sendDue() }
    }

    private func dispatchWaiting() {
        while !waiting.isEmpty, let connection = idle.popLast() {
            inFlight += 1
            connection.send(due: waiting.removeFirst())
        }
    }

    func answered(_ connection: LoadConnection, due: NIODeadline, success: Bool) {
        inFlight -= 1
        if due >= measureFrom, due < end {
            latencies.append(Double((NIODeadline.now() - due).nanoseconds) / 1_000_000)
            if !success { failedStatuses += 1 }
        }
        idle.append(connection)
        dispatchWaiting()
    }

    func failed(_ connection: LoadConnection, wasBusy: Bool) {
        connectionErrors += 1
        if wasBusy { inFlight -= 1 }
        idle.removeAll { $0 === connection }
    }

    private func finishWhenQuiet(until deadline: NIODeadline) {
        guard inFlight > 0 || !waiting.isEmpty, NIODeadline.now() < deadline else {
            let dueInWindow = waiting.filter { $0 >= measureFrom && $0 < end }.count
            let report = LoadReport(
                offeredRate: plan.rate, seconds: Double(plan.measured.nanoseconds) / 1e9, latencies: latencies.sorted(),
                failedStatuses: failedStatuses, connectionErrors: connectionErrors, unanswered: dueInWindow + inFlight)
            for connection in idle { connection.close() }
            promise.succeed(report)
            return
        }
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.scheduleTask(in: .milliseconds(10)) { bound.value.finishWhenQuiet(until: deadline) }
    }
}

/// One keep-alive connection: one request at a time.
final class LoadConnection: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let run: LoadRun
    private let head: HTTPRequestHead
    private var context: ChannelHandlerContext?
    private var due: NIODeadline?
    private var success = false
    private var closing = false

    init(run: LoadRun, target: LoadTarget) {
        self.run = run
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "\(target.host):\(target.port)")
        headers.add(name: "Connection", value: "keep-alive")
        for (name, value) in target.headers { headers.add(name: name, value: value) }
        head = HTTPRequestHead(version: .http1_1, method: .GET, uri: target.path, headers: headers)
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        run.connectionReady(self)
        context.fireChannelActive()
    }

    func send(due: NIODeadline) {
        guard let context else { return }
        self.due = due
        context.write(Self.wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let response): success = (200..<300).contains(response.status.code)
        case .body: break
        case .end:
            guard let due else { return }
            self.due = nil
            run.answered(self, due: due, success: success)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        if !closing { run.failed(self, wasBusy: due != nil) }
        due = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func close() {
        closing = true
        context?.close(promise: nil)
    }
}
