import Foundation
import Testing
import _BudPipelineTestSupport

/// Commands that open the database say why they could not, without the password: libpq quotes
/// parts of the connection string in its errors (the whole URI, an undecodable token, or — when a
/// password holds an unencoded `@` — the password's end as a host name).
@Suite struct DatabaseErrorTests {
    static let urls: [(url: String, secrets: [String])] = [
        ("postgres://u:p@ss@w0rdXY@127.0.0.1:1/x", ["ss@w0rdXY", "w0rdXY", "p@ss@w0rdXY"]),
        ("postgresql://budpipeline:PwXq7@[::1:1/x", ["PwXq7"]),
        ("postgresql://budpipeline:Sec%zzret@127.0.0.1:1/hostile_x", ["Sec%zzret"]),
        ("postgresql://budpipeline@127.0.0.1:1/x?password=Qz9%zzsecret", ["Qz9%zzsecret"]),
        ("postgresql://budpipeline:Topsecret9@127.0.0.1:1/x", ["Topsecret9"]),
    ]

    @Test(arguments: [["serve", "--port", "0"], ["worker"], ["migrate"], ["migrate", "--status"], ["probe-db"]])
    func startUpErrorsNeverQuoteThePassword(command: [String]) async throws {
        for (url, secrets) in Self.urls {
            let result = try await ProcessRunner.run(
                Repository.executable, command, environment: ["DATABASE_URL": url, "LOG_LEVEL": "trace"], timeout: .seconds(60))
            let printed = result.standardOutput + result.standardError
            #expect(result.status != 0, "\(command) \(url)")
            #expect(printed.contains("***") || printed.contains("cannot open"), "\(command) \(url): \(printed)")
            for secret in secrets {
                #expect(!printed.contains(secret), "\(command) \(url) printed \(secret): \(printed)")
            }
        }
    }
}
