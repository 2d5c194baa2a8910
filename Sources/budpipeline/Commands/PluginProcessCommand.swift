import ArgumentParser
import BudPipelineHost

#if canImport(Glibc)
    import Glibc
#endif

/// `budpipeline plugin-process FILE`: the runner mode of a plugin process. The server starts it
/// with a socket on descriptor 3; nobody else has a reason to (see docs/plugins.md, "Isolation").
struct PluginProcessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugin-process",
        abstract: "Serve one plugin library to the server that started this process.",
        shouldDisplay: false
    )

    @Option(help: "Address space limit in bytes.")
    var memoryBytes: Int?

    @Option(help: "Open files limit.")
    var openFiles: Int?

    @Option(help: "CPU time limit in seconds.")
    var cpuSeconds: Int?

    @Option(help: "Call channels, on descriptors 4 and up.")
    var callChannels = 1

    @Option(help: "The user and group id to run as.")
    var userID: UInt32?

    @Argument(help: "The plugin library.")
    var file: String

    func run() async throws {
        var status = stat()
        guard fstat(3, &status) == 0, (status.st_mode & S_IFMT) == S_IFSOCK else {
            throw ValidationError("plugin-process is started by the server, with its channel on descriptor 3")
        }
        let code = await PluginProcessRunner.run(
            file: file, limits: PluginProcessRunner.Limits(memoryBytes: memoryBytes, openFiles: openFiles, cpuSeconds: cpuSeconds),
            callChannels: callChannels, userID: userID)
        throw ExitCode(code)
    }
}
