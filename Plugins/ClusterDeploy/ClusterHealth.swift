import BudServices
import PluginKit

/// Asks budcluster how a cluster is: `GET cluster/<id>/health?checks=…`.
///
/// A cluster that budcluster does not know (a 4xx answer) fails the step. When budcluster cannot
/// be reached or answers 5xx, the step still completes — with every check unhealthy and status
/// `error` — so that a pipeline can branch on the outcome.
struct ClusterHealth: BudServiceAction {
    static let checks = ["nodes", "api", "storage", "network", "gpu"]

    static let metadata = ActionMetadata(
        type: "cluster_health",
        name: "Cluster Health Check",
        category: "Cluster Operations",
        description: "Checks the health of a cluster's nodes, API server, storage, network and GPUs.",
        icon: "heart-pulse",
        color: "#059669",
        params: [
            ParamDefinition(name: "cluster_id", label: "Cluster", type: .clusterRef, description: "The cluster to check", required: true),
            ParamDefinition(
                name: "checks", label: "Health Checks", type: .multiselect, description: "What to check",
                defaultValue: ["nodes", "api"],
                options: [
                    SelectOption(label: "Nodes", value: "nodes"), SelectOption(label: "API Server", value: "api"),
                    SelectOption(label: "Storage", value: "storage"), SelectOption(label: "Network", value: "network"),
                    SelectOption(label: "GPU", value: "gpu"),
                ]),
            ParamDefinition(
                name: "timeout_seconds", label: "Timeout (seconds)", type: .number, defaultValue: 30,
                validation: ValidationRules(min: 5, max: 300)),
        ],
        outputs: [
            OutputDefinition(name: "healthy", type: "boolean", description: "Whether every check passed"),
            OutputDefinition(
                name: "status", type: "string", description: "healthy, degraded, unknown (no checks) or error (budcluster unreachable)"),
            OutputDefinition(name: "issues", type: "array", description: "Messages of the checks that failed"),
            OutputDefinition(name: "details", type: "object", description: "Each check's result, by check"),
        ],
        timeoutSeconds: 60,
        idempotent: true,
        requiredServices: ["budcluster"],
        examples: [
            ActionExample(title: "Check nodes and GPUs", params: ["cluster_id": "{{ params.cluster_id }}", "checks": ["nodes", "gpu"]])
        ]
    )

    let settings: BudServiceSettings

    func validate(params: JSONObject) -> [String] {
        var problems: [String] = []
        if ParamReading.string(params, "cluster_id") == nil { problems.append("cluster_id is required") }
        switch params["checks"] {
        case nil, .null?: break
        case .array(let items)?:
            if !items.allSatisfy({ $0.stringValue.map(Self.checks.contains) ?? false }) {
                problems.append("checks must be from: \(Self.checks.joined(separator: ", "))")
            }
        default: problems.append("checks must be a list")
        }
        if let problem = ParamReading.boundsProblem(params, "timeout_seconds", 5...300) { problems.append(problem) }
        return problems
    }

    func execute(_ request: ExecuteRequest, context: StepContext) throws -> StepOutcome {
        let problems = validate(params: request.params)
        guard problems.isEmpty else { throw StepFailure(problems.joined(separator: "; ")) }
        let clusterID = ParamReading.string(request.params, "cluster_id") ?? ""
        let checks = request.params["checks"]?.arrayValue?.compactMap(\.stringValue) ?? ["nodes", "api"]
        guard !checks.isEmpty else { return .completed(outputs: ["healthy": true, "status": "unknown", "issues": [], "details": [:]]) }
        let timeout = settings.timeout(seconds: ParamReading.integer(request.params, "timeout_seconds") ?? 30)
        var details = JSONObject()
        var reachable = true
        do throws(BudServiceError) {
            let answer = try context.callBudService(
                settings.budclusterAppID, "GET", ServicePath("cluster", .value(clusterID, name: "cluster_id"), "health"),
                query: ["checks": checks.joined(separator: ",")],
                timeout: timeout)
            let data = answer["data"]?.objectValue ?? [:]
            for check in checks {
                details[check] =
                    data[check].flatMap { $0.objectValue == nil ? nil : $0 } ?? [
                        "healthy": false, "message": .string("\(check) check not available"),
                    ]
            }
        } catch  where !error.isRetryable {
            throw StepFailure("Cluster health check failed: \(error.description)")
        } catch {
            reachable = false
            for check in checks {
                details[check] = ["healthy": false, "message": .string("Failed to check \(check): \(error.description)")]
            }
        }
        let issues = checks.compactMap { check -> JSONValue? in
            guard details[check]?["healthy"] != true else { return nil }
            return details[check]?["message"] ?? .string("\(check) is unhealthy")
        }
        let healthy = issues.isEmpty
        let status = !reachable ? "error" : healthy ? "healthy" : "degraded"
        context.log(healthy ? .info : .warning, "cluster \(clusterID): \(status) (\(checks.joined(separator: ", ")))")
        return .completed(outputs: [
            "healthy": .bool(healthy), "status": .string(status), "issues": .array(issues), "details": .object(details),
        ])
    }
}
