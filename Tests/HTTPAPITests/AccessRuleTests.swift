import BudPipelineHost
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Testing

@testable import HTTPAPI

/// The access rules as values, without a server: who a request's caller is, what it may do with
/// a resource, how signatures are checked, which headers are sensitive, which methods a path has.
@Suite("Access rules")
struct AccessRuleTests {
    static let alice = "0b4c9f0e-6a8b-4c2a-9d1e-3f5a7b9c1d2e"
    static let bob = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"

    static func request(_ headers: HTTPFields) -> Request {
        Request(
            head: HTTPRequest(method: .get, scheme: "http", authority: "test", path: "/", headerFields: headers),
            body: RequestBody(buffer: ByteBuffer()))
    }

    @Test("the caller: a UUID in X-User-ID is a user (lower-cased), no header is the service, anything else is refused")
    func callerOfARequest() throws {
        let name = HTTPField.Name("X-User-ID")!
        #expect(try Caller(Self.request([:])) == .service)
        #expect(try Caller(Self.request([name: Self.alice.uppercased()])) == .user(Self.alice))
        // An empty or blank header is not absent: read as the service, it would see everything.
        for bad in ["", "  ", "\t", "nope", "-3", Self.alice + "0", "\(Self.alice),\(Self.bob)"] {
            #expect(throws: APIError.self, "\(bad)") { try Caller(Self.request([name: bad])) }
        }
        var twice = HTTPFields()
        twice.append(HTTPField(name: name, value: Self.alice))
        twice.append(HTTPField(name: name, value: Self.bob))
        #expect(throws: APIError.self) { try Caller(Self.request(twice)) }
    }

    @Test("owners and the service act, system-owned is read-only for users, anyone else's is hidden")
    func ownership() throws {
        let hidden = APIError(.notFound, code: "X_NOT_FOUND", message: "not found")
        let alices = Ownership(ownerID: Self.alice)
        let system = Ownership(ownerID: nil, systemOwned: true)
        let services = Ownership(ownerID: nil)
        let alice = Caller.user(Self.alice)
        let bob = Caller.user(Self.bob)
        #expect(alice.canRead(alices) && !bob.canRead(alices) && Caller.service.canRead(alices))
        #expect(alice.canRead(system) && bob.canRead(system))
        #expect(!alice.canRead(services) && Caller.service.canRead(services))
        try alice.authorizeChange(alices, hidden: hidden)
        try Caller.service.authorizeChange(system, hidden: hidden)
        #expect(throws: hidden) { try bob.authorizeChange(alices, hidden: hidden) }
        #expect { try alice.authorizeChange(system, hidden: hidden) } throws: { ($0 as? APIError)?.code == "SYSTEM_OWNED" }
        #expect(try Caller.service.owner(naming: Self.bob) == Self.bob)
        #expect(try Caller.service.owner(naming: nil) == nil)
        #expect(try alice.owner(naming: nil) == Self.alice)
        #expect(try alice.owner(naming: Self.alice) == Self.alice)
        #expect { try alice.owner(naming: Self.bob) } throws: { ($0 as? APIError)?.code == "OWNER_NOT_ALLOWED" }
        #expect(throws: APIError.self) { try alice.authorizeSystemOwned(true) }
        try Caller.service.authorizeSystemOwned(true)
    }

