import BudPipelineHost
import Foundation
import Logging

enum CLILogging {
    /// Sends logs to standard error at `LOG_LEVEL` (default `defaultLevel`); an unknown level is
    /// refused with a message naming the accepted ones.
    static func bootstrap(defaultLevel: Logger.Level) throws {
        var level = defaultLevel
        if let text = ProcessInfo.processInfo.environment["LOG_LEVEL"], !text.isEmpty {
            guard let chosen = Logger.Level(rawValue: text.lowercased()) else {
                let accepted = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
                throw ConfigurationError("LOG_LEVEL=\(text) is not one of \(accepted)")
            }
            level = chosen
        }
        LoggingSystem.bootstrap { [level] label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
