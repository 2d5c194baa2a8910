import BudPipelineHost
import Foundation
import Logging

enum CLILogging {
    /// Sends logs to standard error at `LOG_LEVEL` (default `defaultLevel`), as text or, with
    /// `LOG_FORMAT=json`, one JSON object per line (``JSONLogHandler``); an unknown level or
    /// format is refused with a message naming the accepted ones.
    static func bootstrap(defaultLevel: Logger.Level) throws {
        let (level, format) = try settings(from: ProcessInfo.processInfo.environment, defaultLevel: defaultLevel)
        switch format {
        case .text:
            LoggingSystem.bootstrap { [level] label in
                var handler = EscapingLogHandler(base: StreamLogHandler.standardError(label: label))
                handler.logLevel = level
                return handler
            }
        case .json:
            LoggingSystem.bootstrap { [level] label in JSONLogHandler(label: label, level: level) }
        }
    }

    enum Format: String {
        case text, json
    }

    /// `LOG_LEVEL` and `LOG_FORMAT` from `environment`; an unknown one is an error.
    static func settings(from environment: [String: String], defaultLevel: Logger.Level) throws -> (Logger.Level, Format) {
        var level = defaultLevel
        if let text = environment["LOG_LEVEL"], !text.isEmpty {
            guard let chosen = Logger.Level(rawValue: text.lowercased()) else {
                let accepted = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
                throw ConfigurationError("LOG_LEVEL=\(text.prefix(40)) is not one of \(accepted)")
            }
            level = chosen
        }
        let text = environment["LOG_FORMAT"].flatMap { $0.isEmpty ? nil : $0.lowercased() } ?? "text"
        guard let format = Format(rawValue: text) else {
            throw ConfigurationError("LOG_FORMAT=\(text.prefix(40)) is not one of text, json")
        }
        return (level, format)
    }
}
