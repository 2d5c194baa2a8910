import BudJSON
import Foundation
import PipelineEngine
import Synchronization
import Testing
import _BudPipelineTestSupport

@testable import PipelineGraph

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// The SVG's root and the `g` elements' ids and classes, read with a real XML parser.
final class SVGOutline: NSObject, XMLParserDelegate {
    var root: String?
    var groups: [(id: String, classes: String)] = []
    var texts: [String] = []
    private var inText = false

    static func parse(_ svg: String) -> SVGOutline? {
        let outline = SVGOutline()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = outline
        return parser.parse() ? outline : nil
    }

    func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]
    ) {
        if root == nil { root = name }
        if name == "g", let id = attributes["id"] { groups.append((id, attributes["class"] ?? "")) }
        if name == "text" {
            inText = true
            texts.append("")
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if inText, !texts.isEmpty { texts[texts.count - 1] += string }
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "text" { inText = false }
    }
}

@Suite("Pipeline graphs")
struct PipelineGraphTests {
    static let exampleFiles: [String] = {
        let fixtures = Repository.path("Tests/Fixtures/dags")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: fixtures)) ?? []
        return files.filter { $0.hasSuffix(".json") }.sorted().map { "\(fixtures)/\($0)" }
            + [Repository.path("docs/examples/deploy-benchmark-notify.json")]
    }()

    static func definition(_ file: String) throws -> PipelineDefinition {
        let text = try String(contentsOfFile: file, encoding: .utf8)
        var document = try PipelineDocument.read(text, format: .json)
        if let dag = document["dag"], document["steps"] == nil { document = dag }
        return try PipelineGraph.definition(drawing: document, fallbackName: "")
    }

    /// A layout with a deadline no test run reaches: the suites run in parallel on a few cores,
    /// and a test's tasks may wait seconds for a thread.
    static let patient = GraphvizLayout(deadline: .seconds(120))

    static func step(_ id: String, name: String? = nil, dependsOn: [String] = [], condition: String? = nil, action: String = "log")
        -> PipelineStep
    {
        PipelineStep(id: id, name: name ?? id, action: action, dependsOn: dependsOn, condition: condition)
    }

    @Test("every example DAG draws in DOT and Mermaid with all its steps and dependencies")
    func examplesAsText() throws {
        #expect(Self.exampleFiles.count >= 5)
        for file in Self.exampleFiles {
            let definition = try Self.definition(file)
            let graph = PipelineGraph(definition: definition)
            let dot = graph.dot()
            let mermaid = graph.mermaid()
            #expect(dot.hasPrefix("digraph pipeline {"), "\(file)")
            #expect(mermaid.contains("flowchart TD"), "\(file)")
            let dependencies = definition.steps.reduce(0) { $0 + Set($1.dependsOn).count }
            #expect(graph.edges.filter { $0.kind == .dependency }.count == dependencies, "\(file)")
            for index in definition.steps.indices {
                #expect(dot.contains("  s\(index) [id=\"step-\(index + 1)\""), "\(file) step \(index)")
                #expect(mermaid.contains("  s\(index)[\""), "\(file) step \(index)")
            }
            #expect(dot.components(separatedBy: " -> ").count - 1 == graph.edges.count, "\(file)")
        }
    }

    @Test("every example DAG lays out as SVG that parses, one element per step", .enabled(if: Graphviz.isUsable))
    func examplesAsSVG() async throws {
        for file in Self.exampleFiles {
            let definition = try Self.definition(file)
            let svg = try await Self.patient.svg(PipelineGraph(definition: definition).dot())
            let outline = try #require(SVGOutline.parse(svg), "\(file): the SVG does not parse")
            #expect(outline.root == "svg")
            let steps = outline.groups.filter { $0.id.hasPrefix("step-") && $0.classes.contains("step") }
            #expect(steps.count == definition.steps.count, "\(file)")
            #expect(Set(steps.map(\.id)) == Set(definition.steps.indices.map { "step-\($0 + 1)" }), "\(file)")
        }
    }

    @Test("a conditional step's branches are dashed edges to their targets")
    func branches() throws {
        let chooser = PipelineStep(
            id: "choose", name: "Choose", action: "conditional",
            params: [
                "branches": [
                    ["id": "a", "condition": "{{ params.x }}", "target_step": "left", "label": "left way"],
                    ["id": "b", "condition": "true", "target_step": "right"],
                    ["id": "c", "condition": "true", "target_step": "nowhere"],
                ]
            ])
        let definition = PipelineDefinition(
            name: "branching", steps: [chooser, Self.step("left", dependsOn: ["choose"]), Self.step("right", dependsOn: ["choose"])])
        let graph = PipelineGraph(definition: definition)
        #expect(graph.edges.contains(PipelineGraph.Edge(from: 0, to: 1, kind: .branch(label: "left way"))))
        #expect(graph.edges.contains(PipelineGraph.Edge(from: 0, to: 2, kind: .branch(label: "true"))))
        #expect(graph.edges.count == 4)
        #expect(graph.dot().contains("s0 -> s1 [style=dashed"))
        #expect(graph.mermaid().contains("s0 -. \"left way\" .-> s1"))
    }

    @Test("an execution's graph shows each status, duration and wait")
    func executionStatuses() {
        let definition = PipelineDefinition(
            name: "run",
            steps: [
                Self.step("fetch"), Self.step("train", dependsOn: ["fetch"]), Self.step("deploy", dependsOn: ["train", "fetch"]),
                Self.step("hold", action: "model_deploy"), Self.step("later", dependsOn: ["hold"]),
            ])
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        var fetch = StepState(stepID: "fetch", name: "fetch", action: "log", sequence: 1)
        fetch.status = .completed
        fetch.startedAt = start
        fetch.endedAt = start.addingTimeInterval(1.25)
        var train = StepState(stepID: "train", name: "train", action: "log", sequence: 2)
        train.status = .running
        train.startedAt = start.addingTimeInterval(2)
        train.progress = 40
        var hold = StepState(stepID: "hold", name: "hold", action: "model_deploy", sequence: 4)
        hold.status = .awaitingEvent
        hold.startedAt = start
        hold.externalWorkflowID = "wf-7"
        hold.deadline = start.addingTimeInterval(3600)
        let graph = PipelineGraph(definition: definition, steps: [fetch, train, hold], now: start.addingTimeInterval(12))
        #expect(graph.nodes[0].lines.contains("COMPLETED in 1.2s"))
        #expect(graph.nodes[1].lines.contains("RUNNING · 10.0s"))
        #expect(graph.nodes[1].lines.contains("40% done"))
        #expect(graph.nodes[2].status == .pending)
        #expect(graph.nodes[2].lines.contains("waits for train"), "only the dependency not yet settled")
        #expect(graph.nodes[3].lines.contains("waits for an event of wf-7 until 09:00:00Z"))
        #expect(graph.nodes[4].lines.contains("waits for hold"))
        let dot = graph.dot()
        #expect(dot.contains("class=\"step status-awaiting_event\""))
        #expect(dot.contains("class=\"step status-completed\""))
        let mermaid = graph.mermaid()
        #expect(mermaid.contains("class s1 status_running"))
        #expect(mermaid.contains("classDef status_completed fill:#bbf7d0"))
    }

    static let hostileNames = [
        "quote \" and backslash \\ and \\N \\G \\l",
        "brace } ] ; -> s0 [label=\"x\"] digraph {",
        "<b>html</b> <script>alert(1)</script> &amp; &#60;",
        "line\nbreak\r\ncarriage \u{1B}[31mred\u{1B}[0m \u{07}bell \u{202E}rtl",
        "mermaid \"]) --> s0 click s0 call alert() %%{init}%% `x` #35; |pipe|",
        String(repeating: "長い名前", count: 400),
    ]

    @Test("hostile step text stays text: escaped in DOT, entity-coded in Mermaid, cut to size")
    func hostileText() throws {
        let steps = Self.hostileNames.enumerated().map { index, name in
            Self.step("s\(index)\"\\\n", name: name, dependsOn: index > 0 ? ["s\(index - 1)\"\\\n"] : [], condition: name)
        }
        let graph = PipelineGraph(definition: PipelineDefinition(name: "hostile \"\\\n---\ntitle: x", steps: steps))
        for node in graph.nodes {
            for line in node.lines {
                #expect(line.count <= PipelineGraph.Limits.lineLength)
                #expect(!line.unicodeScalars.contains { $0.properties.generalCategory == .control })
            }
            #expect(node.tooltip.count <= PipelineGraph.Limits.tooltipLength)
        }
        // DOT: every quoted string closes where it should — no unescaped quote inside one.
        for line in graph.dot().split(separator: "\n") {
            var inString = false
            var escaped = false
            for character in line {
                if escaped {
                    escaped = false
                } else if character == "\\" {
                    #expect(inString, "a backslash outside a string: \(line)")
                    escaped = true
                } else if character == "\"" {
                    inString.toggle()
                }
            }
            #expect(!inString, "an unterminated string: \(line)")
        }
        // Mermaid: labels hold no character that could end them or start markup.
        for line in graph.mermaid().split(separator: "\n") where line.contains("[\"") {
            let label = line.drop { $0 != "[" }.dropFirst(2).dropLast(2)
            #expect(!label.replacingOccurrences(of: "<br/>", with: "").contains { "\"[]<>`|{}%".contains($0) }, "\(line)")
        }
        #expect(graph.mermaid().hasPrefix("---\ntitle: hostile --- title x\n---\n"))
    }

    @Test("hostile step text survives Graphviz as the literal text", .enabled(if: Graphviz.isUsable))
    func hostileTextThroughGraphviz() async throws {
        let steps = Self.hostileNames.prefix(3).enumerated().map { index, name in Self.step("s\(index)", name: name) }
        let svg = try await Self.patient.svg(PipelineGraph(definition: PipelineDefinition(name: "h", steps: steps)).dot())
        let outline = try #require(SVGOutline.parse(svg))
        #expect(outline.texts.contains("quote \" and backslash \\ and \\N \\G \\l"))
        #expect(outline.texts.contains { $0.hasPrefix("brace } ] ; -> s0 [label=\"x\"]") })
        #expect(outline.texts.contains { $0.hasPrefix("<b>html</b> <script>") })
        #expect(!svg.contains("<script"), "markup from a label is escaped, never an element")
    }

    @Test("text Graphviz would decode or expand stays literal, and one character cannot carry a flood", .enabled(if: Graphviz.isUsable))
    func graphvizDecoding() async throws {
        let flood = "{{ true }}a" + String(repeating: "\u{301}", count: 40_000)
        let steps = [
            Self.step("a", name: "ctrl &#1; &#x1B;]0;X&#x7; &#xD800; &amp; & done"),
            Self.step("b", name: "tooltip \\N \\G \\L end", dependsOn: ["a"], condition: flood),
            Self.step("c", name: "not XML \u{FFFE} \u{FFFF} end", dependsOn: ["b"]),
        ]
        let graph = PipelineGraph(definition: PipelineDefinition(name: "decoding", steps: steps))
        for node in graph.nodes {
            #expect(node.lines.allSatisfy { $0.unicodeScalars.count <= PipelineGraph.Limits.lineLength })
            #expect(node.tooltip.unicodeScalars.count <= PipelineGraph.Limits.tooltipLength)
        }
        let svg = try await Self.patient.svg(graph.dot())
        let outline = try #require(SVGOutline.parse(svg), "the SVG parses")
        #expect(outline.texts.contains("ctrl &#1; &#x1B;]0;X&#x7; &#xD800; &amp; & done"))
        #expect(!svg.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" && $0 != "\t" })
        #expect(svg.contains("tooltip \\N \\G \\L end"), "the tooltip keeps the escapes as text")
    }

    @Test("Graphviz missing, too slow or too verbose is a clear failure", .enabled(if: Graphviz.isUsable))
    func layoutFailures() async throws {
        let dot = PipelineGraph(definition: PipelineDefinition(name: "x", steps: [Self.step("a"), Self.step("b", dependsOn: ["a"])])).dot()
        await #expect(throws: GraphvizLayout.Failure.unavailable) {
            try await GraphvizLayout(executable: "budpipeline-no-such-dot", deadline: .seconds(120)).svg(dot)
        }
        #expect(!GraphvizLayout(executable: "budpipeline-no-such-dot").isAvailable)
        await #expect(throws: GraphvizLayout.Failure.outputTooLarge(bytes: 64)) {
            try await GraphvizLayout(deadline: .seconds(120), outputLimit: 64).svg(dot)
        }
        let many = (0..<1500).map { Self.step("n\($0)", dependsOn: $0 == 0 ? [] : ["n\($0 / 2)", "n\($0 - 1)"]) }
        let big = PipelineGraph(definition: PipelineDefinition(name: "big", steps: many)).dot()
        let started = ContinuousClock.now
        await #expect(throws: GraphvizLayout.Failure.timedOut(milliseconds: 200)) {
            try await GraphvizLayout(deadline: .milliseconds(200)).svg(big)
        }
        #expect(ContinuousClock.now - started < .seconds(60), "the deadline kills dot")
    }

    @Test("the gate runs at most its limit at once and lets waiters go when cancelled")
    func gate() async throws {
        let gate = GraphvizGate(limit: 2, maxWaiting: 8, maxWait: .seconds(600))
        final class Counts: Sendable {
            let state = Mutex((now: 0, most: 0))
        }
        let counts = Counts()
        try await withThrowingTaskGroup(of: Int?.self) { group in
            for index in 0..<8 {
                group.addTask {
                    try await gate.run {
                        counts.state.withLock {
                            $0.now += 1
                            $0.most = max($0.most, $0.now)
                        }
                        try await Task.sleep(for: .milliseconds(30))
                        counts.state.withLock { $0.now -= 1 }
                        return index
                    }
                }
            }
            var finished = 0
            for try await result in group where result != nil { finished += 1 }
            #expect(finished == 8)
        }
        #expect(counts.state.withLock { $0.most } == 2)
        // Two hold the gate; a third waits and is cancelled: it returns nil without running.
        let holders = (0..<2).map { _ in Task { try await gate.run { try await Task.sleep(for: .seconds(600)) } } }
        try await Task.sleep(for: .milliseconds(50))
        let waiter = Task { try await gate.run { "ran" } }
        try await Task.sleep(for: .milliseconds(50))
        waiter.cancel()
        #expect(try await waiter.value == nil)
        for holder in holders {
            holder.cancel()
            _ = try? await holder.value
        }
        #expect(try await gate.run { "after" } == "after")
    }

    @Test("the gate's queue is bounded in length and in time, and it remembers answers")
    func gateBounds() async throws {
        let gate = GraphvizGate(limit: 1, maxWaiting: 1, maxWait: .milliseconds(300))
        // The slot is held until the test lets it go: the waiter can only end by giving up.
        let holder = Task { try await gate.run { try await Task.sleep(for: .seconds(600)) } }
        try await Task.sleep(for: .milliseconds(50))
        let waiter = Task { try await gate.run { "late" } }
        try await Task.sleep(for: .milliseconds(50))
        await #expect(throws: GraphvizGate.Busy.self, "the queue holds one") { try await gate.run { "third" } }
        await #expect(throws: GraphvizGate.Busy.self, "a waiter gives up after maxWait") { try await waiter.value }
        holder.cancel()
        _ = try? await holder.value
        if Graphviz.isUsable {
            let cached = GraphvizGate()
            let dot = PipelineGraph(definition: PipelineDefinition(name: "c", steps: [Self.step("a")])).dot()
            let first = try await cached.svg(dot, layout: Self.patient)
            // Asked again, the answer comes from memory: a layout that cannot run is not needed.
            #expect(try await cached.svg(dot, layout: GraphvizLayout(executable: "budpipeline-no-such-dot")) == first)
        }
    }

    @Test("documents that are not DAGs, and cycles, are refused for drawing")
    func notDAGs() throws {
        for document: JSONValue in [[1, 2, 3], "hello", ["steps": ["a": 1]], ["steps": "x"]] {
            #expect(throws: PipelineParseError.self, "\(document)") { try PipelineGraph.definition(drawing: document, fallbackName: "") }
        }
        let cyclic: JSONValue = [
            "name": "loop",
            "steps": [
                ["id": "a", "name": "a", "action": "log", "depends_on": ["b"]],
                ["id": "b", "name": "b", "action": "log", "depends_on": ["a"]],
            ],
        ]
        #expect(throws: PipelineParseError.self) { try PipelineGraph.definition(drawing: cyclic, fallbackName: "") }
        #expect(try PipelineGraph.definition(drawing: ["name": "draft", "steps": []], fallbackName: "").steps.isEmpty)
        #expect(try PipelineGraph.definition(drawing: ["name": "draft"], fallbackName: "").name == "draft")
    }

    @Test("durations and cleaning")
    func formatting() {
        #expect(PipelineGraph.duration(0.25) == "250ms")
        #expect(PipelineGraph.duration(4.21) == "4.2s")
        #expect(PipelineGraph.duration(185) == "3m 05s")
        #expect(PipelineGraph.duration(7260) == "2h 01m")
        #expect(PipelineGraph.duration(.infinity) == "0s")
        #expect(PipelineGraph.duration(1e300) == "277777777h 46m")
        #expect(PipelineGraph.clean("a\n\n\tb", limit: 10) == "a b")
        #expect(PipelineGraph.clean("abcdef", limit: 3) == "ab…")
        #expect(PipelineGraph.clean("x", limit: 0) == "")
        #expect(PipelineGraph.clean("abc", limit: 3) == "abc")
        #expect(PipelineGraph.clean("\u{1B}[2J") == "[2J")
        #expect(PipelineGraph.clean("a\u{FFFE}b\u{FFFF}c") == "a b c", "noncharacters would make the SVG ill-formed XML")
        let flood = PipelineGraph.clean("e" + String(repeating: "\u{301}", count: 100), limit: 10)
        #expect(flood.unicodeScalars.count == 10 && flood.hasSuffix("…"), "scalars are counted")
        #expect(
            PipelineGraph.clean("ab" + "e" + String(repeating: "\u{301}", count: 5), limit: 10) == "ab" + "e"
                + String(repeating: "\u{301}", count: 5))
    }
}
