public import BudJSON

extension ActionMetadata {
    /// Reads and validates an action metadata document (snake_case keys; unknown keys are ignored).
    ///
    /// Throws the first problem found, as a short message that names the field
    /// (`name is required`, `duplicate param name: x`, ...).
    public init(json: JSONValue) throws(SchemaError) {
        let reader = try ObjectReader(json)
        self.init(
            type: try reader.string("type") ?? "",
            name: try reader.string("name") ?? "",
            category: try reader.string("category") ?? "",
            description: try reader.string("description") ?? "",
            version: try reader.string("version") ?? "1.0.0",
            icon: try reader.string("icon") ?? "",
            color: try reader.string("color") ?? "#8c8c8c",
            params: try Self.elements(of: reader, key: "params", name: "param", ParamDefinition.init(json:path:)),
            outputs: try Self.elements(of: reader, key: "outputs", name: "output", OutputDefinition.init(json:path:)),
            executionMode: try Self.executionMode(reader),
            timeoutSeconds: try reader.int("timeout_seconds"),
            retryPolicy: try reader.value("retry_policy").map { value throws(SchemaError) in
                try RetryPolicy(json: value, path: "retry_policy")
            },
            idempotent: try reader.bool("idempotent") ?? true,
            requiredServices: try reader.stringArray("required_services") ?? [],
            requiredPermissions: try reader.stringArray("required_permissions") ?? [],
            examples: try Self.elements(of: reader, key: "examples", name: "example", ActionExample.init(json:path:)),
            docsURL: try reader.string("docs_url")
        )
        try validate()
    }

    /// Checks the rules a registered action must satisfy; throws the first violation.
    public func validate() throws(SchemaError) {
        for (field, value) in [("type", type), ("name", name), ("category", category), ("description", description)]
        where value.isEmpty {
            throw SchemaError("\(field) is required")
        }
        guard Self.isValidActionType(type) else {
            throw SchemaError("type must be alphanumeric with underscores only")
        }
        if let timeoutSeconds, timeoutSeconds <= 0 || timeoutSeconds > DurationLimits.maximumSeconds {
            throw SchemaError(
                "timeout_seconds must be a positive integer of at most \(DurationLimits.maximumSeconds), got \(timeoutSeconds)")
        }
        try retryPolicy?.validate()
        var paramNames: Set<String> = []
        for (index, param) in params.enumerated() {
            if param.name.isEmpty { throw SchemaError("param[\(index)].name is required") }
            if !paramNames.insert(param.name).inserted { throw SchemaError("duplicate param name: \(param.name)") }
            try param.validate(index: index)
        }
        for param in params {
            if let showWhen = param.showWhen, !paramNames.contains(showWhen.param) {
                throw SchemaError("param '\(param.name)' show_when refers to unknown param '\(showWhen.param)'")
            }
        }
        var outputNames: Set<String> = []
        for (index, output) in outputs.enumerated() {
            if output.name.isEmpty { throw SchemaError("output[\(index)].name is required") }
            if !outputNames.insert(output.name).inserted { throw SchemaError("duplicate output name: \(output.name)") }
        }
        for (index, example) in examples.enumerated() where example.title.isEmpty {
            throw SchemaError("example[\(index)].title is required")
        }
    }

    /// Whether `type` is a valid action type: one or more ASCII letters, digits or underscores.
    public static func isValidActionType(_ type: String) -> Bool {
        !type.isEmpty
            && type.utf8.allSatisfy { byte in
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_")
            }
    }

    /// The metadata document in the plugin ABI's form (snake_case keys; absent optionals omitted).
    public var json: JSONValue {
        var object: JSONObject = [
            "type": .string(type), "name": .string(name), "category": .string(category),
            "description": .string(description), "version": .string(version), "icon": .string(icon),
            "color": .string(color), "params": .array(params.map(\.json)), "outputs": .array(outputs.map(\.json)),
            "execution_mode": .string(executionMode.rawValue),
        ]
        object.setIfPresent("timeout_seconds", timeoutSeconds.map(JSONValue.int))
        object.setIfPresent("retry_policy", retryPolicy?.json)
        object["idempotent"] = .bool(idempotent)
        object["required_services"] = .array(requiredServices.map(JSONValue.string))
        object["required_permissions"] = .array(requiredPermissions.map(JSONValue.string))
        object["examples"] = .array(examples.map(\.json))
        object.setIfPresent("docs_url", docsURL.map(JSONValue.string))
        return .object(object)
    }

