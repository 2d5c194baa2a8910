import BudJSON
import Foundation
import PluginSchema

extension BuiltInActions {
    static let logMetadata = ActionMetadata(
        type: "log", name: "Log", category: "Control Flow",
        description: "Writes a message to the execution log.",
        icon: "note", color: "#6b7280",
        params: [
            ParamDefinition(
                name: "message", label: "Message", type: .template, description: "Text to log; may use templates.",
                defaultValue: ""
            ),
            ParamDefinition(
                name: "level", label: "Log Level", type: .select, defaultValue: "info",
                options: ["debug", "info", "warning", "error"].map { SelectOption(label: $0.capitalized, value: $0) }
            ),
        ],
        outputs: [
            OutputDefinition(name: "logged", type: "boolean", description: "Always true"),
            OutputDefinition(name: "message", type: "string", description: "The message logged"),
            OutputDefinition(name: "level", type: "string", description: "The level, lower case"),
        ]
    )

    static let failMetadata = ActionMetadata(
        type: "fail", name: "Fail", category: "Control Flow",
        description: "Fails the step on purpose, with a message and an error code.",
        icon: "x-circle", color: "#ef4444",
        params: [
            ParamDefinition(name: "message", label: "Message", type: .template, defaultValue: "Intentional failure"),
            ParamDefinition(name: "error_code", label: "Error Code", type: .string, defaultValue: "INTENTIONAL_FAILURE"),
        ],
        outputs: [OutputDefinition(name: "error_code", type: "string"), OutputDefinition(name: "message", type: "string")]
    )

    static let setOutputMetadata = ActionMetadata(
        type: "set_output", name: "Set Output", category: "Control Flow",
        description: "Makes an object the step's outputs.",
        icon: "arrow-square-out", color: "#06b6d4",
        params: [ParamDefinition(name: "outputs", label: "Outputs", type: .json, description: "Key/value pairs", defaultValue: [:])],
        outputs: [OutputDefinition(name: "*", type: "any", description: "The keys of `outputs`")]
    )

    static let transformMetadata = ActionMetadata(
        type: "transform", name: "Transform", category: "Control Flow",
        description: "Transforms a value: change case, keys or values, count, flatten, unique, sort or reverse.",
        icon: "swap", color: "#10b981",
        params: [
            ParamDefinition(name: "input", label: "Input", type: .json, defaultValue: [:]),
            ParamDefinition(
                name: "operation", label: "Operation", type: .select, defaultValue: "passthrough",
                options: transformOperations.map { SelectOption(label: $0.capitalized, value: $0) }
            ),
        ],
        outputs: [
            OutputDefinition(name: "result", type: "any"), OutputDefinition(name: "operation", type: "string"),
            OutputDefinition(name: "input_type", type: "string"), OutputDefinition(name: "output_type", type: "string"),
        ]
    )

    static let aggregateMetadata = ActionMetadata(
        type: "aggregate", name: "Aggregate", category: "Control Flow",
        description: "Combines a list of values: list, sum, join, merge, first, last, min, max, average, count or flatten.",
        icon: "stack", color: "#f59e0b",
        params: [
            ParamDefinition(name: "inputs", label: "Inputs", type: .json, defaultValue: []),
            ParamDefinition(
                name: "operation", label: "Operation", type: .select, defaultValue: "list",
                options: aggregateOperations.map { SelectOption(label: $0.capitalized, value: $0) }
            ),
            ParamDefinition(
                name: "separator", label: "Separator", type: .string, defaultValue: ", ",
                showWhen: ConditionalVisibility(param: "operation", equals: "join")
            ),
        ],
        outputs: [
            OutputDefinition(name: "result", type: "any"), OutputDefinition(name: "count", type: "number"),
            OutputDefinition(name: "operation", type: "string"),
        ]
    )

    static let conditionalMetadata = ActionMetadata(
        type: conditionalType, name: "Conditional Branch", category: "Control Flow",
        description: "Chooses the first branch whose condition holds; the other branches' target steps are skipped.",
        icon: "git-branch", color: "#8b5cf6",
        params: [
            ParamDefinition(
                name: "branches", label: "Branches", type: .branches,
                description: "Ordered list of {id, label, condition, target_step}", defaultValue: []
            ),
            ParamDefinition(name: "condition", label: "Condition", type: .boolean, defaultValue: true, group: "Legacy"),
            ParamDefinition(name: "true_result", label: "True Result", type: .json, defaultValue: ["branch": "true"], group: "Legacy"),
            ParamDefinition(name: "false_result", label: "False Result", type: .json, defaultValue: ["branch": "false"], group: "Legacy"),
        ],
        outputs: [
            OutputDefinition(name: "matched_branch", type: "string"), OutputDefinition(name: "matched_label", type: "string"),
            OutputDefinition(name: "target_step", type: "string"), OutputDefinition(name: "result", type: "any"),
            OutputDefinition(name: "branch", type: "string"),
        ]
    )

    static let waitUntilMetadata = ActionMetadata(
        type: waitUntilType, name: "Wait Until", category: "Control Flow",
        description: "Pauses the step for a duration or until a time; other branches keep running.",
        icon: "clock", color: "#6366f1",
        params: [
            ParamDefinition(
                name: "duration_hours", label: "Duration (hours)", type: .number,
                validation: ValidationRules(min: WaitUntil.minimumHours, max: WaitUntil.maximumHours)
            ),
            ParamDefinition(
                name: "until_time", label: "Until", type: .string,
                description: "ISO 8601 date and time, or HH:MM[:SS] for the next occurrence", placeholder: "2026-06-01T09:00:00"
            ),
            ParamDefinition(name: "timezone", label: "Time Zone", type: .string, description: "IANA name", defaultValue: "UTC"),
        ],
        outputs: [
            OutputDefinition(name: "waited", type: "boolean"), OutputDefinition(name: "scheduled_wake_time", type: "string"),
            OutputDefinition(name: "actual_wake_time", type: "string"), OutputDefinition(name: "wait_duration_seconds", type: "number"),
        ],
        executionMode: .eventDriven,
        timeoutSeconds: 604_860
    )
}
