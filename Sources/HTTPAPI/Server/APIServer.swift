public import Hummingbird
public import Logging
public import Runtime

/// Builds the HTTP application: every route, under every name clients use.
///
/// Paths follow the reference service (`/pipelines`, `/executions`, `/actions`, `/validate`), with
/// its `/api/v1` aliases, the seeds' `/workflows` names, and budapp's public proxy names under
/// `/budpipeline` (which the SDK's Dapr mode sends straight to the service).
public enum APIServer {
    /// The router with all routes, for serving or for in-process tests.
    public static func router(runtime: ExecutionRuntime, configuration: APIConfiguration, version: String) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: APIErrorMiddleware())
        let pipelines = PipelineRoutes(runtime: runtime, configuration: configuration)
        let executions = ExecutionRoutes(runtime: runtime, configuration: configuration)
        let actions = ActionRoutes(runtime: runtime, configuration: configuration)
        let health = HealthRoutes(runtime: runtime, version: version)

        router.get("health", use: health.health)
        router.get("ready", use: health.ready)

        for prefix in ["", "api/v1/pipeline"] {
            let group = router.group(RouterPath(prefix))
            group.post("validate", use: pipelines.validate)
            for collection in ["pipelines", "workflows"] {
                group.post(RouterPath(collection), use: pipelines.create)
                group.get(RouterPath(collection), use: pipelines.list)
                group.get(RouterPath(collection + "/{id}"), use: pipelines.get)
                group.put(RouterPath(collection + "/{id}"), use: pipelines.update)
                group.delete(RouterPath(collection + "/{id}"), use: pipelines.delete)
            }
        }
        for prefix in ["", "api/v1", "budpipeline"] {
            let group = router.group(RouterPath(prefix))
            group.post("executions", use: executions.start)
            group.post("executions/run", use: executions.runEphemeral)
            group.get("executions", use: executions.list)
            group.get("executions/{id}", use: executions.get)
            group.get("executions/{id}/progress", use: executions.progress)
            group.get("executions/{id}/steps", use: executions.steps)
            group.get("executions/{id}/events", use: executions.events)
            group.post("executions/{id}/cancel", use: executions.cancel)
            group.post("executions/{id}/retry", use: executions.retry)
        }
        for prefix in ["actions", "api/v1/actions", "budpipeline/actions"] {
            let group = router.group(RouterPath(prefix))
            group.get(use: actions.list)
            group.post("validate", use: actions.validate)
            group.get("{type}", use: actions.get)
        }

        // budapp's proxy names: /budpipeline is the pipelines collection.
        let proxy = router.group("budpipeline")
        proxy.post("validate", use: pipelines.validate)
        proxy.post("run", use: executions.runEphemeral)
        proxy.post(use: pipelines.create)
        proxy.get(use: pipelines.list)
        proxy.get("{id}", use: pipelines.get)
        proxy.put("{id}", use: pipelines.update)
        proxy.delete("{id}", use: pipelines.delete)
        proxy.post("{id}/execute", use: executions.startFromPath)
        return router
    }

    /// The application, a `Service` to run in the process's service group.
    public static func application(
        runtime: ExecutionRuntime, configuration: APIConfiguration, version: String, logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(runtime: runtime, configuration: configuration, version: version),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port), serverName: "budpipeline"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger
        )
    }
}
