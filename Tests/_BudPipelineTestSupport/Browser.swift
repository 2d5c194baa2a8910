public import BudJSON
public import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Chromium or chromedriver is not installed (Debian: `apt-get install chromium chromium-driver`).
///
/// Suites that drive a browser are enabled with `.enabled(if: Browser.isAvailable)`: without the
/// programs they are skipped, unless the test command asks for them
/// (`BUDPIPELINE_REQUIRE_BROWSER=1`), in which case ``Browser/launch(_:)`` throws this and the test fails.
public struct BrowserUnavailable: Error, CustomStringConvertible {
    public let missing: [String]
    public var description: String {
        "Chromium/chromedriver not installed: no \(missing.joined(separator: ", ")) (Debian: apt-get install chromium chromium-driver)"
    }
}

/// A WebDriver command the driver refused: `error` is the WebDriver error code (`no such element`,
/// `javascript error`, ...), `message` the driver's explanation.
public struct WebDriverError: Error, CustomStringConvertible {
    public let command: String
    public let error: String
    public let message: String
    public var description: String { "WebDriver \(command): \(error): \(message)" }
}

/// Anything else that went wrong driving the browser: a launch that failed, a wait that timed
/// out, a page that did not load.
public struct BrowserError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// An element of the current page, as WebDriver refers to it. It goes stale when the page
/// changes it away (`WebDriverError` "stale element reference").
public struct Element: Sendable, Hashable, CustomStringConvertible {
    /// The key of a web element reference in WebDriver's JSON.
    static let referenceKey = "element-6066-11e4-a52e-4f735466cecf"

    public let id: String
    /// How it was found (a CSS selector), for messages.
    public let origin: String

    /// The element an ``Browser/execute(_:args:)`` result refers to, if it is an element.
    public init?(_ value: JSONValue, origin: String = "script result") {
        guard let id = value[Self.referenceKey]?.stringValue else { return nil }
        self.id = id
        self.origin = origin
    }

    /// The element as an argument of ``Browser/execute(_:args:)`` (`arguments[i]` in the script).
    public var jsonValue: JSONValue { [Self.referenceKey: .string(id)] }

    public var description: String { origin }
}

/// A message of the page's console, or an error the browser reported for it.
public struct ConsoleMessage: Sendable, Equatable, CustomStringConvertible {
    public enum Level: Int, Sendable, Comparable {
        case debug, info, warning, error

        public static func < (lhs: Level, rhs: Level) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    public let level: Level
    /// Where Chromium says it came from: `console-api` (`console.error(...)` and the like),
    /// `javascript` (an uncaught exception or unhandled rejection), `network` (a resource or a
    /// fetch that failed or answered 4xx/5xx), or another of Chromium's sources.
    public let source: String
    /// As Chromium words it: the script's URL, line and column, then the text
    /// (`http://…/page.html 3:14 Uncaught Error: boom`).
    public let text: String

    public var isUncaughtException: Bool { source == "javascript" }
    public var isNetworkFailure: Bool { source == "network" }

    public var description: String { "[\(level) \(source)] \(text)" }
}

/// A headless Chromium driven over W3C WebDriver by its own chromedriver, for end-to-end tests of
/// web pages. Use ``withBrowser(_:_:)``: it quits the browser however the test ends.
///
/// chromedriver runs in a process group of its own (Chromium and its helpers join it), under a
/// watchdog shell that kills the whole group when its standard input closes: when ``quit()``
/// closes it, and when the test process dies without quitting.
public final class Browser: Sendable {
    public struct Configuration: Sendable {
        public var chromium: String
        public var chromedriver: String
        public var windowWidth = 1280
        public var windowHeight = 900
        /// More command-line switches for Chromium.
        public var extraArguments: [String] = []
        /// How long a page load or a script may take before the command fails.
        public var commandTimeout: Duration = .seconds(30)

