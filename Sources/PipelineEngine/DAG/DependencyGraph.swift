/// The steps of a pipeline as a graph, by index in definition order.
///
/// Built from a definition whose dependencies name existing steps (the parser checks that).
public struct DependencyGraph: Sendable {
    /// Step ids in definition order.
    public let ids: [String]
    /// For each step, the indices of the steps it depends on.
    public let dependencies: [[Int]]
    /// For each step, the indices of the steps that depend on it.
    public let dependants: [[Int]]
    private let indexByID: [String: Int]

    public init(_ steps: [PipelineStep]) {
        ids = steps.map(\.id)
        var indexByID: [String: Int] = [:]
        for (index, id) in ids.enumerated() where indexByID[id] == nil { indexByID[id] = index }
        var dependencies = Array(repeating: [Int](), count: steps.count)
        var dependants = Array(repeating: [Int](), count: steps.count)
        for (index, step) in steps.enumerated() {
            var seen: Set<Int> = []
            for dependency in step.dependsOn {
                guard let dependencyIndex = indexByID[dependency], seen.insert(dependencyIndex).inserted else { continue }
                dependencies[index].append(dependencyIndex)
                dependants[dependencyIndex].append(index)
            }
        }
        self.indexByID = indexByID
        self.dependencies = dependencies
        self.dependants = dependants
    }

    public func index(of id: String) -> Int? {
        indexByID[id]
    }

    /// A cycle as step ids, first id repeated at the end (`a -> b -> a`), or `nil` when acyclic.
    public func cycle() -> [String]? {
        enum Mark { case unvisited, inProgress, done }
        var marks = Array(repeating: Mark.unvisited, count: ids.count)
        var path: [Int] = []
        for start in ids.indices where marks[start] == .unvisited {
            // Iterative depth-first search over dependencies; a back edge closes a cycle.
            var stack: [(node: Int, next: Int)] = [(start, 0)]
            marks[start] = .inProgress
            path = [start]
            while let top = stack.last {
                let edges = dependencies[top.node]
                if top.next < edges.count {
                    stack[stack.count - 1].next += 1
                    let target = edges[top.next]
                    switch marks[target] {
                    case .inProgress:
                        let cycleStart = path.firstIndex(of: target) ?? 0
                        return (path[cycleStart...] + [target]).reversed().map { ids[$0] }
                    case .unvisited:
                        marks[target] = .inProgress
                        path.append(target)
                        stack.append((target, 0))
                    case .done:
                        continue
                    }
                } else {
                    marks[top.node] = .done
                    path.removeLast()
                    stack.removeLast()
                }
            }
        }
        return nil
    }

    /// Steps in batches: the first has no dependencies, each next one depends only on earlier
    /// batches; within a batch, definition order. `nil` when the graph has a cycle.
    public func batches() -> [[Int]]? {
        var remaining = dependencies.map(\.count)
        var current = ids.indices.filter { remaining[$0] == 0 }
        var batches: [[Int]] = []
        var placed = 0
        while !current.isEmpty {
            batches.append(current)
            placed += current.count
            var next: [Int] = []
            for node in current {
                for dependant in dependants[node] {
                    remaining[dependant] -= 1
                    if remaining[dependant] == 0 { next.append(dependant) }
                }
            }
            current = next.sorted()
        }
        return placed == ids.count ? batches : nil
    }

    /// Whether `ancestor` is reachable from `node` through dependencies. Searches only as far as
    /// needed: a direct dependency answers at once.
    public func dependsTransitively(_ node: Int, on ancestor: Int) -> Bool {
        var visited: Set<Int> = [node]
        var frontier = dependencies[node]
        while let next = frontier.popLast() {
            if next == ancestor { return true }
            if visited.insert(next).inserted { frontier += dependencies[next] }
        }
        return false
    }
}
