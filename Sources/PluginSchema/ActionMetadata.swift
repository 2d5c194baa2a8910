public import BudJSON

/// Everything the host, the validator and the admin UI know about one action (step handler).
///
/// Plugins describe each action with this document (JSON, snake_case keys); the HTTP API
/// serves it to the admin UI, which renders its parameter forms from it.
public struct ActionMetadata: Sendable, Equatable {
    /// Unique id used in DAG steps (`"action": "<type>"`): letters, digits and underscores.
    public var type: String
    /// Display name.
    public var name: String
    /// Grouping in the catalog, free text (e.g. `Deployment`).
    public var category: String
    public var description: String
    /// Semantic version of the action.
    public var version: String
    /// Icon name or emoji.
    public var icon: String
    /// Hex colour, e.g. `#8c8c8c`.
    public var color: String
    public var params: [ParamDefinition]
    public var outputs: [OutputDefinition]
    public var executionMode: ExecutionMode
    /// Default step timeout in seconds, when the action has one.
    public var timeoutSeconds: Int?
    public var retryPolicy: RetryPolicy?
    /// Whether running the action twice with the same parameters is harmless.
    public var idempotent: Bool
    /// Ids of the services the action calls through the host.
    public var requiredServices: [String]
    public var requiredPermissions: [String]
    public var examples: [ActionExample]
    public var docsURL: String?

    public init(
        type: String,
        name: String,
        category: String,
        description: String,
        version: String = "1.0.0",
        icon: String = "",
        color: String = "#8c8c8c",
        params: [ParamDefinition] = [],
        outputs: [OutputDefinition] = [],
        executionMode: ExecutionMode = .sync,
        timeoutSeconds: Int? = nil,
        retryPolicy: RetryPolicy? = nil,
        idempotent: Bool = true,
        requiredServices: [String] = [],
        requiredPermissions: [String] = [],
        examples: [ActionExample] = [],
        docsURL: String? = nil
    ) {
        self.type = type
        self.name = name
        self.category = category
        self.description = description
        self.version = version
        self.icon = icon
        self.color = color
        self.params = params
        self.outputs = outputs
        self.executionMode = executionMode
        self.timeoutSeconds = timeoutSeconds
        self.retryPolicy = retryPolicy
        self.idempotent = idempotent
        self.requiredServices = requiredServices
        self.requiredPermissions = requiredPermissions
        self.examples = examples
        self.docsURL = docsURL
    }
}

/// Whether an action finishes within its `execute` call or waits for an external event.
public enum ExecutionMode: String, Sendable, CaseIterable {
    case sync
    case eventDriven = "event_driven"
}

/// The input widget and value kind of a parameter.
public enum ParamType: String, Sendable, CaseIterable {
    case string, number, boolean, select, multiselect, json, template, branches, range
    case modelRef = "model_ref"
    case clusterRef = "cluster_ref"
    case projectRef = "project_ref"
    case endpointRef = "endpoint_ref"
    case providerRef = "provider_ref"
    case credentialRef = "credential_ref"
    case cloudModelRef = "cloud_model_ref"

    /// Whether the type needs ``ParamDefinition/options``.
    public var requiresOptions: Bool { self == .select || self == .multiselect }
}

/// One parameter of an action.
public struct ParamDefinition: Sendable, Equatable {
    public var name: String
    /// Label shown in the UI.
    public var label: String
    public var type: ParamType
    public var description: String?
    public var required: Bool
    /// Value used when the step does not set the parameter; `nil` for none.
    public var defaultValue: JSONValue?
    public var placeholder: String?
    /// Choices; required for ``ParamType/select`` and ``ParamType/multiselect``.
    public var options: [SelectOption]?
    public var validation: ValidationRules?
    /// UI section the parameter belongs to.
    public var group: String?
    /// Shows the parameter only when another parameter has (or has not) a value.
    public var showWhen: ConditionalVisibility?

    public init(
        name: String,
        label: String,
        type: ParamType = .string,
        description: String? = nil,
        required: Bool = false,
        defaultValue: JSONValue? = nil,
        placeholder: String? = nil,
        options: [SelectOption]? = nil,
        validation: ValidationRules? = nil,
        group: String? = nil,
        showWhen: ConditionalVisibility? = nil
    ) {
        self.name = name
        self.label = label
        self.type = type
        self.description = description
        self.required = required
        self.defaultValue = defaultValue
        self.placeholder = placeholder
        self.options = options
        self.validation = validation
        self.group = group
        self.showWhen = showWhen
    }
}

/// One choice of a select or multiselect parameter.
public struct SelectOption: Sendable, Equatable {
    public var label: String
    public var value: String

    public init(label: String, value: String) {
        self.label = label
        self.value = value
    }
}

/// Limits a parameter's value must respect.
public struct ValidationRules: Sendable, Equatable {
    /// Smallest allowed number.
    public var min: Double?
    /// Largest allowed number.
    public var max: Double?
    /// Shortest allowed string, in characters.
    public var minLength: Int?
    /// Longest allowed string, in characters.
    public var maxLength: Int?
    /// Regular expression the whole string must match.
    public var pattern: String?
    /// Message shown when ``pattern`` does not match.
    public var patternMessage: String?

    public init(
        min: Double? = nil,
        max: Double? = nil,
        minLength: Int? = nil,
        maxLength: Int? = nil,
        pattern: String? = nil,
        patternMessage: String? = nil
    ) {
        self.min = min
        self.max = max
        self.minLength = minLength
        self.maxLength = maxLength
        self.pattern = pattern
        self.patternMessage = patternMessage
    }
}

/// A condition on another parameter's value that decides whether a parameter is shown (and required).
public struct ConditionalVisibility: Sendable, Equatable {
    /// Name of the parameter the condition looks at.
    public var param: String
    public var equals: JSONValue?
    public var notEquals: JSONValue?

    public init(param: String, equals: JSONValue? = nil, notEquals: JSONValue? = nil) {
        self.param = param
        self.equals = equals
        self.notEquals = notEquals
    }
}

/// One output an action produces.
public struct OutputDefinition: Sendable, Equatable {
    /// Output key; `*` means the action produces keys chosen at run time.
    public var name: String
    /// Value kind: `string`, `number`, `boolean`, `object`, `array`, `json` or `any`.
    public var type: String
    public var description: String?

    public init(name: String, type: String = "any", description: String? = nil) {
        self.name = name
        self.type = type
        self.description = description
    }
}

/// How often and how fast a failed action is retried unless the step says otherwise.
public struct RetryPolicy: Sendable, Equatable {
    public var maxAttempts: Int
    public var backoffMultiplier: Double
    public var initialIntervalSeconds: Double
    public var maxIntervalSeconds: Double

    public init(
        maxAttempts: Int = 3,
        backoffMultiplier: Double = 2.0,
        initialIntervalSeconds: Double = 1.0,
        maxIntervalSeconds: Double = 60.0
    ) {
        self.maxAttempts = maxAttempts
        self.backoffMultiplier = backoffMultiplier
        self.initialIntervalSeconds = initialIntervalSeconds
        self.maxIntervalSeconds = maxIntervalSeconds
    }
}

/// A ready-made parameter set shown in the catalog.
public struct ActionExample: Sendable, Equatable {
    public var title: String
    public var params: JSONObject
    public var description: String?

    public init(title: String, params: JSONObject, description: String? = nil) {
        self.title = title
        self.params = params
        self.description = description
    }
}
