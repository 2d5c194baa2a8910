import PipelineEngine

/// The formats a graph is written in.
public enum GraphFormat: String, Sendable, CaseIterable {
    /// Graphviz's language: laid out by `dot` (``GraphvizLayout``) or any tool that reads it.
    case dot
    /// `dot`'s SVG of the DOT text; each step is a `<g id="step-N" class="step status-…">`, `N`
    /// the step's `sequence_number` (its place in the definition, from 1).
    case svg
    /// A Mermaid flowchart, for Markdown renderers (GitHub, GitLab, docs sites).
    case mermaid

    /// The HTTP content type of a graph in this format.
    public var contentType: String {
        switch self {
        case .dot: "text/vnd.graphviz; charset=utf-8"
        case .svg: "image/svg+xml"
        case .mermaid: "text/plain; charset=utf-8"
        }
    }
}

/// The fill and outline of each status, shared by the DOT and Mermaid writers (the console's
/// stylesheet uses the same colours).
enum StatusColours {
    static func fill(_ status: StepStatus?) -> String {
        switch status {
        case nil: "#f8fafc"
        case .pending?: "#f1f5f9"
        case .running?: "#bfdbfe"
        case .awaitingEvent?: "#fde68a"
        case .retrying?: "#fed7aa"
        case .completed?: "#bbf7d0"
        case .failed?, .timedOut?: "#fecaca"
        case .skipped?: "#f8fafc"
        case .cancelled?: "#e2e8f0"
        }
    }

    static func outline(_ status: StepStatus?) -> String {
        switch status {
        case nil, .pending?, .skipped?, .cancelled?: "#64748b"
        case .running?: "#1d4ed8"
        case .awaitingEvent?: "#b45309"
        case .retrying?: "#c2410c"
        case .completed?: "#15803d"
        case .failed?, .timedOut?: "#b91c1c"
        }
    }

    /// The CSS class of a status: `status-running`, `status-awaiting_event`, `status-none`.
    static func className(_ status: StepStatus?) -> String {
        "status-" + (status?.rawValue.lowercased() ?? "none")
    }
}

extension PipelineGraph {
    /// The graph in Graphviz's DOT language, top to bottom. Nodes are `s<index>` with
    /// `id="step-<n>"` (`n`: the API's `sequence_number`, the index plus one) and `class="step status-<status>"` (both reach the SVG), so a page can
    /// restyle a step without laying the graph out again. Every string is quoted and escaped; no
    /// text from the definition can end a string or start an HTML label.
    public func dot() -> String {
        var out = "digraph pipeline {\n"
        out +=
            "  graph [rankdir=TB, label=\(Self.dotQuoted(title)), labelloc=t, fontname=\"Helvetica\", fontsize=14, nodesep=0.35, ranksep=0.45, bgcolor=\"transparent\"];\n"
        out += "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=11, margin=\"0.18,0.08\"];\n"
        out += "  edge [color=\"#64748b\", arrowsize=0.7];\n"
        for node in nodes {
            let status = node.status
            var style = "rounded,filled"
            if status == .skipped || status == .cancelled { style += ",dashed" }
            if status == .running || status == .awaitingEvent { style += ",bold" }
            let attributes = [
                "id=\(Self.dotQuoted("step-\(node.index + 1)"))",
                "class=\(Self.dotQuoted("step " + StatusColours.className(status)))",
                "label=\(Self.dotQuoted(node.lines.joined(separator: "\n")))",
                "tooltip=\(Self.dotQuoted(node.tooltip, expandedTwice: true))",
                "fillcolor=\(Self.dotQuoted(StatusColours.fill(status)))",
                "color=\(Self.dotQuoted(StatusColours.outline(status)))",
                "style=\(Self.dotQuoted(style))",
            ]
            out += "  s\(node.index) [\(attributes.joined(separator: ", "))];\n"
        }
        for edge in edges {
            switch edge.kind {
            case .dependency:
                out += "  s\(edge.from) -> s\(edge.to) [id=\(Self.dotQuoted("edge-\(edge.from)-\(edge.to)"))];\n"
            case .branch(let label):
                out +=
                    "  s\(edge.from) -> s\(edge.to) [style=dashed, color=\"#7c3aed\", fontcolor=\"#6d28d9\", fontsize=10, label=\(Self.dotQuoted(label))];\n"
            }
        }
        out += "}\n"
        return out
    }

    /// A Mermaid flowchart (`flowchart TD`) with a class per status. Label text is written with
    /// Mermaid's entity codes for everything but letters, digits and plain punctuation, so no
    /// label can close its node, start an edge or inject markup.
    public func mermaid() -> String {
        var out = "flowchart TD\n"
        let heading = Self.mermaidTitle(title)
        if !heading.isEmpty { out = "---\ntitle: \(heading)\n---\n" + out }
        for node in nodes {
            let label = node.lines.map(Self.mermaidEscaped).joined(separator: "<br/>")
            out += "  s\(node.index)[\"\(label)\"]\n"
        }
        for edge in edges {
            switch edge.kind {
            case .dependency:
                out += "  s\(edge.from) --> s\(edge.to)\n"
            case .branch(let label):
                out +=
                    label.isEmpty
                    ? "  s\(edge.from) -.-> s\(edge.to)\n" : "  s\(edge.from) -. \"\(Self.mermaidEscaped(label))\" .-> s\(edge.to)\n"
            }
        }
        if showsExecution {
            var used: [StepStatus] = []
            for node in nodes { if let status = node.status, !used.contains(status) { used.append(status) } }
            for status in StepStatus.allCases where used.contains(status) {
                let name = "status_" + status.rawValue.lowercased()
                out += "  classDef \(name) fill:\(StatusColours.fill(status)),stroke:\(StatusColours.outline(status))\n"
                let members = nodes.filter { $0.status == status }.map { "s\($0.index)" }
                out += "  class \(members.joined(separator: ",")) \(name)\n"
            }
        }
        return out
    }

    /// `"text"` with DOT's escapes, so that Graphviz shows it as written: `"` and `\` escaped (a
    /// lone `\` would start one of Graphviz's escapes such as `\N`, the node's name), and `&` as
    /// `&amp;` (Graphviz decodes HTML entities in strings: `&#27;` would become a control
    /// character). Graphviz reads a tooltip's escapes twice, so there a `\` is escaped twice.
    static func dotQuoted(_ text: String, expandedTwice: Bool = false) -> String {
        // Most text needs no escape: it is copied whole.
        guard text.utf8.contains(where: { $0 == 0x5C || $0 == 0x22 || $0 == 0x0A || $0 == 0x26 }) else { return "\"\(text)\"" }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += expandedTwice ? "\\\\\\\\" : "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "&": out += "&amp;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func mermaidEscaped(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", " ", ".", ",", ":", "_", "-", "/", "·", "…":
                out.unicodeScalars.append(scalar)
            default:
                out += "#\(scalar.value);"
            }
        }
        return out
    }

    /// A title for Mermaid's front matter: letters, digits and plain punctuation only (YAML
    /// would read anything else).
    static func mermaidTitle(_ text: String) -> String {
        let kept = text.unicodeScalars.filter {
            $0.properties.isAlphabetic || $0.properties.numericType != nil || " .-_".unicodeScalars.contains($0)
        }
        let words = String(String.UnicodeScalarView(kept)).split(separator: " ").joined(separator: " ")
        // A YAML plain scalar must not start with punctuation (`- x` would be a list).
        return String(words.drop { !$0.isLetter && !$0.isNumber })
    }
}
