import BudJSON
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Runtime
import Storage

/// The `/webhooks` routes and `POST /trigger/{id}` (behaviour doc §7.4). A webhook's secret is
/// 32 random bytes (URL-safe Base64, 43 characters), shown once and stored as its SHA-256; a
/// caller sends it in `X-Webhook-Secret`, compared in constant time.
struct WebhookRoutes: Sendable {
    let runtime: ExecutionRuntime
    let configuration: APIConfiguration

    private var store: PipelineStore { runtime.store }

    /// The `config` object of a request.
    private struct ConfigFields {
        var requireSecret: Bool?
        var allowedIPs: [String]?
        var headersToInclude: [String]?
    }

    func create(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var request = request
        var reader = FieldReader(body: try await request.jsonObject(limit: configuration.maximumBodySize))
        let pipelineID = reader.requiredString("workflow_id")
        let name = reader.requiredString("name", maxLength: 255)
        let config = reader.nested("config", Self.configFields)
        let params = reader.object("params") ?? [:]
        let enabled = reader.bool("enabled") ?? true
        if name?.isEmpty == true { reader.reject("name", "String should have at least 1 character") }
        try reader.finish()
        let pipeline = try await store.existingPipelineID(pipelineID ?? "")
        let secret = config?.requireSecret ?? true ? Self.newSecret() : nil
        let now = Date()
        let record = WebhookRecord(
            id: UUID().uuidString.lowercased(), pipelineID: pipeline, name: name ?? "", secretHash: secret.map(Self.hash),
            allowedIPs: config?.allowedIPs, headersToInclude: config?.headersToInclude ?? [], params: params, enabled: enabled,
            userID: PipelineRoutes.userID(request), createdAt: now, updatedAt: now)
        try await store.insertTrigger(record)
        return JSONResponse(
            Representation.webhook(record, baseURL: baseURL(request), masking: runtime.configuration.secretKeys, secret: secret),
            status: .created)
    }

    func list(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var reader = FieldReader(query: request)
        let filter = TriggerFilter(pipelineID: reader.uuid("workflow_id"), enabled: reader.bool("enabled"))
        try reader.finish()
        let base = baseURL(request)
        let webhooks = try await store.triggers(WebhookRecord.self, matching: filter)
        return JSONResponse(.array(webhooks.map { Representation.webhook($0, baseURL: base, masking: runtime.configuration.secretKeys) }))
    }

    func get(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        JSONResponse(
            Representation.webhook(try await webhook(context), baseURL: baseURL(request), masking: runtime.configuration.secretKeys))
    }

    /// `PUT /webhooks/{id}`: `name`, `config` (its lists replace the stored ones;
    /// `require_secret` is ignored — rotate the secret to require one), `params`, `enabled`.
    func update(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var current = try await webhook(context)
        var request = request
        var reader = FieldReader(body: try await request.jsonObject(limit: configuration.maximumBodySize))
        let name = reader.string("name", maxLength: 255)
        let config = reader.nested("config", Self.configFields)
        let params = reader.object("params")
        let enabled = reader.bool("enabled")
        if name?.isEmpty == true { reader.reject("name", "String should have at least 1 character") }
        let expectedVersion = reader.integer("version", in: 1...Int(Int32.max))
        try reader.finish()
        let version = expectedVersion ?? current.version
        if let name { current.name = name }
        if let config {
            current.allowedIPs = config.allowedIPs
            current.headersToInclude = config.headersToInclude ?? []
        }
        if let params { current.params = runtime.configuration.secretKeys.restoringMasked(params, from: current.params) }
        if let enabled { current.enabled = enabled }
        current.updatedAt = Date()
        let stored = try await store.updateTrigger(current, expectedVersion: version)
        return JSONResponse(Representation.webhook(stored, baseURL: baseURL(request), masking: runtime.configuration.secretKeys))
    }

    func delete(_ request: Request, context: some RequestContext) async throws -> NoContent {
        try await store.deleteTrigger(WebhookRecord.self, in: context, notFound: Self.notFound)
        return NoContent()
    }

