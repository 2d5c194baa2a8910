import PluginTesting
import Testing

/// Loads the built plugin through the BudPipeline host's loader — the same checks the server runs.
@Suite struct MyPluginTests {
    @Test func loadsWithItsMetadata() async throws {
        try await PluginTestHost.withPlugin(product: "MyPlugin") { plugin in
            #expect(plugin.plugin.name == "my_plugin")
            #expect(plugin.plugin.image.actions.map(\.type) == ["my_plugin"])
        }
    }

    @Test func repeatsTheText() async throws {
        try await PluginTestHost.withPlugin(product: "MyPlugin") { plugin in
            let outcome = try await plugin.execute("my_plugin", params: ["text": "ab", "times": 3])
            #expect(outcome == .completed(outputs: ["result": "ababab", "length": 6]))
        }
    }

    @Test func rejectsBadParameters() async throws {
        try await PluginTestHost.withPlugin(product: "MyPlugin") { plugin in
            let errors = try await plugin.validate("my_plugin", params: ["times": 11])
            #expect(errors == ["text is required", "times must be a whole number from 1 to 10"])
            let outcome = try await plugin.execute("my_plugin", params: [:])
            #expect(outcome == .failed(message: "text is required", retryable: false, outputs: [:]))
        }
    }
}
