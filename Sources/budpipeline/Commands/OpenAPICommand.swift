import ArgumentParser
import BudJSON
import HTTPAPI

/// `budpipeline openapi`: prints the HTTP API's OpenAPI 3.1 document (the one `/openapi.json` serves).
struct OpenAPICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openapi", abstract: "Print the HTTP API's OpenAPI 3.1 document as JSON.")

    func run() throws {
        print(OpenAPIDocument.document(version: BudPipelineCommand.configuration.version).serializedString(options: .prettyPrinted))
    }
}