    /// `POST /webhooks/{id}/rotate-secret`: a new secret, which the webhook now requires.
    func rotateSecret(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var current = try await webhook(context)
        let version = current.version
        let secret = Self.newSecret()
        current.secretHash = Self.hash(secret)
        current.updatedAt = Date()
        let stored = try await store.updateTrigger(current, expectedVersion: version)
        return JSONResponse(
            Representation.webhook(stored, baseURL: baseURL(request), masking: runtime.configuration.secretKeys, secret: secret))
    }

    /// `POST /trigger/{id}`: starts the webhook's pipeline. Parameters: the webhook's, then the
    /// body's `params`, then the configured headers (`header_<name>`), then `_trigger`.
    func trigger(_ request: Request, context: APIRequestContext) async throws -> JSONResponse {
        let current = try await webhook(context)
        guard current.enabled else { throw APIError(.forbidden, code: "WEBHOOK_DISABLED", message: "Webhook is disabled") }
        if let expected = current.secretHash {
            let given = request.headers[HTTPField.Name("X-Webhook-Secret")!] ?? ""
            guard Self.constantTimeEquals(Self.hash(given), expected) else {
                throw APIError(.unauthorized, code: "INVALID_SECRET", message: "Invalid secret")
            }
        }
        if let allowed = current.allowedIPs {
            guard let peer = context.remoteAddress?.ipAddress, allowed.contains(peer) else {
                throw APIError(.forbidden, code: "IP_NOT_ALLOWED", message: "IP not allowed")
            }
        }
        var request = request
        var reader = FieldReader(body: try await request.jsonObject(limit: configuration.maximumBodySize, emptyAllowed: true))
        let bodyParams = reader.object("params") ?? [:]
        try reader.finish()
        var params = current.params
        for (key, value) in bodyParams { params[key] = value }
        for header in current.headersToInclude {
            guard let name = HTTPField.Name(header), let value = request.headers[name] else { continue }
            params["header_" + header.lowercased().replacingOccurrences(of: "-", with: "_")] = .string(value)
        }
        let now = Date()
        params["_trigger"] = [
            "type": "webhook", "webhook_id": .string(current.id), "webhook_name": .string(current.name),
            "triggered_at": .string(SQLTimestamp.format(now)),
        ]
        do {
            let record = try await runtime.startSavedPipeline(
                current.pipelineID, ExecutionRequest(dag: .null, params: params, initiator: "webhook"))
            try await store.recordFiring(WebhookRecord.self, id: current.id, at: now)
            return JSONResponse(Representation.triggeredRun(record))
        } catch let error as ExecutionStartError {
            throw ExecutionRoutes.apiError(error, invalidTitle: "Invalid pipeline definition")
        }
    }

    // MARK: Helpers

    private static let notFound = APIError(.notFound, code: "WEBHOOK_NOT_FOUND", message: "Webhook not found")

    private func webhook(_ context: some RequestContext) async throws -> WebhookRecord {
        try await store.trigger(WebhookRecord.self, in: context, notFound: Self.notFound)
    }

    private func baseURL(_ request: Request) -> String {
        if let url = configuration.publicURL { return url }
        let host = request.head.authority ?? "\(configuration.host):\(configuration.port)"
        return "http://\(host)"
    }

    private static func configFields(_ reader: inout FieldReader) -> ConfigFields {
        ConfigFields(
            requireSecret: reader.bool("require_secret"), allowedIPs: reader.stringArray("allowed_ips"),
            headersToInclude: reader.stringArray("headers_to_include"))
    }

    /// 32 random bytes as URL-safe Base64 without padding.
    static func newSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func hash(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Compares two digests without stopping at the first difference.
    static func constantTimeEquals(_ lhs: String, _ rhs: String) -> Bool {
        let left = Array(lhs.utf8)
        let right = Array(rhs.utf8)
        guard left.count == right.count else { return false }
        return zip(left, right).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
