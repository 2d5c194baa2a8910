import ArgumentParser
import BudServicesSimulator
import DaprSidecar

/// Runs the test Dapr sidecar with the simulated bud services behind it, for trying BudPipeline's
/// domain plugins on one machine (README quick-start).
@main
struct BudSimulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bud-simulator",
        abstract: "A stand-in Dapr sidecar with simulated budapp, budcluster, budsim and budnotify behind it.",
        discussion: """
            Point BudPipeline at it with DAPR_HTTP_ENDPOINT=http://127.0.0.1:<port>. Workflows the plugins start \
            report progress and completion to BudPipeline's /workflow-events, as the real services do.
            Fixtures: model \(SimulatorFixtures.modelID), project \(SimulatorFixtures.projectID), \
            cluster \(SimulatorFixtures.clusterID).
            """)

    @Option(help: "The port the sidecar listens on.")
    var port = 3500

    @Option(help: "Where BudPipeline listens; events are delivered to <app-url>/workflow-events.")
    var appURL = "http://127.0.0.1:8010"

    @Option(help: "The dapr-api-token sent with deliveries (BudPipeline's APP_API_TOKEN).")
    var appToken: String?

    @Option(help: "Milliseconds between a simulated workflow's progress events.")
    var paceMilliseconds = 1500

    func validate() throws {
        guard (1...65_535).contains(port) else { throw ValidationError("--port \(port) is not a port number") }
        guard paceMilliseconds >= 0 else { throw ValidationError("--pace-milliseconds must not be negative") }
    }

    func run() async throws {
        let sidecar = DaprSidecar(appURL: appURL, appToken: appToken)
        BudServicesSimulator(sidecar: sidecar, pace: .milliseconds(paceMilliseconds)).install()
        let bound = try await sidecar.start(port: port)
        print("bud-simulator: sidecar on http://127.0.0.1:\(bound), delivering events to \(appURL)/workflow-events")
        print(
            "fixtures: model_id=\(SimulatorFixtures.modelID) project_id=\(SimulatorFixtures.projectID) cluster_id=\(SimulatorFixtures.clusterID)"
        )
        while !Task.isCancelled { try await Task.sleep(for: .seconds(3600)) }
    }
}
