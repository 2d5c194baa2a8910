import ArgumentParser
import BudJSON
import BudPipelineHost
import Logging
import PluginSchema

/// `budpipeline plugins`: what the plugin host loads.
struct PluginsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins",
        abstract: "Show the plugins the host loads.",
        subcommands: [List.self, Inspect.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load plugins as the server would and list their actions and the refused libraries.",
            discussion: """
                Plugins are searched in BUDPIPELINE_PLUGIN_DIRS (':'-separated; default: the \
                executable's directory and ../lib/budpipeline/plugins), limited by \
                BUDPIPELINE_PLUGIN_ALLOWLIST, configured by BUDPIPELINE_PLUGIN_CONFIG.
                """
        )

        @Flag(help: "Print JSON instead of tables.")
        var json = false

        @Flag(help: "Exit with status 1 when any library was refused.")
        var strict = false

        func run() async throws {
            try CLILogging.bootstrap(defaultLevel: .error)
            let host = await PluginHost.load(configuration: try .forCommandLine(), logger: Logger(label: "budpipeline.plugins"))
            print(json ? Self.json(host).serializedString(options: [.prettyPrinted]) : Self.text(host))
            await host.shutdown()
            if strict && !host.refusals.isEmpty { throw ExitCode(1) }
        }

        static func text(_ host: PluginHost) -> String {
            var lines: [String] = []
            let directories = host.configuration.pluginDirectories.joined(separator: ", ")
            if host.actions.isEmpty {
                lines.append("No plugins loaded (searched: \(directories.isEmpty ? "no directories" : directories)).")
            } else {
                var table = TextTable(header: ["ACTION", "PLUGIN", "VERSION", "ABI", "RUNS", "FILE"])
                for action in host.actions {
                    let image = action.plugin.image
                    table.rows.append([
                        action.metadata.type, image.manifest.name, image.manifest.version, image.abiVersion,
                        action.plugin.isolation.rawValue, image.file,
                    ])
                }
                lines.append(
                    "Loaded actions (\(host.actions.count)) from \(host.plugins.count) plugin(s); host plugin ABI \(PluginHost.abiVersion):"
                )
                lines.append(table.render(indent: "  "))
            }
            if !host.refusals.isEmpty {
                lines.append("")
                lines.append("Refused (\(host.refusals.count)):")
                lines.append(contentsOf: host.refusals.map { "  \($0)" })
            }
            if !host.notes.isEmpty {
                lines.append("")
                lines.append(contentsOf: host.notes.map { "Note: \($0)" })
            }
            return lines.joined(separator: "\n")
        }

        static func json(_ host: PluginHost) -> JSONValue {
            let plugins: [JSONValue] = host.plugins.map { plugin in
                [
                    "name": .string(plugin.name), "version": .string(plugin.image.manifest.version),
                    "file": .string(plugin.image.file), "abi": .string(plugin.image.abiVersion),
                    "thread_safe": .bool(plugin.image.isThreadSafe),
                    "actions": .array(plugin.image.actions.map { .string($0.type) }),
                    "isolation": .string(plugin.isolation.rawValue),
                    "healthy": .bool(plugin.healthStatus.isHealthy),
                ]
            }
            let refused: [JSONValue] = host.refusals.map { ["file": .string($0.file), "reason": .string($0.reason)] }
            return [
                "host_abi": .string(PluginHost.abiVersion),
                "directories": .array(host.configuration.pluginDirectories.map(JSONValue.string)),
                "plugins": .array(plugins), "refused": .array(refused),
                "notes": .array(host.notes.map(JSONValue.string)),
            ]
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one plugin library's manifest and action metadata without registering it.",
            discussion: "Runs the library's entry function and every load-time check, but not its init."
        )

        @Argument(help: "Path of the plugin library (.so).")
        var path: String

        @Flag(help: "Print JSON instead of text.")
        var json = false

        func run() throws {
            let image: PluginImage
            do {
                image = try PluginLoader.open(path)
            } catch {
                throw CLIError(error.description)
            }
            if json {
                let document: JSONValue = [
                    "file": .string(image.file), "manifest": image.manifest.json, "abi": .string(image.abiVersion),
                    "thread_safe": .bool(image.isThreadSafe), "actions": .array(image.actions.map(\.json)),
                ]
                print(document.serializedString(options: [.prettyPrinted]))
            } else {
                print(Self.text(image))
            }
        }

        static func text(_ image: PluginImage) -> String {
            var lines = [
                "Plugin \(image.manifest.name) \(image.manifest.version)"
                    + (image.manifest.description.map { ": \($0)" } ?? ""),
                "  file: \(image.file)",
                "  abi: \(image.abiVersion), thread-safe: \(image.isThreadSafe ? "yes" : "no")",
            ]
            for action in image.actions {
                lines.append("")
                lines.append(
                    "Action \(action.type) — \(action.name) (\(action.category), v\(action.version), \(action.executionMode.rawValue))")
                lines.append("  \(action.description)")
                if !action.params.isEmpty {
                    var table = TextTable(header: ["PARAM", "TYPE", "REQUIRED", "DEFAULT"])
                    for param in action.params {
                        table.rows.append([
                            param.name, param.type.rawValue, param.required ? "yes" : "no", param.defaultValue?.description ?? "",
                        ])
                    }
                    lines.append(table.render(indent: "  "))
                }
                if !action.outputs.isEmpty {
                    lines.append("  outputs: " + action.outputs.map { "\($0.name) (\($0.type))" }.joined(separator: ", "))
                }
            }
            return lines.joined(separator: "\n")
        }
    }
}
