public import BudJSON

/// A pipeline: parameters, settings, steps and the outputs it produces (docs/dag.md).
public struct PipelineDefinition: Sendable, Equatable {
    public var name: String
    /// Informational version of the definition.
    public var version: String
    public var description: String?
    public var parameters: [PipelineParameter]
    public var settings: PipelineSettings
    public var steps: [PipelineStep]
    /// Output name → template, evaluated when the execution completes.
    public var outputs: [(name: String, template: String)]

    public init(
        name: String,
        version: String = "1.0",
        description: String? = nil,
        parameters: [PipelineParameter] = [],
        settings: PipelineSettings = PipelineSettings(),
        steps: [PipelineStep],
        outputs: [(name: String, template: String)] = []
    ) {
        self.name = name
        self.version = version
        self.description = description
        self.parameters = parameters
        self.settings = settings
        self.steps = steps
        self.outputs = outputs
    }

    public static func == (lhs: PipelineDefinition, rhs: PipelineDefinition) -> Bool {
        lhs.name == rhs.name && lhs.version == rhs.version && lhs.description == rhs.description && lhs.parameters == rhs.parameters
            && lhs.settings == rhs.settings && lhs.steps == rhs.steps && lhs.outputs.map(\.name) == rhs.outputs.map(\.name)
            && lhs.outputs.map(\.template) == rhs.outputs.map(\.template)
    }
}

/// An input of the pipeline.
public struct PipelineParameter: Sendable, Equatable {
    public var name: String
    /// `string`, `integer`, `float` (or `number`), `boolean`, `array`, `object`, or a reference type
    /// such as `model_ref` (a string). Values are checked only against a declared type.
    public var type: String?
    public var description: String?
    /// A required parameter without a default must be given when the pipeline runs.
    public var required: Bool
    /// Used when the caller does not give the parameter; `nil` for none.
    public var defaultValue: JSONValue?

    public init(name: String, type: String? = nil, description: String? = nil, required: Bool = true, defaultValue: JSONValue? = nil) {
        self.name = name
        self.type = type
        self.description = description
        self.required = required
        self.defaultValue = defaultValue
    }
}

/// Execution-wide settings.
public struct PipelineSettings: Sendable, Equatable {
    /// Time the whole execution may take; `nil` for no limit.
    public var timeoutSeconds: Int?
    /// Whether the first step failure that is not tolerated ends the execution at once.
    public var failFast: Bool
    /// Steps that may execute at the same time (steps waiting for an event do not count).
    public var maxParallelSteps: Int
    /// Retry settings of steps with `on_failure: retry` and no `retry` of their own.
    public var retryPolicy: StepRetry?

    public init(timeoutSeconds: Int? = nil, failFast: Bool = true, maxParallelSteps: Int = 10, retryPolicy: StepRetry? = nil) {
        self.timeoutSeconds = timeoutSeconds
        self.failFast = failFast
        self.maxParallelSteps = maxParallelSteps
        self.retryPolicy = retryPolicy
    }
}

/// What a step's failure means for the execution.
public enum FailurePolicy: String, Sendable, CaseIterable {
    /// The failure fails the execution.
    case fail
    /// The failure is recorded; dependants run and the execution can still complete.
    case `continue`
    /// The step is attempted again with backoff; when attempts run out it fails like `fail`.
    case retry
}

/// One node of the DAG.
public struct PipelineStep: Sendable, Equatable {
    public var id: String
    public var name: String
    /// The action type that runs the step.
    public var action: String
    /// Parameters; strings may be templates.
    public var params: JSONObject
    public var dependsOn: [String]
    /// Documentation only: the outputs the step is expected to produce.
    public var outputs: [String]
    /// Template or literal; a false condition skips the step.
    public var condition: String?
    public var onFailure: FailurePolicy
    /// Time one attempt may take; `nil` for the action's default.
    public var timeoutSeconds: Int?
    public var retry: StepRetry?
    /// How long the step is expected to take: its weight in the execution's progress and its part
    /// of the estimated time left.
    public var estimatedDurationSeconds: Int?

    public init(
        id: String,
        name: String,
        action: String,
        params: JSONObject = [:],
        dependsOn: [String] = [],
        outputs: [String] = [],
        condition: String? = nil,
        onFailure: FailurePolicy = .fail,
        timeoutSeconds: Int? = nil,
        retry: StepRetry? = nil,
        estimatedDurationSeconds: Int? = nil
    ) {
        self.id = id
        self.name = name
        self.action = action
        self.params = params
        self.dependsOn = dependsOn
        self.outputs = outputs
        self.condition = condition
        self.onFailure = onFailure
        self.timeoutSeconds = timeoutSeconds
        self.retry = retry
        self.estimatedDurationSeconds = estimatedDurationSeconds
    }
}

/// How a step is retried: attempts and exponential backoff with a cap. Each value may be a template
/// (`"{{ params.max_retries }}"`), resolved when the step first fails.
public struct StepRetry: Sendable, Equatable {
    /// Attempts in all, including the first (1...10).
    public var maxAttempts: TemplatedNumber
    /// Delay before the first retry.
    public var backoffSeconds: TemplatedNumber
    /// Factor applied to the delay after each retry.
    public var backoffMultiplier: TemplatedNumber
    /// Largest delay.
    public var maxBackoffSeconds: TemplatedNumber

    public init(
        maxAttempts: TemplatedNumber = .number(3),
        backoffSeconds: TemplatedNumber = .number(60),
        backoffMultiplier: TemplatedNumber = .number(2),
        maxBackoffSeconds: TemplatedNumber = .number(3600)
    ) {
        self.maxAttempts = maxAttempts
        self.backoffSeconds = backoffSeconds
        self.backoffMultiplier = backoffMultiplier
        self.maxBackoffSeconds = maxBackoffSeconds
    }
}

/// A number given literally or as a template.
public enum TemplatedNumber: Sendable, Equatable {
    case number(Double)
    case template(String)
}
