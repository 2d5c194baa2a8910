import BudJSON
import PluginSchema
import Testing

@Suite struct ActionMetadataTests {
    static let complete: JSONValue = [
        "type": "deploy_model", "name": "Deploy Model", "category": "Deployment", "description": "Deploys a model.",
        "version": "1.6.0", "icon": "rocket", "color": "#10B981",
        "params": [
            ["name": "model_id", "label": "Model", "type": "model_ref", "required": true],
            [
                "name": "hardware_mode", "label": "Hardware", "type": "select", "default": "dedicated", "group": "Advanced",
                "description": "Where to run", "placeholder": "pick one",
                "options": [["label": "Dedicated", "value": "dedicated"], ["label": "Shared", "value": "shared"]],
            ],
            [
                "name": "replicas", "label": "Replicas", "type": "number", "default": 1,
                "validation": ["min": 1, "max": 10], "show_when": ["param": "hardware_mode", "equals": "dedicated"],
            ],
            [
                "name": "endpoint_name", "label": "Endpoint", "type": "string",
                "validation": ["min_length": 3, "max_length": 63, "pattern": "^[a-z0-9-]+$", "pattern_message": "lowercase"],
                "show_when": ["param": "hardware_mode", "not_equals": "shared"],
            ],
        ],
        "outputs": [["name": "endpoint_id", "type": "string", "description": "The endpoint"], ["name": "*"]],
        "execution_mode": "event_driven", "timeout_seconds": 600,
        "retry_policy": ["max_attempts": 5, "backoff_multiplier": 1.5, "initial_interval_seconds": 2, "max_interval_seconds": 30],
        "idempotent": false, "required_services": ["budapp"], "required_permissions": ["deploy"],
        "examples": [["title": "Small", "params": ["model_id": "m1"], "description": "One replica"]],
        "docs_url": "https://example.com/deploy", "unknown_future_key": ["ignored": true],
    ]

