import BudServices
import PluginKit

/// The look-ups a benchmark needs before it starts, each failing the step with a clear message.
struct BenchmarkCalls {
    /// A cluster as budapp and budcluster know it.
    struct Cluster {
        var budappClusterID: String
        var budClusterID: String
    }

    /// Where and how the benchmark runs.
    struct DeviceConfiguration: Equatable {
        var deviceType: String
        var tpSize: Int
        var ppSize: Int
        var replicas: Int
    }

    let settings: BudServiceSettings
    let context: StepContext
    let user: String
    /// The outputs a failure carries.
    let outputs: JSONObject

    private func fail(_ message: String, retryable: Bool = false) -> StepFailure {
        StepFailure(message, outputs: outputs.failed(with: message), retryable: retryable)
    }

    /// Resolves `input` as a budapp cluster id, else as a budcluster id among budapp's clusters.
    func resolveCluster(_ input: String) throws(StepFailure) -> Cluster {
        let budapp = settings.budappAppID
        let cluster: JSONValue
        do throws(BudServiceError) {
            let answer = try context.callBudService(
                budapp, "GET", ServicePath("clusters", .value(input, name: "cluster_id")), query: ["user_id": user],
                timeout: settings.timeout(seconds: 30))
            cluster = answer["cluster"] ?? answer["data"] ?? .null
        } catch  where error.isRetryable {
            throw fail("Failed to fetch cluster info for \(input): \(error.description)", retryable: true)
        } catch {
            cluster = try lookUpByBudClusterID(input)
        }
        guard let budappID = cluster["id"]?.stringValue else { throw fail("Cluster not found: \(input)") }
        guard let budClusterID = cluster["cluster_id"]?.stringValue, !budClusterID.isEmpty else {
            throw fail("Cluster \(budappID) has no associated bud_cluster_id")
        }
        return Cluster(budappClusterID: budappID, budClusterID: budClusterID)
    }

    private func lookUpByBudClusterID(_ input: String) throws(StepFailure) -> JSONValue {
        let answer: JSONValue
        do throws(BudServiceError) {
            answer = try context.callBudService(
                settings.budappAppID, "GET", "clusters/clusters", query: ["limit": "100", "user_id": user],
                timeout: settings.timeout(seconds: 30))
        } catch {
            throw fail("Failed to fetch cluster info for \(input): \(error.description)", retryable: error.isRetryable)
        }
        let clusters = answer["clusters"]?.arrayValue ?? answer["data"]?.arrayValue ?? []
        guard let match = clusters.first(where: { $0["cluster_id"]?.stringValue == input }) else {
            throw fail("Cluster not found: \(input)")
        }
        return match
    }

    /// The cluster's named nodes, in the shape budapp's benchmark workflow takes.
    func nodes(ofCluster budClusterID: String) throws(StepFailure) -> [JSONValue] {
        let answer: JSONValue
        do throws(BudServiceError) {
            answer = try context.callBudService(
                settings.budclusterAppID, "GET", ServicePath("cluster", .value(budClusterID, name: "bud_cluster_id"), "nodes"),
                timeout: settings.timeout(seconds: 30))
        } catch {
            throw fail("Failed to list the nodes of cluster \(budClusterID): \(error.description)", retryable: error.isRetryable)
        }
        let listed = (answer["param"] ?? answer)["nodes"]?.arrayValue ?? []
        let nodes = listed.compactMap { node -> JSONValue? in
            guard let name = node["name"]?.stringValue, !name.isEmpty else { return nil }
            return [
                "hostname": .string(name), "type": node["type"] ?? .null, "total_workers": node["total_workers"] ?? .null,
                "available_workers": node["available_workers"] ?? .null, "hardware_info": node["hardware_info"] ?? .null,
            ]
        }
        guard !nodes.isEmpty else { throw fail("No nodes found for cluster \(budClusterID)") }
        return nodes
    }

