public import BudJSON
public import Foundation
public import PipelineEngine

/// A pipeline's DAG as a picture-ready graph: one node per step, one edge per dependency, and a
/// dashed edge from each `conditional` step to the steps its branches choose. With an execution's
/// steps, every node also carries its status, duration and what it waits for.
///
/// Everything shown is text taken from the definition or the store, so every label is cleaned
/// here once: control characters become spaces and each line is cut to ``Limits/lineLength``;
/// the writers only have to escape for their syntax. The graph is a value with no I/O, so the
/// writers and the console's picture are tested from plain definitions.
public struct PipelineGraph: Sendable, Equatable {
    /// How much text a node may show, so that a hostile or careless definition still draws.
    public enum Limits {
        /// Characters per label line (longer lines end in `…`).
        public static let lineLength = 48
        /// Characters of a tooltip (the full text of a node, for hovering).
        public static let tooltipLength = 1_000
        /// Branch edges drawn per `conditional` step.
        public static let branchesPerStep = 32
    }

    public struct Node: Sendable, Equatable {
        /// The step's position in definition order, from 0: names the node (`s<index>`); its SVG
        /// element is `step-<index + 1>`, the API's `sequence_number`.
        public let index: Int
        public let stepID: String
        /// The label's lines, cleaned: the name, then the action (and the id when it differs from
        /// the name), the condition, and for an execution the status line and the wait.
        public let lines: [String]
        /// The node's whole text for a tooltip, cleaned.
        public let tooltip: String
        /// `nil` for a pipeline drawn without an execution.
        public let status: StepStatus?
        /// Whether the step has a condition (drawn with a diamond-cornered outline).
        public let isConditional: Bool
    }

