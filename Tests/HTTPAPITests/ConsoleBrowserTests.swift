import BudJSON
import Foundation
import Testing
import _BudPipelineTestSupport

/// The web console in a real headless Chromium (over WebDriver) against a running `serve`
/// process with a token: the token dialog, a running execution whose steps change state on the
/// page without a reload, cancelling one, every other view, and no errors in the page's console.
///
/// With `BUDPIPELINE_CONSOLE_SCREENSHOTS=<folder>` (relative to the repository) it also saves the
/// screenshots docs/console.md shows.
@Suite("Web console in a browser", .enabled(if: Browser.isAvailable), .serialized)
struct ConsoleBrowserTests {
    static let token = "console-browser-token"

    /// Steps that take their time (the `slow` fixture plugin's `sleep_ms`), in two branches.
    static let releaseDAG: JSONValue = [
        "name": "model-release",
        "description": "Fetch a dataset, train and evaluate a model, then announce it.",
        "parameters": [["name": "model", "type": "string", "default": "llama-3-8b"]],
        "steps": [
            ["id": "prepare", "name": "Prepare workspace", "action": "log", "params": ["message": "preparing {{ params.model }}"]],
            ["id": "fetch", "name": "Fetch dataset", "action": "sleep_ms", "depends_on": ["prepare"], "params": ["ms": 1500]],
            ["id": "tokenize", "name": "Tokenize", "action": "sleep_ms", "depends_on": ["fetch"], "params": ["ms": 1500]],
            ["id": "train", "name": "Train model", "action": "sleep_ms", "depends_on": ["prepare"], "params": ["ms": 4500]],
            [
                "id": "evaluate", "name": "Evaluate", "action": "sleep_ms", "depends_on": ["tokenize", "train"],
                "params": ["ms": 1500],
            ],
            [
                "id": "gate", "name": "Quality gate", "action": "log", "depends_on": ["evaluate"],
                "condition": "{{ params.model != '' }}", "params": ["message": "gate passed"],
            ],
            [
                "id": "announce", "name": "Announce release", "action": "set_output", "depends_on": ["gate"],
                "params": ["key": "released", "value": "{{ params.model }}"],
            ],
        ],
    ]

    /// A step that runs until it is cancelled (up to about 10 s).
    static let holdDAG: JSONValue = [
        "name": "hold-the-line",
        "steps": [
            ["id": "start", "name": "Start", "action": "log", "params": ["message": "holding"]],
            ["id": "hold", "name": "Hold until cancelled", "action": "wait_for_cancel", "depends_on": ["start"], "params": [:]],
        ],
    ]

    static let failingDAG: JSONValue = [
        "name": "nightly-report",
        "steps": [
            ["id": "collect", "name": "Collect numbers", "action": "log", "params": ["message": "collecting"]],
            [
                "id": "render", "name": "Render report", "action": "fail", "depends_on": ["collect"],
                "params": ["message": "the template named a missing column"],
            ],
        ],
    ]

    @Test("opens a running execution, sees its steps change live, cancels one, and the page logs no errors")
    func console() async throws {
        let plugins = try await FixturePlugins.shared.directory(with: ["slow"])
        let database = try await TestDatabase.make(.sqlite, migrated: false)
        let server = try await APIServerProcess.launch(
            database,
            environment: ["APP_API_TOKEN": Self.token, "BUDPIPELINE_PLUGIN_DIRS": "\(Repository.productsDirectory):\(plugins)"])
        do {
            try await exercise(server)
        } catch {
            await server.process.stop()
            await database.close()
            throw error
        }
        let status = await server.process.stop()
        await database.close()
        #expect(status == 0, "the server exited with \(status.map(String.init) ?? "no status")")
    }

