import BudJSON
import Crypto
public import Foundation

/// How a webhook's callers prove they may trigger it (see docs/security.md, "Webhooks").
public enum WebhookAuthMode: String, Sendable, CaseIterable {
    /// The default (`require_secret: true`): a shared secret in `X-Webhook-Secret`, compared in
    /// constant time.
    case secret
    /// An HMAC-SHA256 signature over the timestamp and the body, GitHub/Stripe style
    /// (``WebhookSignature``), with a tolerance window and a delivery id that may not repeat.
    case signature
    /// Nothing (`require_secret: false`): anyone who knows the URL may trigger it.
    case none
}

/// Signed webhook deliveries: `X-Webhook-Signature: sha256=<hex>` is the HMAC-SHA256, keyed with
/// the webhook's secret, of `<X-Webhook-Timestamp>.<raw body>`; the timestamp is Unix seconds and
/// must be within the webhook's tolerance of the server's clock; `X-Webhook-Delivery` names the
/// delivery and may not be used twice.
public enum WebhookSignature {
    public static let signatureHeader = "X-Webhook-Signature"
    public static let timestampHeader = "X-Webhook-Timestamp"
    public static let deliveryHeader = "X-Webhook-Delivery"
    /// The longest delivery id accepted.
    public static let maximumDeliveryIDLength = 200

    /// Why a delivery's signature was not accepted.
    public enum Refusal: Error, Equatable, Sendable {
        case missingSignature
        case missingTimestamp
        case malformedTimestamp
        /// The timestamp is further from now than the tolerance (a replay, or a skewed clock).
        case outsideTolerance
        case mismatch

        public var message: String {
            switch self {
            case .missingSignature: "The delivery has no \(signatureHeader) header"
            case .missingTimestamp: "The delivery has no \(timestampHeader) header"
            case .malformedTimestamp: "\(timestampHeader) is not a whole number of seconds since 1970"
            case .outsideTolerance: "\(timestampHeader) is too far from the server's clock; sign the delivery again"
            case .mismatch: "The signature does not match the body and timestamp"
            }
        }
    }

    /// `sha256=` and the lower-case hex HMAC-SHA256 of `<timestamp>.<body>` keyed with `secret`.
    public static func sign(secret: String, timestamp: String, body: some Sequence<UInt8>) -> String {
        "sha256=" + hex(mac(secret: secret, timestamp: timestamp, body: body))
    }

    /// Checks a delivery. `tolerance` is in seconds.
    ///
    /// On success, returns the signature in one canonical spelling (`sha256=` and lower-case hex,
    /// whatever prefix and case the sender used): the key under which the delivery is remembered,
    /// so that the same signed request sent again under a new delivery id is still a replay.
    public static func verify(
        secret: String, signature: String?, timestamp: String?, body: some Sequence<UInt8>, now: Date, tolerance: Int
    ) -> Result<String, Refusal> {
        guard let signature, !signature.isEmpty else { return .failure(.missingSignature) }
        guard let timestamp, !timestamp.isEmpty else { return .failure(.missingTimestamp) }
        guard timestamp.utf8.count <= 12, timestamp.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let seconds = Int(timestamp)
        else { return .failure(.malformedTimestamp) }
        guard abs(Double(seconds) - now.timeIntervalSince1970) <= Double(tolerance) else { return .failure(.outsideTolerance) }
        let expected = Array(mac(secret: secret, timestamp: timestamp, body: body))
        let given = signature.hasPrefix("sha256=") ? String(signature.dropFirst(7)) : signature
        guard let givenBytes = bytes(hex: given), givenBytes.count == expected.count,
            zip(givenBytes, expected).reduce(UInt8(0), { $0 | ($1.0 ^ $1.1) }) == 0
        else { return .failure(.mismatch) }
        return .success("sha256=" + hex(givenBytes))
    }

    private static func mac(secret: String, timestamp: String, body: some Sequence<UInt8>) -> HashedAuthenticationCode<SHA256> {
        var code = HMAC<SHA256>(key: SymmetricKey(data: Data(secret.utf8)))
        code.update(data: Data(timestamp.utf8))
        code.update(data: Data(".".utf8))
        code.update(data: Data(body))
        return code.finalize()
    }

    private static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// The bytes of `text` read as hexadecimal (any case); `nil` for anything else.
    private static func bytes(hex text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0, digits.count <= 128 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = value(of: digits[index]), let low = value(of: digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func value(of digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Whether `id` may name a delivery: 1 to ``maximumDeliveryIDLength`` printable ASCII characters.
    public static func isDeliveryID(_ id: String) -> Bool {
        let utf8 = id.utf8
        return !utf8.isEmpty && utf8.count <= maximumDeliveryIDLength && utf8.allSatisfy { (0x21...0x7E).contains($0) }
    }
}

/// Request headers a webhook may never copy into an execution's parameters, where anyone who can
/// read the execution would see them: credentials of the caller, of the webhook, of Dapr and of
/// this server, plus any the operator names (`BUDPIPELINE_SENSITIVE_HEADERS`).
public struct SensitiveHeaders: Sendable, Equatable {
    public static let builtIn: Set<String> = [
        "authorization", "proxy-authorization", "cookie", "set-cookie", "x-webhook-secret", "x-webhook-signature",
        "dapr-api-token", "x-app-api-token", "x-api-key", "x-auth-token", "x-csrf-token", "x-amz-security-token",
    ]
    /// Words that make any header name sensitive wherever they appear in it.
    static let sensitiveWords = [
        "token", "secret", "password", "passwd", "pwd", "passphrase", "api-key", "apikey", "credential", "session", "signature",
        "auth", "cookie", "private", "bearer", "jwt", "access-key", "accesskey", "cert", "principal", "otp",
    ]
    /// Short names that are credentials by themselves (but would match too much as words).
    static let sensitiveNames: Set<String> = ["x-key", "x-pin", "x-otp", "x-pass"]

    public var extra: Set<String>

    public init(extra: some Sequence<String> = []) {
        self.extra = Set(extra.map { $0.lowercased() })
    }

    /// Whether `header` is sensitive: built in, configured, naming a credential word anywhere, or
    /// captured under a parameter name (`header_<name>`) that API answers would mask anyway.
    public func contains(_ header: String) -> Bool {
        let name = header.lowercased().replacingOccurrences(of: "_", with: "-")
        return Self.builtIn.contains(name) || Self.sensitiveNames.contains(name) || extra.contains(name)
            || Self.sensitiveWords.contains { name.contains($0) }
            || SecretKeys.builtIn.isSecret("header_" + name.replacingOccurrences(of: "-", with: "_"))
    }
}
