public import BudJSON
public import PluginSchema

/// A step handler: one action of a plugin, written in Swift.
///
/// Implement ``execute(_:context:)``. An action that does more adopts the protocol for it, whose
/// requirement it must then implement with exactly that signature — a method with another label
/// or type is a compile error, not a function the host never calls:
///
/// | the action … | adopt | implement |
/// |---|---|---|
/// | waits for events (`execution_mode: event_driven`) | ``EventHandling`` | `func onEvent(_ event: EventRequest, context: StepContext) throws -> EventOutcome` |
/// | checks parameters beyond its metadata | ``ParameterValidating`` | `func validate(params: JSONObject) -> [String]` |
/// | stops or undoes work of an abandoned step | ``CleanupHandling`` | `func cleanup(_ request: CleanupRequest, context: StepContext) throws` |
///
/// An `event_driven` action whose handler does not adopt ``EventHandling`` is refused when the
/// plugin loads (its steps would wait for an event nothing interprets). The host creates one
/// instance per action when it initialises the plugin and calls it from several threads at once,
/// hence `Sendable`. Every call runs on a dedicated host thread: blocking (for example in
/// ``StepContext/invokeService(_:method:path:body:timeout:)``) is fine.
///
/// Throwing from a requirement fails the step: a ``StepFailure`` keeps its message, outputs and
/// retryability; an error conforming to ``RetryableError`` makes the step RETRYABLE; any other
/// error is fatal, with the error's description as the message.
public protocol StepHandler: Sendable {
    /// The action's metadata; its `type` is the action name used in DAG steps.
    static var metadata: ActionMetadata { get }

    /// Creates the handler with the plugin's configuration. Throwing refuses the plugin.
    init(configuration: PluginConfiguration) throws

    /// Runs one attempt of a step.
    func execute(_ request: ExecuteRequest, context: StepContext) throws -> StepOutcome
}

/// A handler whose steps wait for events (the action's `on_event`).
public protocol EventHandling: StepHandler {
    /// Interprets an event for a step this action left awaiting one.
    func onEvent(_ event: EventRequest, context: StepContext) throws -> EventOutcome
}

/// A handler that checks parameters beyond what its metadata declares (the action's
/// `validate_params`, run when a pipeline is validated, saved or started).
public protocol ParameterValidating: StepHandler {
    /// The problems with `params`; empty when they are fine.
    func validate(params: JSONObject) -> [String]
}

/// A handler that stops or undoes the external work of a step the host abandoned (the action's
/// `cleanup`).
public protocol CleanupHandling: StepHandler {
    func cleanup(_ request: CleanupRequest, context: StepContext) throws
}

/// The plugin's configuration: the JSON object the operator supplied for it (empty when none).
public struct PluginConfiguration: Sendable, Equatable {
    public let values: JSONObject

    public init(_ values: JSONObject = [:]) {
        self.values = values
    }

    public subscript(key: String) -> JSONValue? {
        values[key]
    }
}

/// Marks an error as worth retrying: the step fails with RETRYABLE_ERROR instead of FATAL_ERROR.
public protocol RetryableError: Error {}

/// Fails the step with a message, optional outputs, and whether a retry may help.
public struct StepFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var outputs: JSONObject
    public var isRetryable: Bool

    public init(_ message: String, outputs: JSONObject = [:], retryable: Bool = false) {
        self.message = message
        self.outputs = outputs
        self.isRetryable = retryable
    }

    /// A failure that another attempt may not repeat.
    public static func retryable(_ message: String, outputs: JSONObject = [:]) -> StepFailure {
        StepFailure(message, outputs: outputs, retryable: true)
    }

    public var description: String { message }
}

extension StepOutcome {
    /// The failure a thrown error stands for.
    init(error: any Error) {
        switch error {
        case let failure as StepFailure:
            self = .failed(message: failure.message, retryable: failure.isRetryable, outputs: failure.outputs)
        case let refused as ServiceCallError where refused.isRefused:
            self = .failed(message: refused.message, retryable: false)
        case let retryable as any RetryableError:
            self = .failed(message: String(describing: retryable), retryable: true)
        default:
            self = .failed(message: String(describing: error), retryable: false)
        }
    }
}
