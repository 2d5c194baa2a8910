import ArgumentParser
import BudJSON
import BudPipelineHost
import Foundation
import HTTPAPI
import Logging
import PluginSchema

/// `budpipeline plugins`: what the plugin host loads.
struct PluginsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins",
        abstract: "Show the plugins the host loads.",
        subcommands: [List.self, Inspect.self, Check.self, Call.self]
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

        @OptionGroup var settings: ConfigurationOptions

        func run() async throws {
            try settings.apply()
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

        /// The same document as `GET /plugins` gives the service.
        static func json(_ host: PluginHost) -> JSONValue {
            PluginRoutes.inventory(host, showingPaths: true)
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

    struct Call: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make one call into a plugin library, as the server would, and print what it answered.",
            discussion: """
                Loads the library alone (in a plugin process with --isolation process), calls \
                FUNCTION (execute, on_event, validate_params or cleanup) of --action with \
                --request, the JSON document the server would send (docs/plugins.md, "JSON \
                documents"), and prints one JSON object: {"status": "OK", "status_code": 0, \
                "output": "<what the plugin wrote>", "error": "<its error message>"}. Exits with \
                status 1 when the library is refused or the call could not be made (a crash, a \
                timeout), with the reason on one line.
                """
        )

        @Argument(help: "Path of the plugin library (.so).")
        var path: String

        @Argument(help: "The function: execute, on_event, validate_params or cleanup.")
        var function: String

        @Option(help: "The action type.")
        var action: String

        @Option(help: "The request document, JSON (default {}).")
        var request: String = "{}"

        @Option(help: "The plugin's configuration object, JSON (default {}).")
        var config: String = "{}"

        @Option(help: "Where the plugin runs: in-process or process.")
        var isolation: String = "in-process"

        @Option(help: "Seconds the call may take (default 30).")
        var timeout: Double = 30

        func run() async throws {
            try CLILogging.bootstrap(defaultLevel: .error)
            guard PluginHost.callableFunctions.contains(function) else {
                throw ValidationError("FUNCTION must be one of \(PluginHost.callableFunctions.joined(separator: ", ")), got '\(function)'")
            }
            guard let mode = PluginIsolation(rawValue: isolation) else {
                throw ValidationError("--isolation must be in-process or process, got '\(isolation)'")
            }
            guard timeout > 0, timeout <= 3600 else { throw ValidationError("--timeout must be more than 0 and at most 3600 seconds") }
            guard case .object = try Self.document(request, option: "--request") else {
                throw ValidationError("--request must be a JSON object")
            }
            guard case .object(let configuration) = try Self.document(config, option: "--config") else {
                throw ValidationError("--config must be a JSON object")
            }
            var settings = PluginHostConfiguration(pluginDirectories: [], pluginFiles: [path])
            settings.isolation = mode
            let logger = Logger(label: "budpipeline.plugins.call")
            var host = await PluginHost.load(configuration: settings, logger: logger)
            // The configuration is found by the plugin's name, known once the library is open.
            if let name = host.plugins.first?.name, !configuration.isEmpty {
                await host.shutdown()
                settings.pluginSettings = [name: configuration]
                host = await PluginHost.load(configuration: settings, logger: logger)
            }
            if let refusal = host.refusals.first {
                await host.shutdown()
                throw CLIError("refused: \(refusal.reason)")
            }
            let result: RawCallResult
            do {
                result = try await host.call(
                    function: function, action: action, request: Array(request.utf8), timeout: .milliseconds(Int64(timeout * 1000)))
            } catch {
                await host.shutdown()
                throw CLIError(error.message)
            }
            await host.shutdown()
            let answer: JSONValue = [
                "status": .string(result.status.description), "status_code": .int(Int(result.status.rawValue)),
                "output": .string(String(decoding: result.output, as: UTF8.self)), "error": .string(result.errorMessage),
            ]
            print(answer.serializedString())
        }

        /// `text` parsed, or a one-line error naming the option and what is wrong with it.
        static func document(_ text: String, option: String) throws -> JSONValue {
            do {
                return try JSONValue(parsing: Array(text.utf8))
            } catch {
                throw ValidationError("\(option) is not valid JSON: \(error)")
            }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a plugin library before deploying it: load it as the server would and call its functions.",
            discussion: """
                Loads the library in a plugin process (a crash costs only that process) with every \
                load-time check, then calls each action's validate_params, on_event and cleanup \
                (and execute with --execute, which may act on other services) with inputs made \
                from its metadata, and holds every answer to the protocol: one valid result, \
                statuses the function may return, within --timeout, no call handle used after its \
                call. Prints one line per call; exits with status 1 when anything failed, so teams \
                can run it in their own CI.
                """
        )

        @Argument(help: "Path of the plugin library (.so).")
        var path: String

        @Option(help: "A JSON file with the plugin's configuration object (as its entry in BUDPIPELINE_PLUGIN_CONFIG).")
        var config: String?

        @Option(help: "Seconds each call may take (default 10).")
        var timeout: Double = 10

        @Flag(help: "Also call execute with the generated parameters (it may act on other services).")
        var execute = false

        @Flag(help: "Print the report as JSON.")
        var json = false

        func run() async throws {
            try CLILogging.bootstrap(defaultLevel: .error)
            guard timeout > 0, timeout <= 3600 else { throw ValidationError("--timeout must be more than 0 and at most 3600 seconds") }
            var configuration: JSONObject = [:]
            if let config {
                guard let data = FileManager.default.contents(atPath: config) else { throw ValidationError("cannot read \(config)") }
                guard let document = try? JSONValue(parsing: [UInt8](data)), case .object(let object) = document else {
                    throw ValidationError("\(config) must hold a JSON object")
                }
                configuration = object
            }
            let report = await PluginCheck.run(
                file: path, configuration: configuration, timeout: .milliseconds(Int64(timeout * 1000)), execute: execute)
            print(json ? report.json.serializedString(options: [.prettyPrinted]) : report.text)
            if report.failed { throw ExitCode(1) }
        }
    }
}
