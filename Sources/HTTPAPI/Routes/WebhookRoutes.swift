import BudJSON
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PipelineEngine
import PipelineRuntime
import Storage

/// The `/webhooks` routes and `POST /trigger/{id}` (docs/security.md, "Webhooks"). A webhook's
/// secret is 32 random bytes (URL-safe Base64, 43 characters), shown once. In `secret` mode it is
/// stored as its SHA-256 and callers send it in `X-Webhook-Secret`, compared in constant time; in
/// `signature` mode it is stored as is (verifying an HMAC needs the key) and callers sign each
/// delivery (``WebhookSignature``). A delivery that names itself in `X-Webhook-Delivery` is
/// accepted once within twice the webhook's tolerance window.
struct WebhookRoutes: Sendable {
    let runtime: ExecutionRuntime
    let configuration: APIConfiguration

    private var store: PipelineStore { runtime.store }

    /// The most addresses in an allow-list and headers a webhook copies.
    static let maximumListLength = 100
    static let toleranceRange = 1...3600

    /// The `config` object of a request. A list that is absent is left as it is by an update;
    /// `null` removes it (every address allowed, no header copied).
    private struct ConfigFields {
        var requireSecret: Bool?
        var authMode: WebhookAuthMode?
        var allowedIPs: [String]?
        var allowedIPsGiven = false
        var headersToInclude: [String]?
        var headersGiven = false
        var tolerance: Int?

        /// The mode these fields ask for, if any: `auth_mode`, else `require_secret`.
        var requestedMode: WebhookAuthMode? {
            authMode ?? requireSecret.map { $0 ? .secret : .none }
        }
    }

    func create(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var request = request
        var reader = FieldReader(body: try await request.jsonObject(limit: configuration.maximumBodySize))
        let pipelineID = reader.requiredString("workflow_id")
        let bodyOwner = reader.string("user_id").flatMap(UUIDText.normalized)
        let name = reader.requiredString("name", maxLength: 255)
        let config = reader.nested("config", configFields)
        let params = reader.object("params") ?? [:]
        let enabled = reader.bool("enabled") ?? true
        if name?.isEmpty == true { reader.reject("name", "String should have at least 1 character") }
        try reader.finish()
        let caller = try Caller(request)
        let owner = try caller.owner(naming: bodyOwner)
        let pipeline = try await store.definitions.usablePipelineID(pipelineID ?? "", by: caller)
        let now = Date()
        var record = WebhookRecord(
            id: UUIDText.unguessable(), pipelineID: pipeline, name: name ?? "", secretHash: nil,
            signatureTolerance: config?.tolerance ?? 300, allowedIPs: config?.allowedIPs, headersToInclude: config?.headersToInclude ?? [],
            params: params, enabled: enabled, userID: owner, createdAt: now, updatedAt: now)
        let secret = Self.authenticate(&record, mode: config?.requestedMode ?? .secret)
        try await store.triggers.insert(record)
        return JSONResponse(
            Representation.webhook(record, baseURL: baseURL, masking: runtime.configuration.secretKeys, secret: secret), status: .created)
    }

    func list(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var reader = FieldReader(query: request)
        let filter = TriggerFilter(
            pipelineID: reader.uuid("workflow_id").map { PipelineID($0) }, enabled: reader.bool("enabled"),
            ownerID: try Caller(request).userID)
        try reader.finish()
        let base = baseURL
        let webhooks = try await store.triggers.list(WebhookRecord.self, matching: filter)
        return JSONResponse(.array(webhooks.map { Representation.webhook($0, baseURL: base, masking: runtime.configuration.secretKeys) }))
    }

    func get(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        JSONResponse(
            Representation.webhook(try await webhook(request, context, .read), baseURL: baseURL, masking: runtime.configuration.secretKeys))
    }

