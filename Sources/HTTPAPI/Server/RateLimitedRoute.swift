/// The routes the rate limiter counts, told from a request's method and path alone (the limiter
/// runs before routing). Paths are split on `/` with empty parts dropped, as the router does, so
/// `//executions/` is `/executions`; every alias prefix (none, `/api/v1`, `/budpipeline`) is
/// taken. A path that matches but names no route (a 404) is counted too.
enum RateLimitedRoute: Sendable, Equatable {
    /// `GET` (or `HEAD`) of any path under `executions`: lists, one execution, its progress,
    /// steps, events, stream, graph; and a pipeline's graph (each SVG is a Graphviz process).
    case executionRead
    /// A request that starts an execution: `POST /executions`, `/executions/run`,
    /// `/executions/{id}/retry`, `/budpipeline/{id}/execute`, `/budpipeline/run`,
    /// `/schedules/{id}/trigger`.
    case executionStart
    /// `POST /trigger/{id}` (and `/webhooks/{id}/trigger`): starts an execution without any
    /// authentication, so it is counted against the peer address.
    case webhookTrigger

    /// The budget the route spends.
    var budget: RateLimitBudget.Kind {
        self == .executionRead ? .executionReads : .executionStarts
    }

    /// The limited route `method` and `path` (without query) name; `nil` for any other request.
    init?(method: String, path: Substring) {
        let all = path.split(separator: "/")
        var parts = all[...]
        var proxyNames = false
        if parts.starts(with: ["api", "v1"]) {
            parts = parts.dropFirst(2)
        } else if parts.first == "budpipeline" {
            parts = parts.dropFirst()
            proxyNames = true
        }
        let components = Array(parts)
        switch method {
        case "GET", "HEAD":
            let pipelineGraph = components.count == 3 && components[2] == "graph" && components[0] == "pipelines"
            guard components.first == "executions" || pipelineGraph else { return nil }
            self = .executionRead
        case "POST":
            switch components.count {
            case 1 where components[0] == "executions", 2 where components == ["executions", "run"],
                3 where components[0] == "executions" && components[2] == "retry",
                3 where components[0] == "schedules" && components[2] == "trigger":
                self = .executionStart
            case 1 where proxyNames && components[0] == "run", 2 where proxyNames && components[1] == "execute":
                self = .executionStart
            case 2 where components[0] == "trigger", 3 where components[0] == "webhooks" && components[2] == "trigger":
                self = .webhookTrigger
            default: return nil
            }
        default: return nil
        }
    }
}