        /// Chromium and chromedriver from `BUDPIPELINE_CHROMIUM` and `BUDPIPELINE_CHROMEDRIVER`
        /// when set, otherwise found on `PATH` (Debian installs them in /usr/bin).
        public init() {
            let environment = ProcessInfo.processInfo.environment
            chromium = environment["BUDPIPELINE_CHROMIUM"] ?? Browser.lookUp("chromium") ?? "/usr/bin/chromium"
            chromedriver = environment["BUDPIPELINE_CHROMEDRIVER"] ?? Browser.lookUp("chromedriver") ?? "/usr/bin/chromedriver"
        }
    }

    /// Whether the test command requires a browser (`BUDPIPELINE_REQUIRE_BROWSER=1`): a missing
    /// one then fails the browser tests instead of skipping them.
    public static var isRequired: Bool { ProcessInfo.processInfo.environment["BUDPIPELINE_REQUIRE_BROWSER"] == "1" }

    /// Whether Chromium and chromedriver are installed.
    public static var isInstalled: Bool { missingPrograms(Configuration()).isEmpty }

    /// Whether the browser suites run: the programs are installed, or they are required (and
    /// their absence fails the tests).
    public static var isAvailable: Bool { isInstalled || isRequired }

    /// chromedriver's loopback port.
    private let port: Int
    /// The `/session/<id>` every command goes to.
    private let session: String
    private let driver: BackgroundProcess
    /// The writing end of the watchdog's standard input.
    private let watchdogInput: FileHandle
    /// The process group of chromedriver, Chromium and its helpers.
    private let processGroup: pid_t
    /// The main Chromium process (`goog:processID`).
    public let browserProcessID: pid_t
    /// The pid of chromedriver itself.
    public var driverProcessID: pid_t { processGroup }
    private let userDataDirectory: String
    private let commandTimeout: Duration
    private let state = Mutex(State())

    private struct State {
        var console: [ConsoleMessage] = []
        var quit = false
    }

    private init(
        port: Int, session: String, driver: BackgroundProcess, watchdogInput: FileHandle, processGroup: pid_t, browserProcessID: pid_t,
        userDataDirectory: String, commandTimeout: Duration
    ) {
        self.port = port
        self.session = session
        self.driver = driver
        self.watchdogInput = watchdogInput
        self.processGroup = processGroup
        self.browserProcessID = browserProcessID
        self.userDataDirectory = userDataDirectory
        self.commandTimeout = commandTimeout
    }

    /// The watchdog: starts chromedriver (`$0 "$@"`) in a session and process group of its own,
    /// prints its pid, and kills the group at the end of its standard input. (dash's `kill` takes
    /// a negative pid only after `-s SIGNAL --`.)
    private static let watchdog = """
        /usr/bin/setsid "$0" "$@" </dev/null &
        child=$!
        echo "browser-harness: chromedriver pid $child"
        while read -r _; do :; done
        kill -s KILL -- "-$child"
        """

