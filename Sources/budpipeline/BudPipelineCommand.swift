import ArgumentParser
import BudPipelineHost

/// `budpipeline`: the BudPipeline server and its operator tools.
@main
struct BudPipelineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "budpipeline",
        abstract: "Pipeline orchestration with native step-handler plugins.",
        version: "0.1.0 (plugin ABI \(PluginHost.abiVersion), Swift \(swiftVersion))",
        subcommands: [
            ServeCommand.self, RunCommand.self, WorkerCommand.self, ValidateCommand.self, GraphCommand.self, MigrateCommand.self,
            ProbeDatabaseCommand.self,
            OpenAPICommand.self, PluginsCommand.self, ConfigCommand.self,
            PluginCommand.self, PluginProcessCommand.self,
        ]
    )
}

/// The Swift language version the server was compiled with: Swift plugins are built with the same
/// major.minor (docs/plugins.md, "Which Swift toolchain").
let swiftVersion: String = {
    #if compiler(>=6.5)
        return "6.5 or later"
    #elseif compiler(>=6.4)
        return "6.4"
    #elseif compiler(>=6.3)
        return "6.3"
    #elseif compiler(>=6.2)
        return "6.2"
    #else
        return "6.1"
    #endif
}()