    /// `PUT /webhooks/{id}`: `name`, `config`, `params`, `enabled`, each optional; what the body
    /// does not mention stays as it is (in `config` too: an absent `allowed_ips` keeps the
    /// allow-list, `null` removes it). A new `auth_mode` (or `require_secret`) makes a new secret,
    /// shown in the answer once.
    func update(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var current = try await webhook(request, context, .change)
        var request = request
        var reader = FieldReader(body: try await request.jsonObject(limit: configuration.maximumBodySize))
        let name = reader.string("name", maxLength: 255)
        let config = reader.nested("config", configFields)
        let params = reader.object("params")
        let enabled = reader.bool("enabled")
        if name?.isEmpty == true { reader.reject("name", "String should have at least 1 character") }
        let expectedVersion = reader.integer("version", in: 1...Int(Int32.max))
        try reader.finish()
        let version = expectedVersion ?? current.version
        if let name { current.name = name }
        var secret: String?
        if let config {
            if config.allowedIPsGiven { current.allowedIPs = config.allowedIPs }
            if config.headersGiven { current.headersToInclude = config.headersToInclude ?? [] }
            if let tolerance = config.tolerance { current.signatureTolerance = tolerance }
            if let mode = config.requestedMode, mode != Self.mode(of: current) { secret = Self.authenticate(&current, mode: mode) }
        }
        if let params { current.params = runtime.configuration.secretKeys.restoringMasked(params, from: current.params) }
        if let enabled { current.enabled = enabled }
        current.updatedAt = Date()
        let stored = try await store.triggers.update(current, expectedVersion: version)
        return JSONResponse(Representation.webhook(stored, baseURL: baseURL, masking: runtime.configuration.secretKeys, secret: secret))
    }

    func delete(_ request: Request, context: some RequestContext) async throws -> NoContent {
        try await store.triggers.delete(WebhookRecord.self, in: context, for: try Caller(request), notFound: Self.notFound)
        return NoContent()
    }

    /// `POST /webhooks/{id}/rotate-secret`: a new secret, which the webhook now requires (a
    /// webhook that required nothing now requires the shared secret).
    func rotateSecret(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var current = try await webhook(request, context, .change)
        let version = current.version
        let secret = Self.authenticate(&current, mode: Self.mode(of: current) == .signature ? .signature : .secret)
        current.updatedAt = Date()
        let stored = try await store.triggers.update(current, expectedVersion: version)
        return JSONResponse(Representation.webhook(stored, baseURL: baseURL, masking: runtime.configuration.secretKeys, secret: secret))
    }

    /// `POST /trigger/{id}`: starts the webhook's pipeline as the webhook's owner. Parameters:
    /// the webhook's, then the body's `params`, then the configured headers (`header_<name>`;
    /// sensitive ones never), then `_trigger`.
    func trigger(_ request: Request, context: APIRequestContext) async throws -> JSONResponse {
        // Open to every caller: the webhook's own secret or signature authenticates the call.
        let current = try await store.triggers.find(WebhookRecord.self, in: context, for: .service, .read, notFound: Self.notFound)
        guard current.enabled else { throw APIError(.forbidden, code: "WEBHOOK_DISABLED", message: "Webhook is disabled") }
        var request = request
        let body = try await request.bodyBytes(limit: configuration.maximumBodySize)
        let now = Date()
        let signature = try Self.checkCredentials(of: request, body: body, for: current, now: now)
        if let allowed = current.allowedIPs {
            guard let peer = context.remoteAddress?.ipAddress, allowed.contains(peer) else {
                throw APIError(.forbidden, code: "IP_NOT_ALLOWED", message: "IP not allowed")
            }
        }
        var reader = FieldReader(body: try Request.jsonObject(from: body, emptyAllowed: true))
        let bodyParams = reader.object("params") ?? [:]
        try reader.finish()
        let remembered = try await refuseReplay(of: request, signature: signature, to: current, now: now)
        do {
            return try await start(current, request: request, bodyParams: bodyParams, now: now)
        } catch {
            // The delivery did not start anything: its sender may deliver it again.
            for key in remembered { try? await store.triggers.forgetDelivery(webhookID: current.id, deliveryID: key) }
            throw error
        }
    }

