import PluginKitTesting
import Testing

/// Calls the built plugin through the BudPipeline host (`budpipeline plugins call`): the same
/// loader, checks and call path as the server.
@Suite struct MyPluginTests {
    @Test func loadsWithItsMetadata() async throws {
        try await PluginTestHost.withPlugin(product: "MyPlugin") { plugin in
            #expect(plugin.name == "my_plugin")
            #expect(plugin.actionTypes == ["my_plugin"])
        }
    }

    @Test(arguments: ["in-process", "process"])
    func repeatsTheText(isolation: String) async throws {
        try await PluginTestHost.withPlugin(product: "MyPlugin", isolation: isolation) { plugin in
            let outcome = try plugin.execute("my_plugin", params: ["text": "ab", "times": 3])
            #expect(outcome == .completed(outputs: ["result": "ababab", "length": 6]))
        }
    }

    @Test func rejectsBadParameters() async throws {
        try await PluginTestHost.withPlugin(product: "MyPlugin") { plugin in
            let errors = try plugin.validate("my_plugin", params: ["times": 11])
            #expect(errors == ["text is required", "times must be a whole number from 1 to 10"])
            let outcome = try plugin.execute("my_plugin", params: [:])
            #expect(outcome == .failed(message: "text is required", retryable: false, outputs: [:]))
        }
    }
}