    private static func executionMode(_ reader: ObjectReader) throws(SchemaError) -> ExecutionMode {
        guard let mode = try reader.string("execution_mode") else { return .sync }
        guard let parsed = ExecutionMode(rawValue: mode) else {
            throw SchemaError("execution_mode must be 'sync' or 'event_driven', got '\(mode)'")
        }
        return parsed
    }

    private static func elements<Element>(
        of reader: ObjectReader,
        key: String,
        name: String,
        _ decode: (JSONValue, String) throws(SchemaError) -> Element
    ) throws(SchemaError) -> [Element] {
        guard let values = try reader.array(key) else { return [] }
        var elements: [Element] = []
        elements.reserveCapacity(values.count)
        for (index, value) in values.enumerated() {
            elements.append(try decode(value, "\(name)[\(index)]"))
        }
        return elements
    }
}

extension ParamDefinition {
    init(json: JSONValue, path: String) throws(SchemaError) {
        let reader = try ObjectReader(json, path: path)
        let typeName = try reader.string("type") ?? ParamType.string.rawValue
        guard let type = ParamType(rawValue: typeName) else {
            let known = ParamType.allCases.map(\.rawValue).joined(separator: ", ")
            throw SchemaError("\(reader.field("type")) '\(typeName)' is not one of: \(known)")
        }
        var options: [SelectOption]?
        if let values = try reader.array("options") {
            options = []
            for (index, value) in values.enumerated() {
                options?.append(try SelectOption(json: value, path: "\(path).options[\(index)]"))
            }
        }
        self.init(
            name: try reader.string("name") ?? "",
            label: try reader.string("label") ?? "",
            type: type,
            description: try reader.string("description"),
            required: try reader.bool("required") ?? false,
            defaultValue: reader.value("default"),
            placeholder: try reader.string("placeholder"),
            options: options,
            validation: try reader.value("validation").map { value throws(SchemaError) in
                try ValidationRules(json: value, path: reader.field("validation"))
            },
            group: try reader.string("group"),
            showWhen: try reader.value("show_when").map { value throws(SchemaError) in
                try ConditionalVisibility(json: value, path: reader.field("show_when"))
            }
        )
    }

    func validate(index: Int) throws(SchemaError) {
        if label.isEmpty { throw SchemaError("param[\(index)].label is required") }
        if type.requiresOptions && (options ?? []).isEmpty {
            throw SchemaError("param '\(name)' requires options for select|multiselect")
        }
        try validation?.validate(param: name)
    }

    var json: JSONValue {
        var object: JSONObject = ["name": .string(name), "label": .string(label), "type": .string(type.rawValue)]
        object.setIfPresent("description", description.map(JSONValue.string))
        object["required"] = .bool(required)
        object.setIfPresent("default", defaultValue)
        object.setIfPresent("placeholder", placeholder.map(JSONValue.string))
        object.setIfPresent("options", options.map { .array($0.map(\.json)) })
        object.setIfPresent("validation", validation?.json)
        object.setIfPresent("group", group.map(JSONValue.string))
        object.setIfPresent("show_when", showWhen?.json)
        return .object(object)
    }
}

extension SelectOption {
    init(json: JSONValue, path: String) throws(SchemaError) {
        let reader = try ObjectReader(json, path: path)
        self.init(label: try reader.requiredString("label"), value: try reader.string("value") ?? "")
    }

    var json: JSONValue { ["label": .string(label), "value": .string(value)] }
}

extension ValidationRules {
    init(json: JSONValue, path: String) throws(SchemaError) {
        let reader = try ObjectReader(json, path: path)
        self.init(
            min: try reader.double("min"),
            max: try reader.double("max"),
            minLength: try reader.int("min_length"),
            maxLength: try reader.int("max_length"),
            pattern: try reader.string("pattern"),
            patternMessage: try reader.string("pattern_message")
        )
    }