    @Test("signatures: exact body and timestamp within the tolerance, nothing else")
    func signatures() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let body = Array(#"{"a":1}"#.utf8)
        let good = WebhookSignature.sign(secret: "s3cret", timestamp: "1800000000", body: body)
        /// The refusal, `nil` when accepted.
        func verify(_ signature: String?, _ timestamp: String?, body: [UInt8] = body) -> WebhookSignature.Refusal? {
            let result = WebhookSignature.verify(
                secret: "s3cret", signature: signature, timestamp: timestamp, body: body, now: now, tolerance: 300)
            if case .failure(let refusal) = result { return refusal }
            return nil
        }
        #expect(verify(good, "1800000000") == nil)
        #expect(verify(good.uppercased().replacingOccurrences(of: "SHA256=", with: ""), "1800000000") == nil)
        #expect(verify(nil, "1800000000") == .missingSignature)
        #expect(verify(good, nil) == .missingTimestamp)
        for timestamp in ["-1", "18e8", " 1800000000", "99999999999999999999", "１８"] {
            #expect(verify(good, timestamp) == .malformedTimestamp, "\(timestamp)")
        }
        let late = WebhookSignature.sign(secret: "s3cret", timestamp: "1800000301", body: body)
        #expect(verify(late, "1800000301") == .outsideTolerance)
        let edge = WebhookSignature.sign(secret: "s3cret", timestamp: "1799999700", body: body)
        #expect(verify(edge, "1799999700") == nil)
        #expect(verify(good, "1800000000", body: Array(#"{"a":2}"#.utf8)) == .mismatch)
        #expect(verify(good, "1800000001") == .mismatch)
        #expect(verify("sha256=zz", "1800000000") == .mismatch)
        #expect(verify(String(good.dropLast()), "1800000000") == .mismatch)
        #expect(WebhookSignature.isDeliveryID("evt_1") && !WebhookSignature.isDeliveryID("") && !WebhookSignature.isDeliveryID("a b"))
        #expect(!WebhookSignature.isDeliveryID(String(repeating: "x", count: 201)))
    }

    @Test("sensitive headers: the built-in list, anything naming a credential, and the configured ones")
    func sensitiveHeaders() {
        let headers = SensitiveHeaders(extra: ["X-Tenant-Key"])
        for name in [
            "Authorization", "COOKIE", "x-webhook-secret", "Dapr-Api-Token", "X-Refresh-Token", "x_api_key", "X-Tenant-Key",
            // Found by a hostile review: credential-looking names the first list let through.
            "X-Forwarded-Authorization", "X-Original-Authorization", "X-Private-Key", "X-Passphrase", "X-Pwd", "X-Bearer",
            "X-Auth-Key", "X-Access-Key", "X-Jwt", "Cookies", "X-Client-Cert", "X-Forwarded-Client-Cert", "X-Ms-Client-Principal",
            "X-Key", "X-Otp", "X-Pin",
        ] {
            #expect(headers.contains(name), "\(name)")
        }
        for name in ["X-Request-Source", "User-Agent", "X-GitHub-Event", "X-Webhook-Delivery", "X-Request-Id", "Content-Type"] {
            #expect(!headers.contains(name), "\(name)")
        }
    }

    @Test("loopback addresses, and the refusal to serve others without a token")
    func exposure() throws {
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"] { #expect(APIConfiguration.isLoopback(host), "\(host)") }
        for host in ["0.0.0.0", "::", "10.0.0.1", "127.0.0", "127.0.0.256", "example.com"] {
            #expect(!APIConfiguration.isLoopback(host), "\(host)")
        }
        var configuration = APIConfiguration(host: "0.0.0.0")
        #expect(throws: ConfigurationError.self) { try configuration.checkExposure() }
        configuration.allowUnauthenticated = true
        #expect(try configuration.checkExposure() == true)
        configuration.appAPIToken = "t"
        #expect(try configuration.checkExposure() == false)
        #expect(try APIConfiguration(host: "127.0.0.1").checkExposure() == false)
    }

    @Test("the route book names the methods of the route the router would pick")
    func routeBook() {
        let book = RouteBook()
        book.record(.get, "budpipeline/{id}")
        book.record(.put, "budpipeline/{id}")
        book.record(.get, "budpipeline/schedules")
        book.record(.post, "budpipeline/schedules")
        book.record(.get, "executions/{id}/steps")
        #expect(book.methods(for: "/budpipeline/schedules") == [.get, .post])
        #expect(book.methods(for: "/budpipeline/abc") == [.get, .put])
        #expect(book.methods(for: "/executions/x/steps/") == [.get])
        #expect(book.methods(for: "/executions/x") == [])
    }
}
