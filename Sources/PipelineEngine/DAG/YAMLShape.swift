internal import CYaml

/// How large and deep a YAML document is, read from libyaml's event stream before the document is
/// built. Yams builds documents recursively and expands aliases into copies, so a document nested
/// thousands of levels deep would overflow the stack and a few lines of nested aliases ("billion
/// laughs") would fill memory; this look ahead uses no recursion and counts each alias as the size
/// of what it repeats.
///
/// Yams bundles libyaml as its `CYaml` module; its event API is libyaml's stable C interface.
struct YAMLShape {
    /// Containers open at once, at the most.
    var depth = 0
    /// Nodes once every alias is expanded (saturating at `Int.max`).
    var expandedNodes = 0

    /// Reads the shape of `text`, stopping as soon as it passes `maximumDepth` or
    /// `maximumNodes`. Returns `nil` when libyaml cannot parse the text (the builder reports why).
    static func measure(_ text: String, maximumDepth: Int, maximumNodes: Int) -> YAMLShape? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return nil }
        defer { yaml_parser_delete(&parser) }
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBufferPointer { buffer -> YAMLShape? in
            guard let base = buffer.baseAddress else { return YAMLShape() }
            yaml_parser_set_input_string(&parser, base, buffer.count)
            var shape = YAMLShape()
            // Open containers: their anchor and the nodes in them so far (aliases expanded).
            var open: [(anchor: String?, nodes: Int)] = []
            var anchors: [String: Int] = [:]
            /// Counts `nodes` more in the innermost open container.
            func count(_ nodes: Int) {
                guard !open.isEmpty else { return }
                open[open.count - 1].nodes = open[open.count - 1].nodes.saturatingAdd(nodes)
            }
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
                defer { yaml_event_delete(&event) }
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return shape
                case YAML_SCALAR_EVENT:
                    if let anchor = string(event.data.scalar.anchor) { anchors[anchor] = 1 }
                    count(1)
                    shape.expandedNodes = shape.expandedNodes.saturatingAdd(1)
                case YAML_ALIAS_EVENT:
                    let nodes = string(event.data.alias.anchor).flatMap { anchors[$0] } ?? 1
                    count(nodes)
                    shape.expandedNodes = shape.expandedNodes.saturatingAdd(nodes)
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    let anchor =
                        event.type == YAML_SEQUENCE_START_EVENT
                        ? string(event.data.sequence_start.anchor) : string(event.data.mapping_start.anchor)
                    open.append((anchor, 1))
                    shape.expandedNodes = shape.expandedNodes.saturatingAdd(1)
                    shape.depth = max(shape.depth, open.count)
                    if shape.depth > maximumDepth { return shape }
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    guard let closed = open.popLast() else { return nil }
                    if let anchor = closed.anchor { anchors[anchor] = closed.nodes }
                    count(closed.nodes)
                default:
                    break
                }
                if shape.expandedNodes > maximumNodes { return shape }
            }
        }
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        guard let pointer else { return nil }
        return String(cString: pointer)
    }
}

extension Int {
    fileprivate func saturatingAdd(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}
