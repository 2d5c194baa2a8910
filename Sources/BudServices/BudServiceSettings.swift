public import PluginKit

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What the domain plugins need to reach the bud services: their Dapr app ids, the user to act as
/// when an execution names none, and an optional cap on call timeouts.
///
/// Each value comes from the plugin's configuration (`BUDPIPELINE_PLUGIN_CONFIG`), else from the
/// environment variable (the names deployments already set), else from the default:
///
/// | configuration key | environment | default |
/// |---|---|---|
/// | `budapp_app_id` | `BUDAPP_APP_ID` | `budapp` |
/// | `budcluster_app_id` | `BUDCLUSTER_APP_ID` | `budcluster` |
/// | `budsim_app_id` | `BUDSIM_APP_ID` | `budsim` |
/// | `system_user_id` | `SYSTEM_USER_ID` | none |
/// | `call_timeout_seconds` | — | each call's own (30–120 s) |
public struct BudServiceSettings: Sendable, Equatable {
    public var budappAppID: String
    public var budclusterAppID: String
    public var budsimAppID: String
    /// The user budapp calls act as when the execution has no `user_id`.
    public var systemUserID: String?
    /// When set, every call waits at most this long, whatever its own default.
    public var callTimeoutCap: Duration?

    public init(configuration: PluginConfiguration) throws(StepFailure) {
        func value(_ key: String, _ variable: String?, _ fallback: String?) -> String? {
            if let configured = configuration[key]?.stringValue, !configured.isEmpty { return configured }
            if let variable, let raw = getenv(variable), case let text = String(cString: raw), !text.isEmpty { return text }
            return fallback
        }
        budappAppID = value("budapp_app_id", "BUDAPP_APP_ID", "budapp") ?? "budapp"
        budclusterAppID = value("budcluster_app_id", "BUDCLUSTER_APP_ID", "budcluster") ?? "budcluster"
        budsimAppID = value("budsim_app_id", "BUDSIM_APP_ID", "budsim") ?? "budsim"
        systemUserID = value("system_user_id", "SYSTEM_USER_ID", nil)
        switch configuration["call_timeout_seconds"] {
        case nil, .null: callTimeoutCap = nil
        case let seconds? where (seconds.doubleValue ?? 0) > 0 && (seconds.doubleValue ?? 0) <= 86_400:
            callTimeoutCap = .milliseconds(Int((seconds.doubleValue ?? 0) * 1000))
        case let other?: throw StepFailure("call_timeout_seconds must be a positive number of at most 86400, got \(other)")
        }
    }

    /// The user a budapp call acts as: the execution's owner as the host names it
    /// (``ExecuteRequest/userID``), else the system user.
    ///
    /// No parameter is read — neither the step's `params.user_id` nor anything a caller could put
    /// into the execution's parameters: a pipeline author, a schedule or a webhook sender must not be
    /// able to act as someone else.
    public func actingUser(of request: ExecuteRequest) -> String? {
        if let user = request.userID, !user.isEmpty { return user }
        return systemUserID
    }

    /// ``actingUser(of:)``, or a failure (carrying `outputs` marked failed) saying how to give one.
    public func requireActingUser(of request: ExecuteRequest, outputs: JSONObject) throws(StepFailure) -> String {
        guard let user = actingUser(of: request) else {
            let message =
                "no user to act as on budapp: run the pipeline as a user (X-User-ID, or the service naming user_id) or configure system_user_id"
            throw StepFailure(message, outputs: outputs.failed(with: message))
        }
        return user
    }

    /// `seconds`, or the configured cap when that is shorter.
    public func timeout(seconds: Int) -> Duration {
        let own = Duration.seconds(seconds)
        guard let cap = callTimeoutCap else { return own }
        return min(own, cap)
    }
}

/// The topic budapp is asked to publish a started workflow's progress and completion to
/// (`callback_topic`), which BudPipeline subscribes to.
public let callbackTopic = "budpipelineEvents"

/// Reading budapp's model records.
public enum BudModel {
    /// The path budsim and the engines load the model from: `local_path`, else `uri`, else
    /// `huggingface_url`.
    public static func path(_ model: JSONValue) -> String? {
        ["local_path", "uri", "huggingface_url"].lazy.compactMap { model[$0]?.stringValue }.first { !$0.isEmpty }
    }
}
