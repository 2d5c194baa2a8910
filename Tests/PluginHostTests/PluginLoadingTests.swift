import BudJSON
import BudPipelineHost
import Foundation
import InMemoryLogging
import Logging
import PluginSchema
import Testing
import _BudPipelineTestSupport

@Suite struct PluginLoadingTests {
    @Test func loadsTheBundledPlugins() async throws {
        try await TestHost.with(.init(files: [try Libraries.product("TextStats"), try Libraries.product("Greeter")])) { loaded in
            #expect(loaded.host.refusals.isEmpty)
            #expect(loaded.host.plugins.map(\.name) == ["text_stats", "greeter"])
            #expect(loaded.host.actions.map(\.metadata.type) == ["await_approval", "greet", "text_stats"])
            let textStats = try #require(loaded.host.plugins.first)
            #expect(textStats.image.abiVersion == "1.0")
            #expect(textStats.image.isThreadSafe)
            #expect(textStats.healthStatus == .healthy)
            #expect(loaded.host.action("text_stats")?.metadata.params.first?.name == "text")
        }
    }

    /// Each broken fixture is refused with exactly this reason; the host goes on loading the others.
    @Test(arguments: [
        ("no_entry", "no entry symbol bp_plugin_entry_v1: not a BudPipeline plugin"),
        (
            "entry_v2_only",
            "no entry symbol bp_plugin_entry_v1: not a BudPipeline plugin for ABI major 1; it exports bp_plugin_entry_v2 (ABI major 2), which needs a newer host"
        ),
        ("wrong_major", "built for ABI major 2; this host supports ABI major 1"),
        ("wrong_signature", "build signature mismatch: pointer_size is 4, the host's is 8"),
        ("small_struct", "descriptor struct_size 56 is smaller than the ABI 1.0 minimum of 72 bytes"),
        ("bad_metadata_json", "action[0] metadata is not valid JSON: unexpected end of input, expected an object key at byte 33"),
        ("invalid_metadata", "action[1] ('invalid_metadata_unlabelled') metadata: param[0].label is required"),
        ("init_failure", "init failed (FATAL_ERROR): database unreachable at db:5432"),
    ])
    func refusesBrokenFixtures(fixture: String, reason: String) async throws {
        let file = try await Libraries.fixture(fixture)
        try await TestHost.with(.init(files: [file, try Libraries.product("TextStats")])) { loaded in
            #expect(loaded.host.refusals == [PluginRefusal(file: file, reason: reason)])
            #expect(loaded.host.refusals.first?.description == "\(file): \(reason)")
            #expect(loaded.host.plugins.map(\.name) == ["text_stats"])
            #expect(loaded.logs.entries.contains { $0.level == .warning && $0.message.description == "plugin refused" })
        }
    }

    @Test func refusesADuplicateActionType() async throws {
        let greeter = try Libraries.product("Greeter")
        let duplicate = try await Libraries.fixture("duplicate_action")
        try await TestHost.with(.init(files: [greeter, duplicate])) { loaded in
            #expect(
                loaded.host.refusals == [PluginRefusal(file: duplicate, reason: "action type 'greet' is already provided by \(greeter)")])
            #expect(loaded.host.action("greet")?.plugin.name == "greeter")
        }
    }

    @Test(arguments: PluginIsolation.allCases)
    func initialisesPluginsAtOnce(isolation: PluginIsolation) async throws {
        let first = try await Libraries.fixture("slow_init_a")
        let second = try await Libraries.fixture("slow_init_b")
        // Each init waits for the other's to begin (see slow_init.h): the order of the lines
        // shows whether they ran at once, however slow the machine. The file is writable by the
        // plugin processes' own users.
        let log = NSTemporaryDirectory() + "bp-slow-init-\(UUID().uuidString).log"
        #expect(FileManager.default.createFile(atPath: log, contents: nil, attributes: [.posixPermissions: 0o666]))
        defer { try? FileManager.default.removeItem(atPath: log) }
        let settings: JSONObject = ["log": .string(log)]
        try await TestHost.with(
            .init(files: [first, second], settings: ["slow_init_a": settings, "slow_init_b": settings], isolation: isolation)
        ) { loaded in
            #expect(loaded.host.refusals.isEmpty, "\(loaded.host.refusals)")
            #expect(loaded.host.plugins.map(\.name) == ["slow_init_a", "slow_init_b"])
        }
        let lines = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        #expect(lines.count == 4, "\(lines)")
        #expect(Set(lines.prefix(2)) == ["begin slow_init_a", "begin slow_init_b"], "both inits began before either ended: \(lines)")
    }

    @Test func refusesADuplicatePluginName() async throws {
        let first = try Libraries.product("TextStats")
        let second = try Libraries.product("TextStats")
        try await TestHost.with(.init(files: [first, second])) { loaded in
            #expect(loaded.host.refusals == [PluginRefusal(file: second, reason: "plugin name 'text_stats' is already used by \(first)")])
        }
    }

    @Test func refusesReservedActionTypes() async throws {
        let file = try Libraries.product("TextStats")
        try await TestHost.with(.init(files: [file], reserved: ["text_stats", "log"])) { loaded in
            #expect(
                loaded.host.refusals == [PluginRefusal(file: file, reason: "action type 'text_stats' is reserved for a built-in action")])
        }
    }

    @Test func appliesTheAllowListBeforeOpening() async throws {
        let directory = try await FixturePlugins.shared.directory(with: ["no_entry", "frozen_v1", "slow"])
        try await TestHost.with(.init(directories: [directory], allowList: ["libslow.so", "frozen_v1"])) { loaded in
            #expect(loaded.host.plugins.map(\.name).sorted() == ["frozen_v1", "slow"])
            #expect(
                loaded.host.refusals == [PluginRefusal(file: "\(directory)/libno_entry.so", reason: "not in BUDPIPELINE_PLUGIN_ALLOWLIST")])
        }
    }

    @Test func searchesDirectoriesInOrderAndNotesMissingOnes() async throws {
        let directory = try await FixturePlugins.shared.directory(with: ["slow", "not_thread_safe"])
        try await TestHost.with(.init(directories: ["/nonexistent/plugins", directory, directory])) { loaded in
            #expect(loaded.host.plugins.map(\.name) == ["not_thread_safe", "slow"])
            #expect(loaded.host.notes.first == "plugin directory /nonexistent/plugins does not exist or cannot be read")
            #expect(loaded.host.notes.count == 3)
        }
    }

    @Test func inspectsWithoutInitialising() async throws {
        let image = try PluginLoader.open(try await Libraries.fixture("init_failure"))
        #expect(image.manifest.name == "init_failure")
        #expect(image.actions.map(\.type) == ["init_failure_action"])
        #expect(throws: PluginRefusal.self) { try PluginLoader.open("/nonexistent/libnothing.so") }
    }

    @Test func refusalsAreOneLine() {
        let refusal = PluginRefusal(file: "/p/libx.so", reason: "init failed:\n  line one\n  line two")
        #expect(refusal.description == "/p/libx.so: init failed: line one line two")
    }
}