    func validate(param: String) throws(SchemaError) {
        if let min, let max, min > max {
            throw SchemaError("param '\(param)' validation.min \(min) is greater than validation.max \(max)")
        }
        if let minLength, minLength < 0 {
            throw SchemaError("param '\(param)' validation.min_length must not be negative")
        }
        if let minLength, let maxLength, minLength > maxLength {
            throw SchemaError(
                "param '\(param)' validation.min_length \(minLength) is greater than validation.max_length \(maxLength)"
            )
        }
        if let pattern, (try? Regex(pattern)) == nil {
            throw SchemaError("param '\(param)' validation.pattern is not a valid regular expression: \(pattern)")
        }
    }

    var json: JSONValue {
        var object = JSONObject()
        object.setIfPresent("min", min.map(JSONValue.double))
        object.setIfPresent("max", max.map(JSONValue.double))
        object.setIfPresent("min_length", minLength.map(JSONValue.int))
        object.setIfPresent("max_length", maxLength.map(JSONValue.int))
        object.setIfPresent("pattern", pattern.map(JSONValue.string))
        object.setIfPresent("pattern_message", patternMessage.map(JSONValue.string))
        return .object(object)
    }
}

extension ConditionalVisibility {
    init(json: JSONValue, path: String) throws(SchemaError) {
        let reader = try ObjectReader(json, path: path)
        self.init(param: try reader.requiredString("param"), equals: reader.value("equals"), notEquals: reader.value("not_equals"))
    }

    var json: JSONValue {
        var object: JSONObject = ["param": .string(param)]
        object.setIfPresent("equals", equals)
        object.setIfPresent("not_equals", notEquals)
        return .object(object)
    }
}

extension OutputDefinition {
    init(json: JSONValue, path: String) throws(SchemaError) {
        let reader = try ObjectReader(json, path: path)
        self.init(
            name: try reader.string("name") ?? "",
            type: try reader.string("type") ?? "any",
            description: try reader.string("description")
        )
    }

    var json: JSONValue {
        var object: JSONObject = ["name": .string(name), "type": .string(type)]
        object.setIfPresent("description", description.map(JSONValue.string))
        return .object(object)
    }
}

extension RetryPolicy {
    init(json: JSONValue, path: String) throws(SchemaError) {
        let reader = try ObjectReader(json, path: path)
        let defaults = RetryPolicy()
        self.init(
            maxAttempts: try reader.int("max_attempts") ?? defaults.maxAttempts,
            backoffMultiplier: try reader.double("backoff_multiplier") ?? defaults.backoffMultiplier,
            initialIntervalSeconds: try reader.double("initial_interval_seconds") ?? defaults.initialIntervalSeconds,
            maxIntervalSeconds: try reader.double("max_interval_seconds") ?? defaults.maxIntervalSeconds
        )
    }

    func validate() throws(SchemaError) {
        if maxAttempts < 1 || maxAttempts > 1000 {
            throw SchemaError("retry_policy.max_attempts must be between 1 and 1000, got \(maxAttempts)")
        }
        if !(backoffMultiplier >= 1 && backoffMultiplier <= 100) {
            throw SchemaError("retry_policy.backoff_multiplier must be between 1.0 and 100, got \(backoffMultiplier)")
        }
        if !DurationLimits.allows(initialIntervalSeconds, minimum: .leastNonzeroMagnitude)
            || !DurationLimits.allows(maxIntervalSeconds, minimum: .leastNonzeroMagnitude)
        {
            throw SchemaError("retry_policy intervals must be positive and at most \(DurationLimits.maximumSeconds) seconds")
        }
    }

    var json: JSONValue {
        [
            "max_attempts": .int(maxAttempts), "backoff_multiplier": .double(backoffMultiplier),
            "initial_interval_seconds": .double(initialIntervalSeconds),
            "max_interval_seconds": .double(maxIntervalSeconds),
        ]
    }
}

extension ActionExample {
    init(json: JSONValue, path: String) throws(SchemaError) {
        let reader = try ObjectReader(json, path: path)
        self.init(
            title: try reader.string("title") ?? "",
            params: try reader.objectMember("params") ?? [:],
            description: try reader.string("description")
        )
    }

    var json: JSONValue {
        var object: JSONObject = ["title": .string(title), "params": .object(params)]
        object.setIfPresent("description", description.map(JSONValue.string))
        return .object(object)
    }
}
