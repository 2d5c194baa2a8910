import BudJSON
import PluginSchema
import Testing

@Suite struct StepOutcomeTests {
    @Test func completedWithOutputs() throws {
        let outcome = try StepOutcome(status: .ok, output: Array(#"{"outputs":{"a":1}}"#.utf8), errorMessage: "")
        #expect(outcome == .completed(outputs: ["a": 1]))
        #expect(try StepOutcome(status: .ok, output: [], errorMessage: "") == .completed(outputs: [:]))
    }

    @Test func awaitingNeedsAnExternalID() throws {
        let outcome = try StepOutcome(
            status: .awaitEvent,
            output: Array(#"{"outputs":{"s":"x"},"external_workflow_id":"wf-1","timeout_seconds":60}"#.utf8),
            errorMessage: ""
        )
        #expect(outcome == .awaitingEvent(externalWorkflowID: "wf-1", timeoutSeconds: 60, outputs: ["s": "x"]))
        #expect(throws: SchemaError("returned AWAIT_EVENT without result.external_workflow_id")) {
            try StepOutcome(status: .awaitEvent, output: Array(#"{"outputs":{}}"#.utf8), errorMessage: "")
        }
        #expect(throws: SchemaError("returned AWAIT_EVENT with result.timeout_seconds -1; it must be positive and at most 31536000")) {
            try StepOutcome(
                status: .awaitEvent, output: Array(#"{"external_workflow_id":"x","timeout_seconds":-1}"#.utf8), errorMessage: "")
        }
        #expect(
            throws: SchemaError(
                "returned AWAIT_EVENT with result.timeout_seconds 9223372036854775807; it must be positive and at most 31536000")
        ) {
            try StepOutcome(
                status: .awaitEvent, output: Array(#"{"external_workflow_id":"x","timeout_seconds":9223372036854775807}"#.utf8),
                errorMessage: "")
        }
        let longID = String(repeating: "a\u{301}", count: 200)
        #expect(throws: SchemaError("returned AWAIT_EVENT with a result.external_workflow_id longer than 255 characters")) {
            try StepOutcome(status: .awaitEvent, output: Array(#"{"external_workflow_id":"\#(longID)"}"#.utf8), errorMessage: "")
        }
    }

    @Test func failuresKeepMessageOutputsAndRetryability() throws {
        let fatal = try StepOutcome(status: .fatalError, output: Array(#"{"outputs":{"p":1}}"#.utf8), errorMessage: "boom")
        #expect(fatal == .failed(message: "boom", retryable: false, outputs: ["p": 1]))
        let retry = try StepOutcome(status: .retryableError, output: [], errorMessage: "")
        #expect(retry == .failed(message: "step failed with RETRYABLE_ERROR and no message", retryable: true, outputs: [:]))
    }

    @Test func rejectsProtocolViolations() {
        #expect(throws: SchemaError("returned status UNSUPPORTED, which execute may not return")) {
            try StepOutcome(status: .unsupported, output: [], errorMessage: "")
        }
        #expect(throws: SchemaError("returned status STATUS_99, which execute may not return")) {
            try StepOutcome(status: CallStatus(rawValue: 99), output: [], errorMessage: "")
        }
        #expect(throws: SchemaError("wrote a result that is not valid JSON: unexpected character 'n' at byte 0")) {
            try StepOutcome(status: .ok, output: Array("nope".utf8), errorMessage: "")
        }
        #expect(throws: SchemaError("result.outputs must be an object, got array")) {
            try StepOutcome(status: .ok, output: Array(#"{"outputs":[]}"#.utf8), errorMessage: "")
        }
    }

    @Test(arguments: [
        StepOutcome.completed(outputs: ["x": [1, 2]]),
        .awaitingEvent(externalWorkflowID: "e", timeoutSeconds: 5, outputs: ["p": true]),
        .awaitingEvent(externalWorkflowID: "e"),
        .failed(message: "m", retryable: true, outputs: ["o": nil]),
        .failed(message: "m"),
    ])
    func wireFormRoundTrips(outcome: StepOutcome) throws {
        let wire = outcome.wireForm
        #expect(try StepOutcome(status: wire.status, output: wire.document.serialized(), errorMessage: wire.errorMessage ?? "") == outcome)
    }
}

@Suite struct EventOutcomeTests {
    @Test(arguments: [
        EventOutcome.complete(status: .completed, outputs: ["e": 1]),
        .complete(status: .failed, outputs: [:], error: "no"),
        .complete(status: .timeout),
        .updateProgress(percent: 40, etaSeconds: 120, message: "m"),
        .updateProgress(percent: nil, etaSeconds: 0),
        .updateProgress(percent: 100, etaSeconds: nil),
        .ignore,
    ])
    func wireFormRoundTrips(outcome: EventOutcome) throws {
        let wire = outcome.wireForm
        #expect(try EventOutcome(status: wire.status, output: wire.document.serialized(), errorMessage: "") == outcome)
    }

    @Test func lenientDefaults() throws {
        #expect(
            try EventOutcome(status: .ok, output: Array(#"{"action":"complete"}"#.utf8), errorMessage: "") == .complete(status: .completed))
        #expect(
            try EventOutcome(status: .ok, output: Array(#"{"action":"complete","status":"failed"}"#.utf8), errorMessage: "")
                == .complete(status: .failed))
        #expect(try EventOutcome(status: .ok, output: [], errorMessage: "") == .ignore)
        #expect(try EventOutcome(status: .unsupported, output: [], errorMessage: "") == .ignore)
        #expect(
            try EventOutcome(status: .fatalError, output: [], errorMessage: "bad event")
                == .complete(status: .failed, outputs: [:], error: "bad event")
        )
    }

    @Test(arguments: [
        (#"{"action":"update_progress"}"#, "result of update_progress needs progress or eta_seconds"),
        (#"{"action":"update_progress","progress":101}"#, "result.progress 101.0 is outside 0...100"),
        (#"{"action":"update_progress","eta_seconds":-5}"#, "result.eta_seconds -5 is negative"),
        (#"{"action":"complete","status":"DONE"}"#, "result.status 'DONE' must be COMPLETED, FAILED or TIMEOUT"),
        (#"{"action":"retry"}"#, "result.action 'retry' must be complete, update_progress or ignore"),
    ])
    func rejectsMalformedResults(document: String, message: String) {
        #expect(throws: SchemaError(message)) { try EventOutcome(status: .ok, output: Array(document.utf8), errorMessage: "") }
    }

    @Test func retryableIsNotAnOutcome() {
        #expect(throws: SchemaError("returned status RETRYABLE_ERROR, which on_event may not return")) {
            try EventOutcome(status: .retryableError, output: [], errorMessage: "later")
        }
    }
}

@Suite struct RequestDocumentTests {
    @Test func executeRequestRoundTrips() throws {
        let request = ExecuteRequest(
            action: "a", executionID: "e", stepID: "s", stepExecutionID: "se", idempotencyKey: "e/s/1", retryCount: 1,
            params: ["p": 1], workflowParams: ["w": "x"], stepOutputs: ["prev": ["o": true]], timeoutSeconds: 30,
            userID: "11111111-1111-4111-8111-111111111111"
        )
        #expect(try ExecuteRequest(json: request.json) == request)
        #expect(request.json["timeout_seconds"] == 30)
        #expect(request.json["user_id"] == "11111111-1111-4111-8111-111111111111")
        let minimal = ExecuteRequest(action: "a", executionID: "e", stepID: "s", idempotencyKey: "k")
        #expect(minimal.json["timeout_seconds"] == .null)
        #expect(minimal.json["user_id"] == .null)
        #expect(try ExecuteRequest(json: minimal.json) == minimal)
    }

    @Test func eventRequestRoundTrips() throws {
        let request = EventRequest(
            action: "a", executionID: "e", stepID: "s", externalWorkflowID: "wf", eventType: "notification",
            event: ["payload": ["event": "results"]], stepOutputs: ["status": "deploying"]
        )
        #expect(try EventRequest(json: request.json) == request)
        #expect(try EventRequest(json: ["external_workflow_id": "x"]).eventType == "unknown")
    }

    @Test func cleanupRequestRoundTrips() throws {
        let request = CleanupRequest(action: "a", executionID: "e", stepID: "s", externalWorkflowID: "wf", reason: .timedOut)
        #expect(try CleanupRequest(json: request.json) == request)
        #expect(throws: SchemaError("reason 'bored' must be cancelled or timed_out")) {
            try CleanupRequest(json: ["reason": "bored"])
        }
    }

    @Test func paramsValidationDocuments() throws {
        #expect(ParamsValidation.request(params: ["a": 1]) == ["params": ["a": 1]])
        let result = ParamsValidation.result(errors: ["x"]).serialized()
        #expect(try ParamsValidation.errors(status: .ok, output: result, errorMessage: "") == ["x"])
        #expect(try ParamsValidation.errors(status: .unsupported, output: [], errorMessage: "") == [])
        #expect(try ParamsValidation.errors(status: .fatalError, output: [], errorMessage: "crash") == ["Validation error: crash"])
        #expect(throws: SchemaError("result.errors[0] must be a string, got number")) {
            try ParamsValidation.errors(status: .ok, output: Array(#"{"errors":[1]}"#.utf8), errorMessage: "")
        }
    }
}
