import ArgumentParser
import BudPipelineHost
import Foundation
import HTTPAPI
import Logging
import PipelineRuntime
import Storage

/// `budpipeline config`: the effective configuration.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check and show the effective configuration.",
        subcommands: [Check.self]
    )

    /// `budpipeline config check [--config FILE]`.
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Print the effective configuration (secrets redacted); exit 1 on any invalid value.",
            discussion: """
                Reads the configuration file (--config or BUDPIPELINE_CONFIG), lays it under the \
                environment, and checks every setting the way `serve` and `worker` read them. \
                Prints each setting with its value and where the value comes from (env, file or \
                default); secrets show as ***. Each invalid value is one line on standard error, \
                and the status is 1. Variables named like the server's (BUDPIPELINE_*, PSQL_*) \
                that are no setting are reported as warnings: a misspelt name is otherwise ignored.
                """
        )

        @OptionGroup var settings: ConfigurationOptions

        func run() throws {
            let variables = ProcessInfo.processInfo.environment
            let file = try settings.apply()
            let environment = ProcessInfo.processInfo.environment
            let secrets = Self.secrets(in: environment)
            let errors = Self.problems(in: environment).map { problem in
                CLIError(Self.scrub(Self.naming(problem, file: file, variables: variables), secrets)).description
            }
            print(Self.table(variables: variables, file: file, environment: environment))
            for name in Self.unknownVariables(in: environment) {
                FileHandle.standardError.write(Data("warning: \(name) is not a setting of budpipeline (see docs/operations.md)\n".utf8))
            }
            guard errors.isEmpty else {
                for error in errors { FileHandle.standardError.write(Data("Error: \(error)\n".utf8)) }
                throw ExitCode(1)
            }
        }

        /// Every invalid value, one message each, checked by the code that reads them.
        static func problems(in environment: [String: String]) -> [String] {
            var problems: [String] = []
            func check(_ body: () throws -> Void) {
                do { try body() } catch { problems.append("\(error)") }
            }
            check { _ = try CLILogging.settings(from: environment, defaultLevel: .info) }
            check { _ = try RuntimeConfiguration.from(environment: environment) }
            check { _ = try APIConfiguration.from(environment: environment).checkExposure() }
            check { _ = try DatabaseLocation.from(environment: environment) }
            check { _ = try DatabaseOptions.poolSize(from: environment) }
            check { _ = try PluginHostConfiguration.forCommandLine() }
            check { _ = try RuntimeAssembly.metricsEnabled(environment) }
            check { _ = try WorkerCommand.port(from: environment) }
            for flag in ["AUTO_MIGRATE", "BUDPIPELINE_STRICT_PLUGINS", "BUDPIPELINE_CLUSTER_SIGNALS"] {
                check { _ = try EnvironmentFlag.value(flag, in: environment) }
            }
            return problems
        }

        /// `message`, saying which line of the file set the value it is about (when the file did).
        static func naming(_ message: String, file: ConfigurationFile?, variables: [String: String]) -> String {
            guard let file else { return message }
            let named = SettingsCatalog.all.first { message.hasPrefix($0.variable + "=") || message.hasPrefix($0.variable + " ") }
            guard let setting = named, variables[setting.variable] == nil, file.values[setting.variable] != nil else { return message }
            return "\(message) (set by \(setting.key) in \(file.path))"
        }

        /// Every setting: its key, variable, value (secrets as `***`, a database URL without its
        /// password) and where it comes from.
        static func table(variables: [String: String], file: ConfigurationFile?, environment: [String: String]) -> String {
            var table = TextTable(header: ["setting", "variable", "value", "from"])
            for setting in SettingsCatalog.all {
                let value = environment[setting.variable]
                let fromEnvironment = variables[setting.variable].map { !$0.isEmpty } ?? false
                let source = fromEnvironment ? "env" : file?.values[setting.variable] != nil ? "file" : "default"
                table.rows.append([setting.key, setting.variable, value.map { shown($0, of: setting) } ?? "(default)", source])
            }
            return table.render()
        }

        /// How a value is shown: a secret as `***`, a database URL without its password, any other
        /// URL without the credentials it may carry, control characters escaped, at most 200
        /// characters.
        static func shown(_ value: String, of setting: Setting) -> String {
            if setting.variable == "DATABASE_URL" { return visible((try? DatabaseLocation.parse(value).description) ?? "***") }
            if setting.secret && !value.isEmpty { return "***" }
            return visible(ConnectionSecrets.withoutURLCredentials(value))
        }

        /// What must not be printed of `environment`'s settings: secret values, database
        /// passwords, and the user information of any URL.
        static func secrets(in environment: [String: String]) -> [String] {
            var secrets: [String] = []
            for setting in SettingsCatalog.all {
                guard let value = environment[setting.variable], !value.isEmpty else { continue }
                if setting.secret { secrets.append(value) }
                secrets += ConnectionSecrets(connectionInfo: value).secrets
                let shown = ConnectionSecrets.withoutURLCredentials(value)
                if shown != value, let start = value.range(of: "://")?.upperBound {
                    let authorityEnd = value[start...].firstIndex { "/?#".contains($0) } ?? value.endIndex
                    if let end = value[start..<authorityEnd].lastIndex(of: "@") { secrets.append(String(value[start..<end])) }
                }
            }
            return secrets.filter { $0.count >= ConnectionSecrets.shortestPiece }.sorted { $0.count > $1.count }
        }

        static func scrub(_ text: String, _ secrets: [String]) -> String {
            var text = text
            for secret in secrets { text = text.replacingOccurrences(of: secret, with: "***") }
            return text
        }

        /// `text` on one line of at most 200 characters (see ``CLIError``).
        static func visible(_ text: String) -> String {
            let line = CLIError(String(text.unicodeScalars.prefix(200))).description
            return text.unicodeScalars.count > 200 ? line + "…" : line
        }

        /// Variables of the server's prefixes that are no setting.
        static func unknownVariables(in environment: [String: String]) -> [String] {
            environment.keys.filter { name in
                SettingsCatalog.ownPrefixes.contains { name.hasPrefix($0) } && SettingsCatalog.byVariable[name] == nil
                    && !SettingsCatalog.notSettings.contains(name) && !SettingsCatalog.notSettingPrefixes.contains { name.hasPrefix($0) }
            }
            .sorted()
        }
    }
}
