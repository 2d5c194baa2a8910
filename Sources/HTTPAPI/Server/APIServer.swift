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
    public static func router(runtime: ExecutionRuntime, configuration: APIConfiguration, version: String) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: APIErrorMiddleware())
        let pipelines = PipelineRoutes(runtime: runtime, configuration: configuration)
        let executions = ExecutionRoutes(runtime: runtime, configuration: configuration)
        let actions = ActionRoutes(runtime: runtime, configuration: configuration)
        let health = HealthRoutes(runtime: runtime, version: version)
        let schedules = ScheduleRoutes(runtime: runtime, configuration: configuration)
        let webhooks = WebhookRoutes(runtime: runtime, configuration: configuration)
        let eventTriggers = EventTriggerRoutes(runtime: runtime, configuration: configuration)

        let events = WorkflowEventRoutes(runtime: runtime, configuration: configuration)
        router.post("workflow-events", use: events.receive)
        router.get("dapr/subscribe", use: events.subscriptions)
        router.get("health", use: health.health)
        router.get("ready", use: health.ready)
        let document = JSONResponse(OpenAPIDocument.document(version: version))
        router.get("openapi.json") { _, _ in document }

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
            group.get("executions/{id}/stream", use: executions.stream)
        }
        for prefix in ["actions", "api/v1/actions", "budpipeline/actions"] {
            let group = router.group(RouterPath(prefix))
            group.get(use: actions.list)
            group.post("validate", use: actions.validate)
            group.get("{type}", use: actions.get)
        }

        for prefix in ["", "api/v1"] {
            let group = router.group(RouterPath(prefix))
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
