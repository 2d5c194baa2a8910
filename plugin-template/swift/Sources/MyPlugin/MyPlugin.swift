import PluginKit

/// The library's entry point: the one symbol the host looks for. Add new handlers to the list.
@c(bp_plugin_entry_v1)
public func myPluginEntry(_ host: UnsafeRawPointer?) -> UnsafeRawPointer? {
    PluginExport.entry(
        host: host,
        manifest: PluginManifest(name: "my_plugin", version: "0.1.0", description: "My Plugin for BudPipeline."),
        handlers: [MyPluginHandler.self]
    )
}

/// The `my_plugin` action: repeats a text and reports its length.
///
/// Replace the body of `execute` with your step's work. Throw `StepFailure("...")` to fail the step,
/// `StepFailure.retryable("...")` when another attempt may succeed, and return `.awaitingEvent(...)`
/// when the step waits for an external event (then implement `onEvent`).
struct MyPluginHandler: ParameterValidating {
    static let metadata = ActionMetadata(
        type: "my_plugin",
        name: "My Plugin",
        category: "Custom",
        description: "Repeats a text a number of times.",
        icon: "puzzle-piece",
        params: [
            ParamDefinition(name: "text", label: "Text", type: .template, required: true, placeholder: "hello"),
            ParamDefinition(
                name: "times", label: "Times", type: .number, defaultValue: 1,
                validation: ValidationRules(min: 1, max: 10)
            ),
        ],
        outputs: [
            OutputDefinition(name: "result", type: "string", description: "The repeated text"),
            OutputDefinition(name: "length", type: "number", description: "Characters in the result"),
        ],
        examples: [ActionExample(title: "Say it twice", params: ["text": "hello", "times": 2])]
    )

    init(configuration: PluginConfiguration) throws {}

    func execute(_ request: ExecuteRequest, context: StepContext) throws -> StepOutcome {
        let errors = validate(params: request.params)
        guard errors.isEmpty else { throw StepFailure(errors.joined(separator: "; ")) }
        let text = request.params["text"]?.stringValue ?? ""
        let times = request.params["times"]?.intValue ?? 1
        let result = String(repeating: text, count: times)
        context.log(.info, "repeated the text \(times) time(s)")
        return .completed(outputs: ["result": .string(result), "length": .int(result.count)])
    }

    func validate(params: JSONObject) -> [String] {
        var errors: [String] = []
        if params["text"]?.stringValue?.isEmpty ?? true { errors.append("text is required") }
        if let times = params["times"], !times.isNull {
            if let count = times.intValue, (1...10).contains(count) {
            } else {
                errors.append("times must be a whole number from 1 to 10")
            }
        }
        return errors
    }
}