    /// Starts chromedriver and a headless Chromium with a fresh profile. Throws
    /// ``BrowserUnavailable`` when either program is missing.
    public static func launch(_ configuration: Configuration = Configuration()) async throws -> Browser {
        let missing = missingPrograms(configuration)
        guard missing.isEmpty else { throw BrowserUnavailable(missing: missing) }
        let userDataDirectory = NSTemporaryDirectory() + "bp-browser-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: userDataDirectory, withIntermediateDirectories: true)
        let input = Pipe()
        let driver: BackgroundProcess
        do {
            driver = try BackgroundProcess(
                "/bin/sh", ["-c", watchdog, configuration.chromedriver, "--port=0"], environment: [:], standardInput: input)
        } catch {
            try? FileManager.default.removeItem(atPath: userDataDirectory)
            throw error
        }
        // Until the browser exists, a failure ends what started so far.
        func abandon(_ message: String) async -> BrowserError {
            try? input.fileHandleForWriting.close()
            await driver.stop(timeout: .seconds(5))
            try? FileManager.default.removeItem(atPath: userDataDirectory)
            return BrowserError("\(message)\n--- chromedriver output ---\n\(driver.output)")
        }
        let started = "was started successfully on port "
        let deadline = ContinuousClock.now + .seconds(30)
        var port: Int?
        var group: Int?
        while port == nil, ContinuousClock.now < deadline {
            let output = driver.output
            group = group ?? number(after: "browser-harness: chromedriver pid ", in: output)
            port = number(after: started, in: output)
            if port == nil, let group, !isAlive(pid_t(group)) { break }
            try? await Task.sleep(for: .milliseconds(20))
        }
        guard let port, let group else { throw await abandon("chromedriver did not start") }

        var arguments = [
            "--headless=new", "--disable-gpu", "--window-size=\(configuration.windowWidth),\(configuration.windowHeight)",
            "--user-data-dir=\(userDataDirectory)", "--no-first-run", "--disable-component-update",
        ]
        // Chromium refuses to run as root with its sandbox on.
        if geteuid() == 0 { arguments.append("--no-sandbox") }
        arguments += configuration.extraArguments
        let milliseconds = Int(configuration.commandTimeout.components.seconds * 1000)
        let capabilities: JSONValue = [
            "capabilities": [
                "alwaysMatch": [
                    "browserName": "chrome",
                    "goog:chromeOptions": ["binary": .string(configuration.chromium), "args": .array(arguments.map { .string($0) })],
                    // Lets `POST /session/{id}/se/log` return the page's console and errors.
                    "goog:loggingPrefs": ["browser": "ALL"],
                    "timeouts": ["pageLoad": .int(milliseconds), "script": .int(milliseconds), "implicit": 0],
                ]
            ]
        ]
        let created: JSONValue
        do {
            created = try await command("POST", port: port, "/session", name: "new session", body: capabilities, timeout: .seconds(60))
        } catch {
            throw await abandon("Chromium did not start: \(error)")
        }
        guard let id = created["sessionId"]?.stringValue, let browserPID = created["capabilities"]?["goog:processID"]?.intValue else {
            throw await abandon("unexpected new session reply \(created)")
        }
        return Browser(
            port: port, session: "/session/\(id)", driver: driver, watchdogInput: input.fileHandleForWriting, processGroup: pid_t(group),
            browserProcessID: pid_t(browserPID), userDataDirectory: userDataDirectory, commandTimeout: configuration.commandTimeout)
    }

    // MARK: Navigation

    /// Loads `url` and waits for its `load` event. Throws when the page could not be loaded at
    /// all (connection refused, no such host); an HTTP error page is a page.
    public func open(_ url: String) async throws {
        try await send("POST", "/url", name: "open \(url)", body: ["url": .string(url)])
        let location = try await execute("return location.href").stringValue ?? ""
        if location.hasPrefix("chrome-error://") { throw BrowserError("could not load \(url)") }
    }

    public func open(_ url: URL) async throws { try await open(url.absoluteString) }

    /// The URL of the current page.
    public func currentURL() async throws -> String { try await send("GET", "/url", name: "current URL").stringValue ?? "" }

    public func title() async throws -> String { try await send("GET", "/title", name: "title").stringValue ?? "" }

    // MARK: Elements

    /// The first element matching the CSS selector `css`, or nil when there is none (now: it does
    /// not wait).
    public func find(_ css: String) async throws -> Element? {
        do {
            let value = try await send("POST", "/element", name: "find \(css)", body: ["using": "css selector", "value": .string(css)])
            return Element(value, origin: css)
        } catch let error as WebDriverError where error.error == "no such element" {
            return nil
        }
    }

    /// Every element matching `css`, in document order.
    public func findAll(_ css: String) async throws -> [Element] {
        let value = try await send("POST", "/elements", name: "find all \(css)", body: ["using": "css selector", "value": .string(css)])
        return (value.arrayValue ?? []).compactMap { Element($0, origin: css) }
    }