    /// The device, parallelism and replicas: the explicit choice when budapp offers it, else the
    /// best option budapp offers; from the nodes' hardware when budapp cannot say.
    func deviceConfiguration(request: ExecuteRequest, budappClusterID: String, nodes: [JSONValue]) throws(StepFailure)
        -> DeviceConfiguration
    {
        let params = request.params
        let body: JSONValue = [
            "model_id": params["model_id"] ?? .null, "cluster_id": .string(budappClusterID),
            "hostnames": .array(nodes.compactMap { $0["hostname"] }), "hardware_mode": params["hardware_mode"] ?? "dedicated",
            "input_tokens": params["max_input_tokens"] ?? 1024, "output_tokens": params["max_output_tokens"] ?? 512,
            "concurrency": params["concurrent_requests"] ?? 1,
        ]
        let devices: [JSONValue]
        do throws(BudServiceError) {
            let answer = try context.callBudService(
                settings.budappAppID, "POST", "benchmark/node-configurations", query: ["user_id": user], body: body,
                timeout: settings.timeout(seconds: 60))
            devices = answer["device_configurations"]?.arrayValue ?? answer["data"]?["device_configurations"]?.arrayValue ?? []
        } catch {
            context.log(.warning, "budapp offered no node configurations, choosing from the nodes' hardware: \(error)")
            return try fallbackConfiguration(params, nodes: nodes)
        }
        guard !devices.isEmpty else { return try fallbackConfiguration(params, nodes: nodes) }
        let types = devices.compactMap { $0["device_type"]?.stringValue }
        let deviceType = try choose(ParamReading.string(params, "selected_device_type"), among: types)
        let options = devices.first { $0["device_type"]?.stringValue == deviceType }?["tp_pp_options"]?.arrayValue ?? []
        let tp = ParamReading.integer(params, "tp_size")
        let pp = ParamReading.integer(params, "pp_size")
        let option: JSONValue?
        if tp != nil || pp != nil {
            option = options.first { (tp == nil || $0["tp_size"]?.intValue == tp) && (pp == nil || $0["pp_size"]?.intValue == pp) }
            guard option != nil else {
                let offered = options.map { "TP \($0["tp_size"]?.intValue ?? 1) × PP \($0["pp_size"]?.intValue ?? 1)" }
                throw fail(
                    "TP \(tp.map(String.init) ?? "any") × PP \(pp.map(String.init) ?? "any") is not possible on \(deviceType); "
                        + "possible: \(offered.isEmpty ? "none" : offered.joined(separator: ", "))")
            }
        } else {
            option = options.first
        }
        return DeviceConfiguration(
            deviceType: deviceType, tpSize: option?["tp_size"]?.intValue ?? tp ?? 1, ppSize: option?["pp_size"]?.intValue ?? pp ?? 1,
            replicas: ParamReading.integer(params, "replicas") ?? option?["max_replicas"]?.intValue ?? 1)
    }

    private func fallbackConfiguration(_ params: JSONObject, nodes: [JSONValue]) throws(StepFailure) -> DeviceConfiguration {
        var types: [String] = []
        for node in nodes {
            for device in node["hardware_info"]?.arrayValue ?? [] where (device["available_count"]?.intValue ?? 0) > 0 {
                if let type = (device["type"] ?? device["device_type"])?.stringValue, !types.contains(type) { types.append(type) }
            }
        }
        guard !types.isEmpty else { throw fail("No available devices found on the cluster's nodes") }
        let deviceType = try choose(ParamReading.string(params, "selected_device_type"), among: types)
        return DeviceConfiguration(deviceType: deviceType, tpSize: 1, ppSize: 1, replicas: 1)
    }

    /// The explicit device type when offered (else a failure naming what is), or the best offered.
    private func choose(_ explicit: String?, among types: [String]) throws(StepFailure) -> String {
        if let explicit {
            guard types.contains(explicit) else {
                throw fail("Device type \(explicit) is not available on this cluster; available: \(types.joined(separator: ", "))")
            }
            return explicit
        }
        guard let chosen = RunModelBenchmark.devicePriority.first(where: types.contains) ?? types.first else {
            throw fail("The cluster reports no device types for this model")
        }
        return chosen
    }
}
