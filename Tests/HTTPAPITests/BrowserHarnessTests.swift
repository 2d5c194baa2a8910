import BudJSON
import Foundation
import Hummingbird
import Logging
import NIOCore
import Testing
import _BudPipelineTestSupport

/// A few fixed pages on a loopback port, for the browser harness's own tests.
private enum TestPages {
    static let pages: [String: String] = [
        "/clean.html": """
        <!doctype html>
        <html><head><meta charset="utf-8"><title>Clean page</title></head>
        <body>
        <h1 id="heading">Hello</h1>
        <button id="more" onclick="count.textContent = String(Number(count.textContent) + 1)">More</button>
        <span id="count">0</span>
        <input id="name" oninput="echo.textContent = 'Hi ' + this.value"
            onkeydown="if (event.key === 'Enter') echo.textContent = 'Sent ' + this.value">
        <p id="echo"></p>
        <a id="next" href="/second.html">next</a>
        <script>
        setTimeout(() => {
            const late = document.createElement("p");
            late.id = "late";
            late.textContent = "arrived late";
            document.body.append(late);
            window.lateValue = 42;
        }, 2500);
        console.log("ready");
        </script>
        </body></html>
        """,
        "/second.html": """
        <!doctype html><html><head><title>Second page</title></head><body><p id="where">second</p></body></html>
        """,
        "/errors.html": """
        <!doctype html>
        <html><head><title>Errors</title><script src="/missing.js"></script></head>
        <body>
        <script>console.error("boom-error", 42); console.warn("careful-warning");</script>
        <script>throw new Error("uncaught-kaboom");</script>
        <script>fetch("/api/missing").then(() => console.log("ready"));</script>
        </body></html>
        """,
    ]

    /// Serves the pages (anything else is a 404) while `body` runs; `body` gets the base URL.
    static func serve(_ body: (String) async throws -> Void) async throws {
        let router = Router()
        router.get("**") { request, _ -> Response in
            guard let page = pages[request.uri.path] else { return Response(status: .notFound) }
            return Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: page)))
        }
        let (started, ready) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "test-pages")
        logger.logLevel = .critical
        let application = Application(
            router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in ready.yield(channel.localAddress?.port ?? 0) }, logger: logger)
        let server = Task { try await application.run() }
        defer { server.cancel() }
        var iterator = started.makeAsyncIterator()
        guard let port = await iterator.next() else { throw BrowserError("the page server did not start") }
        try await body("http://127.0.0.1:\(port)")
        server.cancel()
        _ = await server.result
    }
}

/// The WebDriver harness the web console's tests drive Chromium with. One browser at a time:
/// Chromium is heavy for the machines the tests run on.
@Suite("Browser harness", .enabled(if: Browser.isAvailable), .serialized)
struct BrowserHarnessTests {
    @Test("open loads a page and follows a link; a page that cannot be loaded throws")
    func navigation() async throws {
        try await TestPages.serve { base in
            try await withBrowser { browser in
                try await browser.open(base + "/clean.html")
                #expect(try await browser.title() == "Clean page")
                #expect(try await browser.currentURL() == base + "/clean.html")
                let link = try #require(try await browser.find("#next"))
                try await browser.click(link)
                let second = try await browser.waitFor("#where")
                #expect(try await browser.text(of: second) == "second")
                #expect(try await browser.title() == "Second page")
                #expect(try await browser.currentURL() == base + "/second.html")
                // Port 1 on loopback: nothing listens there.
                await #expect(throws: BrowserError.self) { try await browser.open("http://127.0.0.1:1/") }
            }
        }
    }

    @Test("waitFor returns an element that a timer adds; find does not wait; waitFor times out with the selector")
    func waitingForElements() async throws {
        try await TestPages.serve { base in
            try await withBrowser { browser in
                try await browser.open(base + "/clean.html")
                #expect(try await browser.find("#late") == nil)
                let late = try await browser.waitFor("#late", timeout: .seconds(30))
                #expect(try await browser.text(of: late) == "arrived late")
                #expect(try await browser.findAll("p").count == 2)
                let error = await #expect(throws: BrowserError.self) { try await browser.waitFor("#never", timeout: .milliseconds(300)) }
                #expect(error?.description.contains("#never") == true)
            }
        }
    }