    /// Waits until an element matches `css` and returns it.
    public func waitFor(_ css: String, timeout: Duration = .seconds(10)) async throws -> Element {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let element = try await find(css) { return element }
            guard ContinuousClock.now < deadline else {
                throw BrowserError("no element matches \(css) after \(timeout) (page \(try await currentURL()))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Waits until the JavaScript expression `script` is truthy in the page and returns its value.
    /// An expression that throws (an element not there yet) counts as false; the last error is
    /// part of the timeout's message.
    @discardableResult
    public func waitUntil(timeout: Duration = .seconds(10), script: String) async throws -> JSONValue {
        let deadline = ContinuousClock.now + timeout
        var lastError: (any Error)?
        while true {
            do {
                let value = try await execute("const value = (\n\(script)\n); return value ? [true, value] : [false, null];")
                if value[0] == true { return value[1] ?? .null }
                lastError = nil
            } catch let error as WebDriverError where error.error == "javascript error" {
                lastError = error
            }
            guard ContinuousClock.now < deadline else {
                let reason = lastError.map { " (last error: \($0))" } ?? ""
                throw BrowserError("still false after \(timeout): \(script)\(reason)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// The rendered text of `element` (what a user sees: hidden text excluded).
    public func text(of element: Element) async throws -> String {
        try await send("GET", "/element/\(element.id)/text", name: "text of \(element)").stringValue ?? ""
    }

    /// A DOM property of `element` (`value` of an input, `checked`, `disabled`, ...).
    public func property(_ name: String, of element: Element) async throws -> JSONValue {
        try await send("GET", "/element/\(element.id)/property/\(name)", name: "property \(name) of \(element)")
    }

    /// An HTML attribute of `element`; nil when it has none.
    public func attribute(_ name: String, of element: Element) async throws -> String? {
        try await send("GET", "/element/\(element.id)/attribute/\(name)", name: "attribute \(name) of \(element)").stringValue
    }

    /// Clicks the middle of `element` as a user would (it must be visible and not covered).
    public func click(_ element: Element) async throws {
        try await send("POST", "/element/\(element.id)/click", name: "click \(element)", body: [:])
    }

    /// Keys without a character, to put in the text of ``type(_:into:)`` (WebDriver's code points).
    public enum Key {
        public static let enter = "\u{E007}"
        public static let tab = "\u{E004}"
        public static let backspace = "\u{E003}"
        public static let escape = "\u{E00C}"
    }

    /// Types `text` into `element` key by key, after what it already holds (``Key`` for Enter and
    /// the like).
    public func type(_ text: String, into element: Element) async throws {
        try await send("POST", "/element/\(element.id)/value", name: "type into \(element)", body: ["text": .string(text)])
    }

    /// Empties an input or text area.
    public func clear(_ element: Element) async throws {
        try await send("POST", "/element/\(element.id)/clear", name: "clear \(element)", body: [:])
    }

    // MARK: Scripts

    /// Runs `script` as the body of a function in the page (`return` gives the result,
    /// `arguments[i]` are `args`; pass elements as ``Element/jsonValue``) and returns its result.
    /// A returned promise is awaited. Elements in the result are references: see ``Element/init(_:origin:)``.
    @discardableResult
    public func execute(_ script: String, args: [JSONValue] = []) async throws -> JSONValue {
        try await send("POST", "/execute/sync", name: "execute script", body: ["script": .string(script), "args": .array(args)])
    }

    // MARK: Screenshots and window

    /// A PNG of the viewport.
    public func screenshot() async throws -> Data {
        try Self.png(try await send("GET", "/screenshot", name: "screenshot"))
    }

    /// A PNG of `element`'s box (scrolled into view).
    public func screenshot(of element: Element) async throws -> Data {
        try Self.png(try await send("GET", "/element/\(element.id)/screenshot", name: "screenshot of \(element)"))
    }

    /// Resizes the window (the outer size: the viewport is what is left of it).
    public func setWindowSize(width: Int, height: Int) async throws {
        try await send("POST", "/window/rect", name: "set window size", body: ["width": .int(width), "height": .int(height)])
    }

    // MARK: Console

    /// The messages of the page's console and the errors Chromium reported since the browser
    /// started (or since ``clearConsoleMessages()``), at `minimumLevel` or above: by default
    /// `console.error`/`console.warn`, uncaught exceptions and unhandled rejections (level
    /// error, source `javascript`), and resources or fetches that failed (level error, source
    /// `network`). The missing `/favicon.ico` Chromium asks every site for is left out.
    ///
    /// Chromium delivers them asynchronously: a message logged just now may need a moment; wait
    /// for it (``waitUntil(timeout:script:)`` on something the page does after it, or poll).
    public func consoleMessages(minimumLevel: ConsoleMessage.Level = .warning) async throws -> [ConsoleMessage] {
        let entries = try await send("POST", "/se/log", name: "console log", body: ["type": "browser"])
        let new = (entries.arrayValue ?? []).compactMap(Self.consoleMessage)
        let all = state.withLock { state in
            state.console += new
            return state.console
        }
        return all.filter { $0.level >= minimumLevel }
    }

    /// Forgets the console messages so far.
    public func clearConsoleMessages() async throws {
        _ = try await send("POST", "/se/log", name: "console log", body: ["type": "browser"])
        state.withLock { $0.console.removeAll() }
    }

    // MARK: Quitting

    /// Ends the browser session, chromedriver, Chromium and all its processes, and deletes the
    /// profile. Never throws; calling it again does nothing.
    public func quit() async {
        let first = state.withLock { state in
            defer { state.quit = true }
            return !state.quit
        }
        guard first else { return }
        // Not cancelled with the caller's task: the processes must end even then.
        await Task { await end() }.value
    }

    private func end() async {
        // A clean end first (Chromium closes its profile); then the watchdog kills the group.
        _ = try? await Self.command("DELETE", port: port, session, name: "quit", body: nil, timeout: .seconds(10))
        try? watchdogInput.close()
        let watchdogDeadline = ContinuousClock.now + .seconds(5)
        while driver.isRunning, ContinuousClock.now < watchdogDeadline { try? await Task.sleep(for: .milliseconds(10)) }
        if driver.isRunning {
            // The watchdog did not end (another child process may hold its input open): do its work.
            kill(-processGroup, SIGKILL)
            await driver.stop(timeout: .seconds(5))
        }
        // Chromium's processes are not our children: pid 1 reaps them. Wait until they are gone.
        let deadline = ContinuousClock.now + .seconds(10)
        while Self.isAlive(browserProcessID) || Self.isAlive(processGroup), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        try? FileManager.default.removeItem(atPath: userDataDirectory)
    }

    /// Whether process `pid` runs (a zombie, dead but not reaped yet, does not).
    public static func isAlive(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return !stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    // MARK: Wire

    @discardableResult
    private func send(_ method: String, _ path: String, name: String, body: JSONValue? = nil) async throws -> JSONValue {
        guard !state.withLock({ $0.quit }) else { throw BrowserError("\(name): the browser has quit") }
        // Page loads and scripts have the session's own timeouts: allow the driver to report them.
        return try await Self.command(method, port: port, session + path, name: name, body: body, timeout: commandTimeout + .seconds(30))
    }

    /// Sends one WebDriver command and returns its `value`, or throws its error.
    ///
    /// Over a socket of its own rather than URLSession: chromedriver writes its header fields
    /// without a space after the colon (`Content-Length:891`), which is valid HTTP that Linux
    /// Foundation's URLSession refuses ("Failed writing header").
    private static func command(_ method: String, port: Int, _ path: String, name: String, body: JSONValue?, timeout: Duration)
        async throws -> JSONValue
    {
        let content = body?.serialized() ?? []
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        if body != nil { head += "Content-Type: application/json; charset=utf-8\r\n" }
        head += "Content-Length: \(content.count)\r\n\r\n"
        let (status, reply) = try await exchange(port: port, request: Array(head.utf8) + content, timeout: timeout, name: name)
        let value: JSONValue
        do {
            value = try JSONValue(parsing: reply)["value"] ?? .null
        } catch {
            throw BrowserError("WebDriver \(name): HTTP \(status), not JSON: \(String(decoding: reply.prefix(500), as: UTF8.self))")
        }
        if let error = value["error"]?.stringValue {
            // The driver's message ends with "(Session info: chrome=…)": not worth reading.
            let message = (value["message"]?.stringValue ?? "").components(separatedBy: "\n  (Session info:")[0]
            throw WebDriverError(command: name, error: error, message: message)
        }
        return value
    }

    /// Sends `request` to the loopback `port` and returns the response's status and body. The
    /// reads never block: between them the task sleeps, holding no thread of the shared pool.
    private static func exchange(port: Int, request: [UInt8], timeout: Duration, name: String) async throws -> (Int, [UInt8]) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw BrowserError("WebDriver \(name): socket() failed: errno \(errno)") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(clamping: port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw BrowserError("WebDriver \(name): chromedriver (port \(port)) refused: errno \(errno)") }
        var offset = 0
        while offset < request.count {
            let sent = request[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw BrowserError("WebDriver \(name): sending failed: errno \(errno)") }
            offset += sent
        }
        let deadline = ContinuousClock.now + timeout
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var closed = false
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 {
                received += buffer[..<count]
                continue
            }
            if count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { closed = true }
            if let response = parseResponse(received, closed: closed) { return response }
            if closed { throw BrowserError("WebDriver \(name): the connection closed before a whole response") }
            guard ContinuousClock.now < deadline else { throw BrowserError("WebDriver \(name): no response within \(timeout)") }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// The status and body of a whole response in `bytes`: its `Content-Length` arrived, or
    /// without one the connection closed. Nil while more is to come.
    private static func parseResponse(_ bytes: [UInt8], closed: Bool) -> (Int, [UInt8])? {
        let separator = Array("\r\n\r\n".utf8)
        guard let end = bytes.indices.first(where: { bytes[$0...].starts(with: separator) }) else { return nil }
        let head = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        guard let status = head.first?.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return nil }
        let body = Array(bytes[(end + separator.count)...])
        let length = head.first { $0.lowercased().hasPrefix("content-length:") }.flatMap {
            Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
        }
        if let length { return body.count >= length ? (status, Array(body.prefix(length))) : nil }
        return closed ? (status, body) : nil
    }

    private static func png(_ value: JSONValue) throws -> Data {
        guard let text = value.stringValue, let data = Data(base64Encoded: text) else { throw BrowserError("screenshot: not base64") }
        return data
    }

    private static func consoleMessage(_ entry: JSONValue) -> ConsoleMessage? {
        guard let text = entry["message"]?.stringValue else { return nil }
        let source = entry["source"]?.stringValue ?? "other"
        if source == "network", text.split(separator: " ").first?.hasSuffix("/favicon.ico") == true { return nil }
        let level: ConsoleMessage.Level =
            switch entry["level"]?.stringValue {
            case "SEVERE": .error
            case "WARNING": .warning
            case "INFO": .info
            default: .debug
            }
        return ConsoleMessage(level: level, source: source, text: text)
    }

    private static func number(after marker: String, in text: String) -> Int? {
        guard let range = text.range(of: marker, options: .backwards) else { return nil }
        return Int(text[range.upperBound...].prefix { $0.isNumber })
    }

    private static func missingPrograms(_ configuration: Configuration) -> [String] {
        [configuration.chromium, configuration.chromedriver].filter { !FileManager.default.isExecutableFile(atPath: $0) }
    }

    private static func lookUp(_ program: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(program)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// Launches a browser, runs `body` with it and quits it, whether `body` returns, throws or is
/// cancelled. Throws ``BrowserUnavailable`` when Chromium is missing: enable the suite with
/// `.enabled(if: Browser.isAvailable)` so that it is skipped then, unless `BUDPIPELINE_REQUIRE_BROWSER=1`.
public func withBrowser<Value: Sendable>(
    _ configuration: Browser.Configuration = Browser.Configuration(), _ body: (Browser) async throws -> Value
) async throws -> Value {
    let browser = try await Browser.launch(configuration)
    do {
        let result = try await body(browser)
        await browser.quit()
        return result
    } catch {
        await browser.quit()
        throw error
    }
}