    /// Starts the webhook's pipeline for one accepted delivery.
    private func start(_ current: WebhookRecord, request: Request, bodyParams: JSONObject, now: Date) async throws -> JSONResponse {
        var params = current.params
        for (key, value) in bodyParams { params[key] = value }
        for header in current.headersToInclude where !configuration.sensitiveHeaders.contains(header) {
            guard let name = HTTPField.Name(header), let value = request.headers[name] else { continue }
            params["header_" + header.lowercased().replacingOccurrences(of: "-", with: "_")] = .string(value)
        }
        params["_trigger"] = [
            "type": "webhook", "webhook_id": .string(current.id), "webhook_name": .string(current.name),
            "triggered_at": .string(SQLTimestamp.format(now)),
        ]
        do {
            var start = ExecutionRequest(dag: .null, params: params, initiator: "webhook", ownerID: current.userID)
            start.traceParent = request.traceParent
            let record = try await runtime.startSavedPipeline(current.pipelineID, start)
            try await store.triggers.recordFiring(WebhookRecord.self, id: current.id, at: now)
            return JSONResponse(Representation.triggeredRun(record))
        } catch let error as ExecutionStartError {
            throw ExecutionRoutes.apiError(error, invalidTitle: "Invalid pipeline definition")
        }
    }

    /// Checks the secret or signature the webhook requires. Returns the delivery's signature in
    /// its canonical spelling, for a signed delivery.
    private static func checkCredentials(of request: Request, body: ByteBuffer, for webhook: WebhookRecord, now: Date) throws(APIError)
        -> String?
    {
        if let key = webhook.signingSecret {
            let result = WebhookSignature.verify(
                secret: key, signature: request.headers[HTTPField.Name(WebhookSignature.signatureHeader)!],
                timestamp: request.headers[HTTPField.Name(WebhookSignature.timestampHeader)!], body: body.readableBytesView, now: now,
                tolerance: webhook.signatureTolerance)
            let signature: String
            switch result {
            case .success(let canonical): signature = canonical
            case .failure(let refusal): throw APIError(.unauthorized, code: "INVALID_SIGNATURE", message: refusal.message)
            }
            guard request.headers[HTTPField.Name(WebhookSignature.deliveryHeader)!] != nil else {
                throw APIError(
                    .unauthorized, code: "INVALID_SIGNATURE",
                    message: "A signed delivery must name itself in \(WebhookSignature.deliveryHeader)")
            }
            return signature
        } else if let expected = webhook.secretHash {
            let given = request.headers[HTTPField.Name("X-Webhook-Secret")!] ?? ""
            guard constantTimeEquals(hash(given), expected) else {
                throw APIError(.unauthorized, code: "INVALID_SECRET", message: "Invalid secret")
            }
        }
        return nil
    }

    /// Remembers the delivery id the request gives and, for a signed delivery, its signature,
    /// refusing either when the webhook received it before within twice the longest tolerance (409
    /// `WEBHOOK_REPLAY`): a captured signed request sent again under a new delivery id is still a
    /// replay. Returns the keys remembered, which are forgotten if nothing starts.
    private func refuseReplay(of request: Request, signature: String?, to webhook: WebhookRecord, now: Date) async throws
        -> [String]
    {
        let delivery = request.headers[HTTPField.Name(WebhookSignature.deliveryHeader)!]
        if let delivery, !WebhookSignature.isDeliveryID(delivery) {
            throw APIError(
                .badRequest, code: "INVALID_DELIVERY_ID",
                message:
                    "\(WebhookSignature.deliveryHeader) must be 1 to \(WebhookSignature.maximumDeliveryIDLength) printable ASCII characters"
            )
        }
        // A signature is kept as "signature sha256=…": delivery ids have no spaces, so none can
        // pose as a signature (and both fit the 200 characters the table keeps).
        let signatureKey = signature.map { "signature " + $0 }
        let keys = [signatureKey, delivery].compactMap { $0 }
        // Remembered for twice the longest tolerance a webhook may be given, not its current one:
        // raising the tolerance later must not make a forgotten delivery acceptable again.
        let window = TimeInterval(2 * Self.toleranceRange.upperBound)
        var remembered: [String] = []
        for key in keys {
            let isNew: Bool
            do {
                isNew = try await store.triggers.rememberDelivery(
                    webhookID: webhook.id, deliveryID: key, at: now, forgetBefore: now.addingTimeInterval(-window))
            } catch {
                for earlier in remembered { try? await store.triggers.forgetDelivery(webhookID: webhook.id, deliveryID: earlier) }
                throw error
            }
            guard isNew else {
                for earlier in remembered { try? await store.triggers.forgetDelivery(webhookID: webhook.id, deliveryID: earlier) }
                let what = key == signatureKey ? "This signed request" : "This delivery (\(delivery ?? ""))"
                throw APIError(.conflict, code: "WEBHOOK_REPLAY", message: "\(what) was received before")
            }
            remembered.append(key)
        }
        return remembered
    }