    func exercise(_ server: APIServerProcess) async throws {
        let release = try await create(Self.releaseDAG, on: server)
        let hold = try await create(Self.holdDAG, on: server)
        let failing = try await create(Self.failingDAG, on: server)
        // Some history, and one of each trigger, for the lists.
        let first = try await start(release, on: server)
        let failed = try await start(failing, on: server)
        _ = try await server.finished(first)
        _ = try await server.finished(failed)
        _ = try await server.send(
            "POST", "/schedules",
            json: [
                "workflow_id": .string(release), "name": "nightly-release",
                "schedule": ["type": "cron", "expression": "0 3 * * *", "timezone": "Europe/Berlin"],
            ])
        _ = try await server.send("POST", "/webhooks", json: ["workflow_id": .string(release), "name": "release-hook"])
        _ = try await server.send(
            "POST", "/event-triggers",
            json: ["workflow_id": .string(failing), "name": "on-onboarding", "config": ["event_type": "model.onboarded"]])

        let pictures = ProcessInfo.processInfo.environment["BUDPIPELINE_CONSOLE_SCREENSHOTS"].map { Repository.path($0) }
        try await withBrowser { browser in
            func picture(_ name: String) async throws {
                guard let pictures else { return }
                try await browser.screenshot().write(to: URL(fileURLWithPath: "\(pictures)/\(name).png"))
            }

            // The page loads without the token; the first API call answers 401 and asks for it.
            try await browser.open("\(server.baseURL)/ui#/executions")
            let input = try await browser.waitFor("#token-dialog[open] #token-input", timeout: .seconds(30))
            try await browser.type(Self.token, into: input)
            try await browser.click(try await browser.waitFor("#token-save"))
            _ = try await browser.waitFor(".execution-row", timeout: .seconds(30))
            let refused = try await browser.consoleMessages()
            #expect(refused.allSatisfy { $0.isNetworkFailure && $0.text.contains("401") }, "\(refused)")
            try await browser.clearConsoleMessages()
            _ = try await browser.execute("window.budpipelineTestMarker = 'same page';")

            // A running execution: its steps change state on the page, without a reload.
            let running = try await start(release, on: server)
            try await browser.open("\(server.baseURL)/ui#/executions/\(running)")
            _ = try await browser.execute("window.budpipelineTestMarker = 'same page';")
            _ = try await browser.waitFor("#graph svg g#step-4.step", timeout: .seconds(30))
            _ = try await browser.waitFor(".step-row[data-step-id='train'][data-status='running']", timeout: .seconds(30))
            try await browser.waitUntil(script: "document.querySelector('#graph svg g#step-4')?.classList.contains('status-running')")
            _ = try await browser.waitFor(".step-row[data-step-id='tokenize'][data-status='running']", timeout: .seconds(30))
            // The picture's text follows too (redrawn from the server within seconds).
            try await browser.waitUntil(
                timeout: .seconds(10),
                script: "[...document.querySelectorAll('#graph svg g#step-2 text')].some(t => t.textContent.startsWith('COMPLETED'))")
            try await picture("console-execution")
            _ = try await browser.waitFor(".step-row[data-step-id='train'][data-status='completed']", timeout: .seconds(30))
            _ = try await browser.waitUntil(
                timeout: .seconds(30), script: "document.querySelector('#graph svg g#step-4')?.classList.contains('status-completed')")
            _ = try await browser.waitFor(".title-row[data-status='completed']", timeout: .seconds(30))
            _ = try await browser.waitFor(".step-row[data-step-id='announce'][data-status='completed']", timeout: .seconds(30))
            #expect(try await browser.execute("return window.budpipelineTestMarker") == "same page", "the page was not reloaded")
            let outputs = try await browser.text(of: try await browser.waitFor("#execution-outcome pre"))
            #expect(outputs.contains("llama-3-8b"))

            // Cancelling: the button asks for a second click, then the execution ends CANCELLED.
            let held = try await start(hold, on: server)
            try await browser.open("\(server.baseURL)/ui#/executions/\(held)")
            _ = try await browser.waitFor(".step-row[data-step-id='hold'][data-status='running']", timeout: .seconds(30))
            let cancel = try await browser.waitFor("#cancel-execution")
            try await browser.click(cancel)
            #expect(try await browser.text(of: cancel) == "Click again to cancel")
            try await browser.click(cancel)
            _ = try await browser.waitFor("#execution-status [data-status='cancelled']", timeout: .seconds(30))
            _ = try await browser.waitFor(".step-row[data-step-id='hold'][data-status='cancelled']", timeout: .seconds(30))
            #expect(try await server.finished(held)["status"] == "CANCELLED")
            _ = try await browser.waitFor("#retry-execution:not([hidden])")

            // The other views.
            try await browser.open("\(server.baseURL)/ui#/pipelines")
            _ = try await browser.waitFor(".pipeline-row[data-id='\(release)']")
            try await picture("console-pipelines")
            try await browser.open("\(server.baseURL)/ui#/pipelines/\(release)")
            _ = try await browser.waitFor("#graph svg g#step-7")
            _ = try await browser.waitFor(".execution-row")
            try await picture("console-pipeline")
            try await browser.open("\(server.baseURL)/ui#/executions?status=FAILED")
            _ = try await browser.waitFor(".execution-row[data-id='\(failed)']")
            #expect(try await browser.findAll(".execution-row").count == 1, "the status filter applies")
            try await browser.open("\(server.baseURL)/ui#/executions?start_date=2000-01-01&end_date=2000-01-02")
            _ = try await browser.waitUntil(
                script: "document.querySelector('#execution-list')?.textContent.includes('No executions match')")
            try await browser.open("\(server.baseURL)/ui#/executions?start_date=2000-01-01")
            _ = try await browser.waitFor(".execution-row[data-id='\(failed)']")
            try await browser.open("\(server.baseURL)/ui#/executions")
            _ = try await browser.waitFor(".execution-row[data-id='\(held)']")
            try await picture("console-executions")
            try await browser.open("\(server.baseURL)/ui#/executions/\(failed)")
            let error = try await browser.waitFor(".step-row[data-step-id='render'] .error-text")
            #expect(try await browser.property("textContent", of: error).stringValue?.contains("missing column") == true)
            for (route, content) in [
                ("schedules", "nightly-release"), ("webhooks", "release-hook"), ("triggers", "model.onboarded"), ("plugins", "sleep_ms"),
            ] {
                try await browser.open("\(server.baseURL)/ui#/\(route)")
                _ = try await browser.waitUntil(script: "document.querySelector('#view')?.textContent.includes('\(content)')")
                #expect(try await browser.find("#view-error") == nil, "\(route)")
            }
            try await picture("console-plugins")

            let problems = try await browser.consoleMessages()
            #expect(problems.isEmpty, "the page logged: \(problems)")
        }
    }

    func create(_ dag: JSONValue, on server: APIServerProcess) async throws -> String {
        let reply = try await server.send("POST", "/pipelines", json: ["dag": dag])
        guard reply.status == 201, let id = reply.json["id"]?.stringValue else {
            throw ServerError("create: \(reply.status) \(reply.text)")
        }
        return id
    }

    func start(_ pipeline: String, on server: APIServerProcess) async throws -> String {
        let reply = try await server.send("POST", "/executions", json: ["workflow_id": .string(pipeline), "initiator": "console-test"])
        guard reply.status == 201, let id = reply.json["execution_id"]?.stringValue else {
            throw ServerError("start: \(reply.status) \(reply.text)")
        }
        return id
    }
}
