import BudJSON

/// The records the simulated services know from the start: one model, one project, one cluster
/// with a GPU node. Their ids are fixed so that examples and tests can name them.
public enum SimulatorFixtures {
    public static let modelID = "0d2a5b4e-1c3f-4a6b-9d8e-7f6a5b4c3d2e"
    public static let modelName = "Llama-3.2-1B"
    public static let projectID = "5e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"
    /// The cluster's id in budapp (what users pass as `cluster_id`).
    public static let clusterID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    /// The same cluster's id in budcluster.
    public static let budClusterID = "9b2f3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"

    static let model: JSONValue = [
        "id": .string(modelID), "name": .string(modelName), "provider_type": "hugging_face", "local_path": "meta-llama/Llama-3.2-1B",
        "uri": "meta-llama/Llama-3.2-1B", "supported_endpoints": ["chat": ["enabled": true], "embedding": ["enabled": false]],
    ]

    static let cluster: JSONValue = [
        "id": .string(clusterID), "cluster_id": .string(budClusterID), "name": "gpu-cluster-1", "status": "available",
    ]

    static let nodes: JSONValue = [
        [
            "name": "gpu-node-1", "type": "cuda", "total_workers": 4, "available_workers": 4,
            "hardware_info": [["type": "cuda", "available_count": 4, "product_name": "NVIDIA A100"]],
        ],
        [
            "name": "cpu-node-1", "type": "cpu", "total_workers": 8, "available_workers": 8,
            "hardware_info": [["type": "cpu", "available_count": 8]],
        ],
    ]

    static let deviceConfigurations: JSONValue = [
        [
            "device_type": "cuda",
            "tp_pp_options": [["tp_size": 1, "pp_size": 1, "max_replicas": 4], ["tp_size": 2, "pp_size": 1, "max_replicas": 2]],
        ],
        ["device_type": "cpu", "tp_pp_options": [["tp_size": 1, "pp_size": 1, "max_replicas": 8]]],
    ]

    static let recommendation: JSONValue = [
        "device_type": "cuda", "tp_size": 1, "pp_size": 1, "replicas": 1, "tool_calling_parser_type": "llama3_json",
        "reasoning_parser_type": nil, "chat_template": nil, "supports_lora": true, "supports_pipeline_parallelism": false,
    ]

    static let benchmarkResult: JSONObject = [
        "throughput_tokens_per_sec": 1843.5, "ttft_ms_p50": 42.0, "ttft_ms_p95": 88.0, "e2e_latency_s_p95": 6.4,
        "successful_requests": 10, "failed_requests": 0,
    ]
}