    // MARK: Helpers

    private static let notFound = APIError(.notFound, code: "WEBHOOK_NOT_FOUND", message: "Webhook not found")

    /// The webhook the path names, when the caller may have `access` to it.
    private func webhook(_ request: Request, _ context: some RequestContext, _ access: Access) async throws -> WebhookRecord {
        try await store.triggers.find(WebhookRecord.self, in: context, for: try Caller(request), access, notFound: Self.notFound)
    }

    /// Where webhook URLs point: the configured public URL, else the address the server listens
    /// on (`localhost` for every interface). Never the request's `Host` header, which the caller
    /// chooses.
    private var baseURL: String {
        if let url = configuration.publicURL { return url }
        let host = ["0.0.0.0", "::", "[::]"].contains(configuration.host) ? "localhost" : configuration.host
        return "http://\(host):\(configuration.port)"
    }

    private func configFields(_ reader: inout FieldReader) -> ConfigFields {
        var fields = ConfigFields(
            requireSecret: reader.bool("require_secret"),
            authMode: reader.choice("auth_mode", as: WebhookAuthMode.self, among: WebhookAuthMode.allCases),
            allowedIPs: reader.stringArray("allowed_ips"), allowedIPsGiven: reader.isPresent("allowed_ips"),
            headersToInclude: reader.stringArray("headers_to_include"), headersGiven: reader.isPresent("headers_to_include"),
            tolerance: reader.integer("signature_tolerance_seconds", in: Self.toleranceRange))
        if let addresses = fields.allowedIPs {
            if addresses.count > Self.maximumListLength {
                reader.reject("allowed_ips", "At most \(Self.maximumListLength) addresses")
            }
            for address in addresses where (try? SocketAddress(ipAddress: address, port: 0)) == nil {
                reader.reject("allowed_ips", "'\(address.prefix(64))' is not an IPv4 or IPv6 address")
            }
        }
        if let headers = fields.headersToInclude {
            if headers.count > Self.maximumListLength {
                reader.reject("headers_to_include", "At most \(Self.maximumListLength) headers")
            }
            for header in headers {
                if HTTPField.Name(header) == nil {
                    reader.reject("headers_to_include", "'\(header.prefix(64))' is not a header name")
                } else if configuration.sensitiveHeaders.contains(header) {
                    reader.reject("headers_to_include", "'\(header)' carries credentials and is never copied into parameters")
                }
            }
            fields.headersToInclude = headers
        }
        return fields
    }

    /// How `webhook` authenticates its callers.
    static func mode(of webhook: WebhookRecord) -> WebhookAuthMode {
        webhook.signingSecret != nil ? .signature : webhook.secretHash != nil ? .secret : .none
    }

    /// Makes `webhook` require `mode` with a new secret; returns the secret (shown once), `nil`
    /// for `none`.
    static func authenticate(_ webhook: inout WebhookRecord, mode: WebhookAuthMode) -> String? {
        let secret = mode == .none ? nil : newSecret()
        webhook.secretHash = mode == .secret ? secret.map(hash) : nil
        webhook.signingSecret = mode == .signature ? secret : nil
        return secret
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