    @Test("waitUntil polls an expression until it is truthy, counting a throwing one as false, and times out")
    func waitingForScripts() async throws {
        try await TestPages.serve { base in
            try await withBrowser { browser in
                try await browser.open(base + "/clean.html")
                let value = try await browser.waitUntil(timeout: .seconds(30), script: "document.querySelector('#late').textContent.length")
                #expect(value == 12)
                #expect(try await browser.waitUntil(script: "window.lateValue") == 42)
                let error = await #expect(throws: BrowserError.self) {
                    try await browser.waitUntil(timeout: .milliseconds(300), script: "document.querySelector('#nothing').id")
                }
                #expect(error?.description.contains("last error") == true)
            }
        }
    }

    @Test("click and type change the page as a user's would")
    func clickingAndTyping() async throws {
        try await TestPages.serve { base in
            try await withBrowser { browser in
                try await browser.open(base + "/clean.html")
                let button = try await browser.waitFor("#more")
                let count = try await browser.waitFor("#count")
                try await browser.click(button)
                try await browser.click(button)
                #expect(try await browser.text(of: count) == "2")
                let input = try await browser.waitFor("#name")
                try await browser.type("Ada", into: input)
                #expect(try await browser.property("value", of: input) == "Ada")
                #expect(try await browser.text(of: try await browser.waitFor("#echo")) == "Hi Ada")
                try await browser.clear(input)
                try await browser.type("Grace Hopper", into: input)
                #expect(try await browser.property("value", of: input) == "Grace Hopper")
                try await browser.type(Browser.Key.enter, into: input)
                #expect(try await browser.text(of: try await browser.waitFor("#echo")) == "Sent Grace Hopper")
                #expect(try await browser.attribute("id", of: input) == "name")
            }
        }
    }

    @Test("execute returns the script's value as JSON, takes arguments and elements, awaits promises, throws on errors")
    func executingScripts() async throws {
        try await TestPages.serve { base in
            try await withBrowser { browser in
                try await browser.open(base + "/clean.html")
                #expect(try await browser.execute("return 6 * 7") == 42)
                #expect(try await browser.execute("return 1.5") == 1.5)
                #expect(try await browser.execute("return document.title") == "Clean page")
                #expect(try await browser.execute("return null") == .null)
                #expect(try await browser.execute("return [true, 'a', {b: [1]}]") == [true, "a", ["b": [1]]])
                #expect(try await browser.execute("return arguments[0] + arguments[1].n", args: [40, ["n": 2]]) == 42)
                #expect(try await browser.execute("return new Promise(r => setTimeout(() => r('later'), 50))") == "later")
                let heading = try #require(Element(try await browser.execute("return document.getElementById('heading')")))
                #expect(try await browser.text(of: heading) == "Hello")
                #expect(try await browser.execute("return arguments[0].tagName", args: [heading.jsonValue]) == "H1")
                let error = await #expect(throws: WebDriverError.self) { try await browser.execute("throw new Error('in-script')") }
                #expect(error?.error == "javascript error")
                #expect(error?.message.contains("in-script") == true)
            }
        }
    }

    @Test("screenshots are PNG images of the viewport and of an element; the window can be resized")
    func screenshots() async throws {
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        /// Width and height from the PNG's IHDR chunk.
        func size(_ png: Data) -> (Int, Int) {
            let bytes = [UInt8](png)
            guard bytes.count > 24 else { return (0, 0) }
            func number(_ at: Int) -> Int { bytes[at..<at + 4].reduce(0) { $0 << 8 | Int($1) } }
            return (number(16), number(20))
        }
        try await TestPages.serve { base in
            try await withBrowser { browser in
                try await browser.open(base + "/clean.html")
                let page = try await browser.screenshot()
                #expect(Array(page.prefix(8)) == signature)
                #expect(page.count > 2000)
                let viewport = try await browser.execute("return [innerWidth, innerHeight]")
                #expect(size(page).0 == viewport[0]?.intValue)
                #expect(size(page).1 == viewport[1]?.intValue)
                #expect(size(page).0 == 1280)

                let heading = try await browser.waitFor("#heading")
                let part = try await browser.screenshot(of: heading)
                #expect(Array(part.prefix(8)) == signature)
                #expect(size(part).1 < size(page).1)

                try await browser.setWindowSize(width: 800, height: 600)
                #expect(try await browser.execute("return outerWidth") == 800)
                #expect(size(try await browser.screenshot()).0 == 800)
            }
        }
    }

    @Test("console errors and warnings, uncaught exceptions and failed requests are reported; a clean page reports none")
    func consoleMessages() async throws {
        try await TestPages.serve { base in
            try await withBrowser { browser in
                try await browser.open(base + "/clean.html")
                // Messages arrive in order: once "ready" is there, so is anything logged before it.
                try await eventually(within: .seconds(10)) {
                    try await browser.consoleMessages(minimumLevel: .info).contains { $0.text.contains("ready") }
                }
                #expect(try await browser.consoleMessages().isEmpty)
                // Chromium asked for the favicon, and it was a 404; left out at any level.
                #expect(try await !browser.consoleMessages(minimumLevel: .debug).contains { $0.text.contains("favicon") })

                try await browser.open(base + "/errors.html")
                try await eventually(within: .seconds(10)) {
                    try await browser.consoleMessages(minimumLevel: .info).contains { $0.text.contains("ready") }
                }
                let messages = try await browser.consoleMessages()
                func has(_ level: ConsoleMessage.Level, _ source: String, _ text: String) -> Bool {
                    messages.contains { $0.level == level && $0.source == source && $0.text.contains(text) }
                }
                #expect(has(.error, "console-api", "boom-error"), "\(messages)")
                #expect(has(.warning, "console-api", "careful-warning"), "\(messages)")
                #expect(has(.error, "javascript", "Uncaught Error: uncaught-kaboom"), "\(messages)")
                #expect(messages.contains { $0.isUncaughtException })
                #expect(has(.error, "network", "/missing.js"), "\(messages)")
                #expect(has(.error, "network", "/api/missing"), "\(messages)")
                #expect(!messages.contains { $0.level < .warning })
                // They stay until cleared.
                #expect(try await browser.consoleMessages().count == messages.count)
                try await browser.clearConsoleMessages()
                #expect(try await browser.consoleMessages().isEmpty)
            }
        }
    }

    @Test("quit ends chromedriver and every Chromium process, also when the test throws or is cancelled; later commands fail")
    func quitting() async throws {
        struct Deliberate: Error {}
        let browser = try await Browser.launch()
        let processes = [browser.browserProcessID, browser.driverProcessID]
        #expect(processes.allSatisfy(Browser.isAlive))
        let quitting = ContinuousClock.now
        await browser.quit()
        // The watchdog ended the processes: quit did not wait out its 5 s before doing it itself.
        #expect(ContinuousClock.now - quitting < .seconds(4))
        #expect(!processes.contains(where: Browser.isAlive))
        await #expect(throws: BrowserError.self) { try await browser.title() }
        await browser.quit()

        var thrownFrom: [pid_t] = []
        do {
            try await withBrowser { browser in
                thrownFrom = [browser.browserProcessID, browser.driverProcessID]
                throw Deliberate()
            }
            Issue.record("withBrowser did not rethrow")
        } catch is Deliberate {}
        #expect(thrownFrom.count == 2)
        #expect(!thrownFrom.contains(where: Browser.isAlive))

        // A test cancelled while it drives the browser (a time limit) still ends its processes.
        let (running, report) = AsyncStream<[pid_t]>.makeStream()
        let cancelled = Task {
            try await withBrowser { browser in
                report.yield([browser.browserProcessID, browser.driverProcessID])
                try await Task.sleep(for: .seconds(60))
            }
        }
        var iterator = running.makeAsyncIterator()
        let cancelledProcesses = try #require(await iterator.next())
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(!cancelledProcesses.contains(where: Browser.isAlive))
    }

    @Test("a missing Chromium is a BrowserUnavailable error naming it")
    func missingChromium() async throws {
        var configuration = Browser.Configuration()
        configuration.chromium = "/nonexistent/chromium"
        let error = await #expect(throws: BrowserUnavailable.self) { try await withBrowser(configuration) { _ in } }
        #expect(error?.missing == ["/nonexistent/chromium"])
        #expect(error?.description.contains("not installed") == true)
    }
}