@Suite struct PluginHostConfigurationTests {
    @Test func readsTheEnvironment() throws {
        let settings = FileManager.default.temporaryDirectory.appendingPathComponent("plugin-config-\(UUID().uuidString).json")
        try #"{"greeter": {"default_language": "fr"}}"#.write(to: settings, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: settings) }
        let configuration = try PluginHostConfiguration.fromEnvironment(
            [
                "BUDPIPELINE_PLUGIN_DIRS": "/a:/b", "BUDPIPELINE_PLUGIN_ALLOWLIST": "libA.so, B ,",
                "BUDPIPELINE_PLUGIN_CONFIG": settings.path, "BUDPIPELINE_PLUGIN_CALL_TIMEOUT_SECONDS": "2.5",
                "BUDPIPELINE_PLUGIN_THREADS": "3",
            ],
            executableDirectory: nil
        )
        #expect(configuration.pluginDirectories == ["/a", "/b"])
        #expect(configuration.allowList == ["libA.so", "B"])
        #expect(configuration.pluginSettings == ["greeter": ["default_language": "fr"]])
        #expect(configuration.callTimeout == .milliseconds(2500))
        #expect(configuration.threadCount == 3)
        #expect(configuration.maximumThreadCount == 12)
    }

    @Test func defaultsToTheExecutableDirectory() throws {
        let configuration = try PluginHostConfiguration.fromEnvironment([:], executableDirectory: Repository.productsDirectory)
        #expect(configuration.pluginDirectories.last == Repository.productsDirectory)
        #expect(configuration.allowList == nil)
    }

    @Test(arguments: [
        (
            ["BUDPIPELINE_PLUGIN_CALL_TIMEOUT_SECONDS": "soon"],
            "BUDPIPELINE_PLUGIN_CALL_TIMEOUT_SECONDS must be a positive number, got 'soon'"
        ),
        (["BUDPIPELINE_PLUGIN_CALL_TIMEOUT_SECONDS": "-1"], "BUDPIPELINE_PLUGIN_CALL_TIMEOUT_SECONDS must be a positive number, got '-1'"),
        (["BUDPIPELINE_PLUGIN_THREADS": "2.5"], "BUDPIPELINE_PLUGIN_THREADS must be a whole number from 1 to 1024, got 2.5"),
        (["BUDPIPELINE_PLUGIN_CONFIG": "/nonexistent.json"], "BUDPIPELINE_PLUGIN_CONFIG: cannot read /nonexistent.json"),
    ])
    func rejectsBadValues(environment: [String: String], message: String) {
        #expect(throws: ConfigurationError(message)) { try PluginHostConfiguration.fromEnvironment(environment, executableDirectory: nil) }
    }

    @Test func rejectsMalformedPluginSettings() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("bad-config-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: file) }
        try #"{"greeter": 3}"#.write(to: file, atomically: true, encoding: .utf8)
        #expect(
            throws: ConfigurationError("BUDPIPELINE_PLUGIN_CONFIG: the configuration of plugin 'greeter' in \(file.path) must be an object")
        ) {
            try PluginHostConfiguration.fromEnvironment(["BUDPIPELINE_PLUGIN_CONFIG": file.path], executableDirectory: nil)
        }
        try "{nope".write(to: file, atomically: true, encoding: .utf8)
        #expect(
            throws: ConfigurationError(
                "BUDPIPELINE_PLUGIN_CONFIG: \(file.path) is not valid JSON: unexpected character 'n', expected an object key at byte 1")
        ) {
            try PluginHostConfiguration.fromEnvironment(["BUDPIPELINE_PLUGIN_CONFIG": file.path], executableDirectory: nil)
        }
    }
}
