import ArgumentParser
import BudPipelineHost

/// `budpipeline`: the BudPipeline server and its operator tools.
@main
struct BudPipelineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "budpipeline",
        abstract: "Pipeline orchestration with native step-handler plugins.",
        version: "0.1.0 (plugin ABI \(PluginHost.abiVersion))",
        subcommands: [
            ServeCommand.self, RunCommand.self, WorkerCommand.self, ValidateCommand.self, MigrateCommand.self, ProbeDatabaseCommand.self,
            OpenAPICommand.self, PluginsCommand.self,
            PluginCommand.self, PluginProcessCommand.self,
        ]
    )
}
