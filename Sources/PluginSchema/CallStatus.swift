internal import PluginABI

/// The `bp_status` a plugin function or host service returns, as a Swift value.
public struct CallStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    public static let ok = CallStatus(rawValue: BP_STATUS_OK.rawValue)
    public static let awaitEvent = CallStatus(rawValue: BP_STATUS_AWAIT_EVENT.rawValue)
    public static let retryableError = CallStatus(rawValue: BP_STATUS_RETRYABLE_ERROR.rawValue)
    public static let fatalError = CallStatus(rawValue: BP_STATUS_FATAL_ERROR.rawValue)
    public static let notFound = CallStatus(rawValue: BP_STATUS_NOT_FOUND.rawValue)
    public static let unsupported = CallStatus(rawValue: BP_STATUS_UNSUPPORTED.rawValue)
    public static let invalidArgument = CallStatus(rawValue: BP_STATUS_INVALID_ARGUMENT.rawValue)
    public static let limitExceeded = CallStatus(rawValue: BP_STATUS_LIMIT_EXCEEDED.rawValue)

    /// The constant's name without the `BP_STATUS_` prefix, e.g. `FATAL_ERROR`; `STATUS_<n>` for unknown values.
    public var description: String {
        switch self {
        case .ok: "OK"
        case .awaitEvent: "AWAIT_EVENT"
        case .retryableError: "RETRYABLE_ERROR"
        case .fatalError: "FATAL_ERROR"
        case .notFound: "NOT_FOUND"
        case .unsupported: "UNSUPPORTED"
        case .invalidArgument: "INVALID_ARGUMENT"
        case .limitExceeded: "LIMIT_EXCEEDED"
        default: "STATUS_\(rawValue)"
        }
    }
}
