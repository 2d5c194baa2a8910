import BudPipelineHost
import PipelineEngine

extension PluginHostConfiguration {
    /// The plugin host configuration of the command line: from the environment, with the built-in
    /// action types reserved. A bad value is reported as one line.
    static func forCommandLine() throws -> PluginHostConfiguration {
        var configuration: PluginHostConfiguration
        do {
            configuration = try PluginHostConfiguration.fromEnvironment()
        } catch {
            throw CLIError(error.message)
        }
        configuration.reservedActionTypes = BuiltInActions.types
        return configuration
    }
}