    @Test func readsEveryField() throws {
        let metadata = try ActionMetadata(json: Self.complete)
        #expect(metadata.type == "deploy_model")
        #expect(metadata.version == "1.6.0")
        #expect(metadata.executionMode == .eventDriven)
        #expect(metadata.timeoutSeconds == 600)
        #expect(
            metadata.retryPolicy == RetryPolicy(maxAttempts: 5, backoffMultiplier: 1.5, initialIntervalSeconds: 2, maxIntervalSeconds: 30))
        #expect(metadata.idempotent == false)
        #expect(metadata.requiredServices == ["budapp"])
        #expect(metadata.requiredPermissions == ["deploy"])
        #expect(metadata.examples == [ActionExample(title: "Small", params: ["model_id": "m1"], description: "One replica")])
        #expect(metadata.docsURL == "https://example.com/deploy")
        #expect(metadata.params.map(\.type) == [.modelRef, .select, .number, .string])
        #expect(metadata.params[0].required)
        #expect(metadata.params[1].options?.map(\.value) == ["dedicated", "shared"])
        #expect(metadata.params[1].group == "Advanced")
        #expect(metadata.params[1].defaultValue == "dedicated")
        #expect(metadata.params[2].validation == ValidationRules(min: 1, max: 10))
        #expect(metadata.params[2].showWhen == ConditionalVisibility(param: "hardware_mode", equals: "dedicated"))
        #expect(metadata.params[3].validation?.pattern == "^[a-z0-9-]+$")
        #expect(metadata.params[3].showWhen?.notEquals == "shared")
        #expect(metadata.outputs.map(\.name) == ["endpoint_id", "*"])
        #expect(metadata.outputs[1].type == "any")
    }

    @Test func appliesTheReferenceDefaults() throws {
        let metadata = try ActionMetadata(json: ["type": "t", "name": "T", "category": "C", "description": "D"])
        #expect(metadata == ActionMetadata(type: "t", name: "T", category: "C", description: "D"))
        #expect(metadata.version == "1.0.0")
        #expect(metadata.color == "#8c8c8c")
        #expect(metadata.icon == "")
        #expect(metadata.executionMode == .sync)
        #expect(metadata.idempotent)
        #expect(metadata.retryPolicy == nil)
        #expect(RetryPolicy() == RetryPolicy(maxAttempts: 3, backoffMultiplier: 2, initialIntervalSeconds: 1, maxIntervalSeconds: 60))
    }

    @Test func roundTripsThroughJSON() throws {
        let metadata = try ActionMetadata(json: Self.complete)
        #expect(try ActionMetadata(json: metadata.json) == metadata)
        let reparsed = try JSONValue(parsing: metadata.json.serialized())
        #expect(try ActionMetadata(json: reparsed) == metadata)
    }

    @Test(
        arguments: [
            (["name": "N", "category": "C", "description": "D"], "type is required"),
            (["type": "t", "category": "C", "description": "D"], "name is required"),
            (["type": "t", "name": "N", "description": "D"], "category is required"),
            (["type": "t", "name": "N", "category": "C"], "description is required"),
            (["type": "t-1", "name": "N", "category": "C", "description": "D"], "type must be alphanumeric with underscores only"),
            (["type": "t", "name": "N", "category": "C", "description": "D", "params": [["label": "L"]]], "param[0].name is required"),
            (
                [
                    "type": "t", "name": "N", "category": "C", "description": "D",
                    "params": [["name": "a", "label": "A"], ["name": "a", "label": "B"]],
                ],
                "duplicate param name: a"
            ),
            (["type": "t", "name": "N", "category": "C", "description": "D", "params": [["name": "a"]]], "param[0].label is required"),
            (
                [
                    "type": "t", "name": "N", "category": "C", "description": "D",
                    "params": [["name": "a", "label": "A", "type": "select"]],
                ],
                "param 'a' requires options for select|multiselect"
            ),
            (
                [
                    "type": "t", "name": "N", "category": "C", "description": "D",
                    "params": [["name": "a", "label": "A", "type": "multiselect", "options": []]],
                ],
                "param 'a' requires options for select|multiselect"
            ),
            (
                ["type": "t", "name": "N", "category": "C", "description": "D", "outputs": [["type": "string"]]],
                "output[0].name is required"
            ),
            (
                ["type": "t", "name": "N", "category": "C", "description": "D", "outputs": [["name": "x"], ["name": "x"]]],
                "duplicate output name: x"
            ),
        ] as [(JSONValue, String)])
    func rejectsWithTheReferenceMessages(document: JSONValue, message: String) {
        #expect(throws: SchemaError(message)) { try ActionMetadata(json: document) }
    }

    @Test(
        arguments: [
            (["params": "x"], "params must be an array, got string"),
            (
                ["params": [["name": "a", "label": "A", "type": "color"]]],
                "param[0].type 'color' is not one of: string, number, boolean, select, multiselect, json, template, branches, range, model_ref, cluster_ref, project_ref, endpoint_ref, provider_ref, credential_ref, cloud_model_ref"
            ),
            (["params": [["name": "a", "label": "A", "required": "yes"]]], "param[0].required must be a boolean, got string"),
            (
                ["params": [["name": "a", "label": "A", "validation": ["min": 5, "max": 1]]]],
                "param 'a' validation.min 5.0 is greater than validation.max 1.0"
            ),
            (
                ["params": [["name": "a", "label": "A", "validation": ["min_length": 5, "max_length": 1]]]],
                "param 'a' validation.min_length 5 is greater than validation.max_length 1"
            ),
            (
                ["params": [["name": "a", "label": "A", "validation": ["pattern": "(["]]]],
                "param 'a' validation.pattern is not a valid regular expression: (["
            ),
            (
                ["params": [["name": "a", "label": "A", "show_when": ["param": "b", "equals": 1]]]],
                "param 'a' show_when refers to unknown param 'b'"
            ),
            (["params": [["name": "a", "label": "A", "options": [["value": "x"]]]]], "param[0].options[0].label is required"),
            (["execution_mode": "async"], "execution_mode must be 'sync' or 'event_driven', got 'async'"),
            (["timeout_seconds": 0], "timeout_seconds must be a positive integer of at most 31536000, got 0"),
            (["timeout_seconds": 31_536_001], "timeout_seconds must be a positive integer of at most 31536000, got 31536001"),
            (["timeout_seconds": 1.5], "timeout_seconds must be an integer, got number"),
            (["retry_policy": ["max_attempts": 0]], "retry_policy.max_attempts must be between 1 and 1000, got 0"),
            (["retry_policy": ["backoff_multiplier": 0.5]], "retry_policy.backoff_multiplier must be between 1.0 and 100, got 0.5"),
            (
                ["retry_policy": ["max_interval_seconds": 1e300]],
                "retry_policy intervals must be positive and at most 31536000 seconds"
            ),
            (["required_services": ["budapp", 3]], "required_services[1] must be a string, got number"),
            (["examples": [["params": [:]]]], "example[0].title is required"),
            (["idempotent": "no"], "idempotent must be a boolean, got string"),
        ] as [(JSONObject, String)])
    func rejectsMalformedFields(fields: JSONObject, message: String) {
        let base: JSONObject = ["type": "t", "name": "N", "category": "C", "description": "D"]
        let document = base.merging(fields)
        #expect(throws: SchemaError(message)) { try ActionMetadata(json: .object(document)) }
    }

    @Test func rejectsANonObject() {
        #expect(throws: SchemaError("document must be an object, got array")) { try ActionMetadata(json: []) }
    }

    @Test func actionTypeAlphabet() {
        #expect(ActionMetadata.isValidActionType("deploy_model_2"))
        #expect(ActionMetadata.isValidActionType("A_b"))
        #expect(!ActionMetadata.isValidActionType(""))
        #expect(!ActionMetadata.isValidActionType("a.b"))
        #expect(!ActionMetadata.isValidActionType("é"))
    }
}

@Suite struct PluginManifestTests {
    @Test func readsAndValidates() throws {
        let manifest = try PluginManifest(json: ["name": "cluster-deploy_2.x", "version": "1.2.0", "description": "d"])
        #expect(manifest == PluginManifest(name: "cluster-deploy_2.x", version: "1.2.0", description: "d"))
        #expect(try PluginManifest(json: manifest.json) == manifest)
    }

    @Test(
        arguments: [
            (["version": "1"], "manifest.name is required"),
            (["name": "a"], "manifest.version is required"),
            (["name": "a b", "version": "1"], "manifest.name 'a b' must be 1 to 100 letters, digits, '_', '-' or '.'"),
            (["name": 3, "version": "1"], "manifest.name must be a string, got number"),
        ] as [(JSONValue, String)])
    func rejects(document: JSONValue, message: String) {
        #expect(throws: SchemaError(message)) { try PluginManifest(json: document) }
    }
}
