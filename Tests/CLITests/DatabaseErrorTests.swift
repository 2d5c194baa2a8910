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
        // Found by a hostile review: a keyword string, unencoded '/', '?', '#', a host-like tail.
        ("host=127.0.0.1 port=1 user=budpipeline dbname=x password='Zq7@Xw9@Kv3'", ["Zq7@Xw9@Kv3", "Zq7", "Xw9", "Kv3"]),
        ("host=127.0.0.1 port=1 password=Pl4in:Word dbname=x", ["Pl4in", "Word"]),
        ("postgresql://budpipeline:Ab:Cd/Ef?Gh#Ij@127.0.0.1:1/hostile2", ["Cd/Ef", "Ef?Gh", "Gh#Ij"]),
        ("postgresql://budpipeline:Mx@host.evil:99/Kq@127.0.0.1:1/hostile2", ["host.evil", "99/Kq", "Mx@host"]),
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

    /// A bad pool size is refused in one line before anything is opened, never replaced by the
    /// default without a word.
    @Test(arguments: ["0", "201", "ten", "-3", "1e3", ""])
    func aBadPoolSizeIsRefused(value: String) async throws {
        let result = try await ProcessRunner.run(
            Repository.executable, ["migrate", "--status"],
            environment: [
                "DATABASE_URL": "sqlite:///\(NSTemporaryDirectory())bp-pool-\(UUID().uuidString).sqlite", "PSQL_POOL_SIZE": value,
            ],
            timeout: .seconds(60))
        #expect(result.status != 0)
        let lines = result.standardError.split(separator: "\n")
        #expect(lines.count == 1 && lines.first?.contains("PSQL_POOL_SIZE must be a whole number from 1 to 200") == true, "\(lines)")
    }
}