    public struct Edge: Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            /// `to` depends on `from`.
            case dependency
            /// `from` is a `conditional` step whose branch may choose `to`.
            case branch(label: String)
        }
        public let from: Int
        public let to: Int
        public let kind: Kind
    }

    /// The pipeline's name (cleaned), for the graph's title.
    public let title: String
    public let nodes: [Node]
    public let edges: [Edge]
    /// Whether statuses are shown (an execution's graph).
    public let showsExecution: Bool

    /// The graph of `definition`; with `steps` (an execution's, matched by step id), each node
    /// shows its status, duration at `now` and what it waits for. Steps of `steps` that the
    /// definition lacks are ignored; steps it lacks are drawn as pending.
    public init(definition: PipelineDefinition, steps: [StepState]? = nil, now: Date = Date()) {
        let graph = DependencyGraph(definition.steps)
        var statesByID: [String: StepState] = [:]
        for state in steps ?? [] where statesByID[state.stepID] == nil { statesByID[state.stepID] = state }
        title = Self.clean(definition.name)
        showsExecution = steps != nil
        var nodes: [Node] = []
        nodes.reserveCapacity(definition.steps.count)
        for (index, step) in definition.steps.enumerated() {
            let state =
                showsExecution
                ? (statesByID[step.id] ?? StepState(stepID: step.id, name: step.name, action: step.action, sequence: index)) : nil
            var lines = [Self.clean(step.name.isEmpty ? step.id : step.name)]
            lines.append(Self.clean(step.name == step.id || step.name.isEmpty ? step.action : "\(step.id) · \(step.action)"))
            if let condition = step.condition { lines.append(Self.clean("if \(condition)")) }
            var full = ["\(step.name) (\(step.id)): \(step.action)"]
            if let condition = step.condition { full.append("condition: \(condition)") }
            if let state {
                let statusLine = Self.statusLine(state, now: now)
                lines.append(Self.clean(statusLine))
                full.append(statusLine)
                if let wait = Self.wait(of: state, step: step, graph: graph, index: index, states: statesByID) {
                    lines.append(Self.clean(wait))
                    full.append(wait)
                }
                if let error = state.error { full.append("error: \(error)") }
            }
            nodes.append(
                Node(
                    index: index, stepID: step.id, lines: lines,
                    tooltip: Self.clean(full.joined(separator: "\n"), limit: Limits.tooltipLength),
                    status: state?.status, isConditional: step.condition != nil))
        }
        var edges: [Edge] = []
        for (index, dependencies) in graph.dependencies.enumerated() {
            for dependency in dependencies { edges.append(Edge(from: dependency, to: index, kind: .dependency)) }
        }
        for (index, step) in definition.steps.enumerated() {
            for branch in Self.branches(of: step).prefix(Limits.branchesPerStep) {
                guard let target = graph.index(of: branch.target), target != index else { continue }
                edges.append(Edge(from: index, to: target, kind: .branch(label: Self.clean(branch.label))))
            }
        }
        self.nodes = nodes
        self.edges = edges
    }

    /// `RUNNING · 4.2s`, `COMPLETED in 1.3s`, `FAILED (attempt 2)`.
    static func statusLine(_ state: StepState, now: Date) -> String {
        var line = state.status.rawValue
        if state.attempt > 0 { line += " (attempt \(state.attempt + 1))" }
        if let started = state.startedAt {
            let end = state.endedAt ?? now
            let seconds = end.timeIntervalSince(started)
            line += state.endedAt == nil ? " · \(Self.duration(seconds))" : " in \(Self.duration(seconds))"
        }
        return line
    }

    /// What an unsettled step waits for, or `nil` when it waits for nothing (or has ended).
    static func wait(of state: StepState, step: PipelineStep, graph: DependencyGraph, index: Int, states: [String: StepState]) -> String? {
        switch state.status {
        case .awaitingEvent:
            var text = "waits for an event"
            if let external = state.externalWorkflowID { text += " of \(external)" }
            if let deadline = state.deadline { text += " until \(Self.clock(deadline))" }
            return text
        case .retrying:
            return "waits out its retry backoff"
        case .pending:
            let open =
                graph.dependencies.indices.contains(index)
                ? graph.dependencies[index].compactMap { dependency -> String? in
                    let id = graph.ids[dependency]
                    return states[id]?.status.isSettled == true ? nil : id
                } : []
            return open.isEmpty ? nil : "waits for " + open.joined(separator: ", ")
        case .running:
            if step.action == "wait_until", let deadline = state.deadline { return "waits until \(Self.clock(deadline))" }
            return state.progress > 0 ? "\(Int(state.progress.rounded(.down)))% done" : nil
        case .completed, .failed, .skipped, .timedOut, .cancelled:
            return nil
        }
    }

    /// The branches of a `conditional` step as (target step id, label), read leniently from its
    /// parameters: the definition was validated when stored, and a graph must draw whatever is
    /// there.
    static func branches(of step: PipelineStep) -> [(target: String, label: String)] {
        guard step.action == "conditional", case .array(let raw)? = step.params["branches"] else { return [] }
        return raw.compactMap { value in
            guard case .object(let branch) = value, let target = branch["target_step"]?.stringValue else { return nil }
            let label = branch["label"]?.stringValue ?? branch["condition"]?.stringValue ?? branch["id"]?.stringValue ?? ""
            return (target, label)
        }
    }

    /// `850ms`, `4.2s`, `3m 05s`, `2h 01m`.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "0s" }
        if seconds < 1 { return "\(Int(seconds * 1000))ms" }
        if seconds < 60 {
            let tenths = Int((seconds * 10).rounded(.toNearestOrEven))
            return tenths >= 600 ? "1m 00s" : "\(tenths / 10).\(tenths % 10)s"
        }
        let whole = seconds < 1e12 ? Int(seconds) : 999_999_999_999
        if whole < 3600 { return "\(whole / 60)m \(twoDigits(whole % 60))s" }
        return "\(whole / 3600)h \(twoDigits((whole % 3600) / 60))m"
    }

    /// The time of day in UTC, `HH:mm:ssZ`.
    static func clock(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        guard seconds.isFinite, abs(seconds) < 1e15 else { return "--:--:--Z" }
        let day = ((Int(seconds.rounded(.down)) % 86_400) + 86_400) % 86_400
        return "\(twoDigits(day / 3600)):\(twoDigits(day % 3600 / 60)):\(twoDigits(day % 60))Z"
    }

    private static func twoDigits(_ value: Int) -> String {
        value < 10 ? "0\(value)" : "\(value)"
    }

    /// `text` on one line without control characters (each run of them becomes one space), at
    /// most `limit` Unicode scalars (a longer text ends in `…`). Scalars, not characters: one
    /// character can carry thousands of combining marks, and every string handed to Graphviz must
    /// stay far below its 16 KB limit on a quoted string.
    public static func clean(_ text: String, limit: Int = Limits.lineLength) -> String {
        guard limit > 0 else { return "" }
        var result = String.UnicodeScalarView()
        // Scalars kept (spaces included), and how many of them stay if the text is cut: room is
        // left for the ellipsis.
        var used = 0
        var cut = 0
        var pendingSpace = false
        for scalar in text.unicodeScalars {
            if isLineBreakOrControl(scalar) {
                pendingSpace = used > 0
                continue
            }
            let cost = pendingSpace ? 2 : 1
            guard used + cost <= limit else {
                return String(String.UnicodeScalarView(result.prefix(cut))) + "…"
            }
            if pendingSpace {
                result.append(" ")
                pendingSpace = false
            }
            result.append(scalar)
            used += cost
            if used < limit { cut = used }
        }
        return String(result)
    }

    /// Whether `scalar` ends a line, is a control or format character (bidirectional overrides
    /// among them; the zero-width joiner of emoji sequences is kept), or a noncharacter (U+FFFE
    /// and U+FFFF are not allowed in XML, so an SVG holding one would not parse). Printable ASCII
    /// is decided without a look-up.
    static func isLineBreakOrControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x20..<0x7F: return false
        case 0..<0x20, 0x7F: return true
        case 0x200D: return false
        case 0x2028, 0x2029: return true
        default:
            let category = scalar.properties.generalCategory
            return category == .control || category == .format || scalar.properties.isNoncharacterCodePoint
        }
    }
}

extension PipelineGraph {
    /// The definition a stored or written DAG document describes, for drawing: an object whose
    /// `steps` is a list; one without steps (a draft) is an empty definition named `fallbackName`
    /// unless it has a name. Anything else, a DAG the parser refuses, or steps that form a cycle
    /// is an error naming the problem.
    public static func definition(drawing dag: JSONValue?, fallbackName: String) throws(PipelineParseError) -> PipelineDefinition {
        guard let dag else { return PipelineDefinition(name: fallbackName, steps: []) }
        guard case .object(let object) = dag else {
            throw PipelineParseError(errors: ["not a DAG: expected an object with a list of steps"])
        }
        switch object["steps"] {
        case nil, .null?:
            return PipelineDefinition(name: object["name"]?.stringValue ?? fallbackName, steps: [])
        case .array(let steps)? where steps.isEmpty:
            return PipelineDefinition(name: object["name"]?.stringValue ?? fallbackName, steps: [])
        case .array?:
            break
        default:
            throw PipelineParseError(errors: ["steps: expected a list"])
        }
        switch PipelineParser.parse(dag) {
        case .success(let definition):
            if let cycle = DependencyGraph(definition.steps).cycle() {
                throw PipelineParseError(errors: ["the steps form a cycle: \(cycle.joined(separator: " -> "))"])
            }
            return definition
        case .failure(let error): throw error
        }
    }
}
