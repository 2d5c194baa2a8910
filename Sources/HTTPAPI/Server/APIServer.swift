public import Hummingbird
import HummingbirdCore
public import Logging
public import MetricsExport
import NIOCore
public import PipelineRuntime

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Builds the HTTP application: every route, under every name clients use.
///
/// The paths are the ones budapp calls (`/pipelines`, `/executions`, `/actions`, `/validate`). The
/// same routes answer under `/api/v1` (`/api/v1/pipeline` for pipelines), `/workflows` is another
/// name for `/pipelines`, and budapp's public proxy names under `/budpipeline` are served too (the
/// SDK's Dapr mode sends them straight to the service).
public enum APIServer {
    /// Which routes a server answers.
    public enum Routes: Sendable {
        /// The whole API (`budpipeline serve`).
        case all
        /// `/health`, `/ready` and `/metrics` only (`budpipeline worker --port`).
        case operations
    }

    /// The router with all routes (or only the operations ones), for serving or for in-process
    /// tests. With `metrics`, requests are counted and timed into it and `GET /metrics` serves it
    /// (behind the app token when one is set).
    public static func router(
        runtime: ExecutionRuntime, configuration: APIConfiguration, version: String, metrics: PrometheusExporter? = nil,
        routes served: Routes = .all
    ) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: RequestObservationMiddleware(metrics: metrics.map { HTTPMetrics(factory: $0.factory) }))
        router.add(middleware: APIErrorMiddleware())
        if let token = configuration.appAPIToken { router.add(middleware: AuthenticationMiddleware(token: token)) }
        router.add(middleware: CallerMiddleware())
        router.add(middleware: RateLimitMiddleware(settings: configuration.rateLimits))
        let book = RouteBook()
        let routes = RouteRegistrar(router: router, book: book)
        let pipelines = PipelineRoutes(runtime: runtime, configuration: configuration)
        let executions = ExecutionRoutes(runtime: runtime, configuration: configuration)
        let actions = ActionRoutes(runtime: runtime, configuration: configuration)
        let health = HealthRoutes(runtime: runtime, version: version, diskPaths: configuration.diskPaths)
        let schedules = ScheduleRoutes(runtime: runtime, configuration: configuration)
        let webhooks = WebhookRoutes(runtime: runtime, configuration: configuration)
        let eventTriggers = EventTriggerRoutes(runtime: runtime, configuration: configuration)

        routes.get("health", use: health.health)
        routes.get("ready", use: health.ready)
        // Probes may ask with HEAD: the same checks and status, no body.
        routes.on(.head, "health") { request, context in
            try await health.health(request, context: context).response(from: request, context: context).withoutBody
        }
        routes.on(.head, "ready") { request, context in
            try await health.ready(request, context: context).response(from: request, context: context).withoutBody
        }
        if let metrics {
            let exposition = MetricsRoute(runtime: runtime, exporter: metrics, version: version)
            routes.get("metrics", use: exposition.scrape)
        }
        guard served == .all else {
            router.add(middleware: MethodNotAllowedMiddleware(book: book))
            return router
        }
        let document = JSONResponse(OpenAPIDocument.document(version: version))
        routes.get("openapi.json") { _, _ in document }
        let events = WorkflowEventRoutes(runtime: runtime, configuration: configuration)
        routes.post("workflow-events", use: events.receive)
        routes.get("dapr/subscribe", use: events.subscriptions)
        let plugins = PluginRoutes(runtime: runtime)
        routes.post("plugins/reload", use: plugins.reload)
        routes.get("plugins", use: plugins.inventory)
        let graphs = GraphRoutes(pipelines: pipelines, executions: executions, rendering: GraphRendering())
        routes.get("pipelines/{id}/graph", use: graphs.pipeline)
        if configuration.consoleEnabled {
            let console = ConsoleRoutes()
            routes.get("ui", use: console.page)
            routes.get("ui/{asset}", use: console.asset)
        }

        for prefix in ["", "api/v1/pipeline"] {
            let group = routes.group(prefix)
            group.post("validate", use: pipelines.validate)
            for collection in ["pipelines", "workflows"] {
                group.post(collection, use: pipelines.create)
                group.get(collection, use: pipelines.list)
                group.get(collection + "/{id}", use: pipelines.get)
                group.put(collection + "/{id}", use: pipelines.update)
                group.delete(collection + "/{id}", use: pipelines.delete)
            }
        }
        for prefix in ["", "api/v1", "budpipeline"] {
            let group = routes.group(prefix)
            group.post("executions", use: executions.start)
            group.post("executions/run", use: executions.runEphemeral)
            group.get("executions", use: executions.list)
            group.get("executions/{id}", use: executions.get)
            group.get("executions/{id}/progress", use: executions.progress)
            group.get("executions/{id}/steps", use: executions.steps)
            group.get("executions/{id}/events", use: executions.events)
            group.post("executions/{id}/cancel", use: executions.cancel)
            group.post("executions/{id}/retry", use: executions.retry)
            group.get("executions/{id}/stream", use: executions.stream)
            group.get("executions/{id}/graph", use: graphs.execution)
        }
        for prefix in ["actions", "api/v1/actions", "budpipeline/actions"] {
            let group = routes.group(prefix)
            group.get(use: actions.list)
            group.post("validate", use: actions.validate)
            group.get("{type}", use: actions.get)
        }

        // Schedules, webhooks and event triggers; budapp proxies them under /budpipeline.
        for prefix in ["", "api/v1", "budpipeline"] {
            let group = routes.group(prefix)
            group.post("schedules", use: schedules.create)
            group.get("schedules", use: schedules.list)
            group.get("schedules/{id}", use: schedules.get)
            group.put("schedules/{id}", use: schedules.update)
            group.delete("schedules/{id}", use: schedules.delete)
            group.post("schedules/{id}/pause", use: schedules.pause)
            group.post("schedules/{id}/resume", use: schedules.resume)
            group.post("schedules/{id}/trigger", use: schedules.trigger)
            group.get("schedules/{id}/next-runs", use: schedules.nextRuns)

            group.post("webhooks", use: webhooks.create)
            group.get("webhooks", use: webhooks.list)
            group.get("webhooks/{id}", use: webhooks.get)
            group.put("webhooks/{id}", use: webhooks.update)
            group.delete("webhooks/{id}", use: webhooks.delete)
            group.post("webhooks/{id}/rotate-secret", use: webhooks.rotateSecret)
            group.post("trigger/{id}", use: webhooks.trigger)

            group.post("event-triggers", use: eventTriggers.create)
            group.get("event-triggers", use: eventTriggers.list)
            group.get("event-triggers/event-types", use: eventTriggers.types)
            group.get("event-triggers/{id}", use: eventTriggers.get)
            group.put("event-triggers/{id}", use: eventTriggers.update)
            group.delete("event-triggers/{id}", use: eventTriggers.delete)
        }

        // budapp's proxy names: /budpipeline is the pipelines collection.
        let proxy = routes.group("budpipeline")
        proxy.post("validate", use: pipelines.validate)
        proxy.post("run", use: executions.runEphemeral)
        proxy.post(use: pipelines.create)
        proxy.get(use: pipelines.list)
        proxy.get("{id}", use: pipelines.get)
        proxy.put("{id}", use: pipelines.update)
        proxy.delete("{id}", use: pipelines.delete)
        proxy.post("{id}/execute", use: executions.startFromPath)
        // Added after every route, this wraps only the answer for requests no route matched.
        router.add(middleware: MethodNotAllowedMiddleware(book: book))
        return router
    }

    /// The application, a `Service` to run in the process's service group.
    ///
    /// Its connections are closed after `configuration.idleTimeout` without a request part
    /// arriving (never while a response is being written), and when a request's body has not
    /// arrived within `configuration.requestTimeout` of its header. With
    /// `configuration.maximumConnections`, connections beyond it are answered 503 `SERVER_BUSY`
    /// and closed, and past ``APIConfiguration/acceptLimit(maximumConnections:)`` the server stops
    /// accepting until some close. A failure to listen is thrown by its `run()` (see
    /// ``listenFailure(_:host:port:)``).
    public static func application(
        runtime: ExecutionRuntime, configuration: APIConfiguration, version: String, logger: Logger, metrics: PrometheusExporter? = nil,
        routes served: Routes = .all, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let counter = configuration.maximumConnections.map { ConnectionCounter(maximum: $0) }
        let requestTimeout = TimeAmount(configuration.requestTimeout)
        let channel = HTTP1Channel.Configuration(
            additionalChannelHandlers: Self.connectionHandlers(counter: counter, requestTimeout: requestTimeout, logger: logger),
            idleTimeout: TimeAmount(configuration.idleTimeout)
        )
        return Application(
            router: router(runtime: runtime, configuration: configuration, version: version, metrics: metrics, routes: served),
            server: .http1(configuration: channel),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port), serverName: "budpipeline",
                // Connections past the accept limit wait in the kernel's queue (which the kernel
                // caps at its somaxconn) instead of having their connects dropped.
                backlog: 4096,
                availableConnectionsDelegate: configuration.effectiveAcceptLimit.map {
                    MaximumAvailableConnections($0, logger: logger)
                }),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger
        )
    }

    /// The handlers each connection gets, new for each.
    private static func connectionHandlers(
        counter: ConnectionCounter?, requestTimeout: TimeAmount, logger: Logger
    ) -> [any RemovableChannelHandler] {
        var handlers: [any RemovableChannelHandler] = []
        if let counter { handlers.append(ConnectionGateHandler(counter: counter, logger: logger)) }
        handlers.append(RequestDeadlineHandler(timeout: requestTimeout))
        return handlers
    }

    /// One line saying why the server could not listen on `host:port`, for the errors binding
    /// the address throws (`IOError`, and `SocketAddressError` for a host that does not
    /// resolve); `nil` for any other error.
    public static func listenFailure(_ error: any Error, host: String, port: Int) -> String? {
        let reason: String
        if let error = error as? IOError {
            switch error.errnoCode {
            case EADDRINUSE: reason = "address already in use"
            case EACCES: reason = "permission denied (ports below 1024 need privileges)"
            case EADDRNOTAVAIL: reason = "the address is not one of this machine's"
            default: reason = String(cString: strerror(error.errnoCode))
            }
        } else if error is SocketAddressError {
            reason = "the host does not resolve to an address"
        } else {
            return nil
        }
        return "cannot listen on \(host):\(port): \(reason)"
    }
}

extension Response {
    /// The answer to a HEAD request: this status and these headers, no body.
    fileprivate var withoutBody: Response { Response(status: status, headers: headers) }
}
