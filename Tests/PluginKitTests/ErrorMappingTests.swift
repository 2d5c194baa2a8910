import BudJSON
import PluginSchema
import Testing

@testable import PluginKit

/// How PluginKit turns thrown errors into step outcomes.
@Suite struct ErrorMappingTests {
    struct Timeout: RetryableError, CustomStringConvertible {
        var description: String { "upstream timed out" }
    }

    enum Broken: Error {
        case disk
    }

    @Test func stepFailuresKeepTheirFields() {
        #expect(StepOutcome(error: StepFailure("bad", outputs: ["o": 1])) == .failed(message: "bad", retryable: false, outputs: ["o": 1]))
        #expect(StepOutcome(error: StepFailure.retryable("later")) == .failed(message: "later", retryable: true))
    }

    @Test func retryableErrorsBecomeRetryable() {
        #expect(StepOutcome(error: Timeout()) == .failed(message: "upstream timed out", retryable: true))
        #expect(StepOutcome(error: ServiceCallError(message: "refused")) == .failed(message: "refused", retryable: true))
    }

    @Test func otherErrorsAreFatalWithTheirDescription() {
        #expect(StepOutcome(error: Broken.disk) == .failed(message: "disk", retryable: false))
    }

    @Test func serviceResponses() {
        let response = ServiceResponse(statusCode: 204, body: Array(#"{"a":1}"#.utf8))
        #expect(response.isSuccess)
        #expect(response.json == ["a": 1])
        #expect(ServiceResponse(statusCode: 500, body: []).json == nil)
        #expect(!ServiceResponse(statusCode: 500, body: []).isSuccess)
    }
}
