import BudJSON
import BudPipelineHost
public import PipelineEngine

extension ExecutionRuntime {
    /// What the plugins' own parameter checks (`validate_params`) say about `pipeline`'s steps
    /// whose parameters are known without running anything: those without templates. Steps with
    /// templates are checked when they run, with their parameters resolved (see docs/plugins.md,
    /// "validate_params").
    ///
    /// Each message names its step: `Step 'deploy': replicas must be at least 1`. A plugin that
    /// cannot answer (a timeout, a crash, a quarantine) is reported the same way: a pipeline whose
    /// parameters cannot be checked is not accepted as valid. Identical (action, parameters) pairs
    /// are checked once; at most ``RuntimeConfiguration/maximumParameterChecks`` steps are, the
    /// rest are left to run time.
    public func pluginParameterErrors(in pipeline: CompiledPipeline) async -> [String] {
        var seen: [String: [String]] = [:]
        var checks: [(stepID: String, action: String, params: JSONObject, key: String)] = []
        for step in pipeline.stepParameters {
            guard let params = step.literalParams, plugins.action(step.action)?.validatesParams == true else { continue }
            guard checks.count < configuration.maximumParameterChecks else { break }
            let key = step.action + "\u{0}" + JSONValue.object(params).serializedString()
            checks.append((step.stepID, step.action, params, key))
        }
        let timeout = configuration.parameterCheckTimeout
        let plugins = plugins
        // A few at a time: a DAG may have thousands of steps, the plugin threads are shared.
        let unique = Array(Dictionary(checks.map { ($0.key, ($0.action, $0.params)) }, uniquingKeysWith: { first, _ in first }))
        var index = 0
        while index < unique.count {
            let batch = unique[index..<min(index + 8, unique.count)]
            index += batch.count
            await withTaskGroup(of: (String, [String]).self) { group in
                for (key, (action, params)) in batch {
                    group.addTask {
                        // The result is assigned in each branch and returned after them: Swift
                        // 6.3.1's optimiser corrupted a tuple returned from inside the `do` and
                        // the `catch` of a task-group child (the release server crashed on about
                        // one POST /pipelines in ten with a step whose plugin checks parameters).
                        let errors: [String]
                        do throws(PluginCallError) {
                            errors = try await plugins.validateParams(action: action, params: params, timeout: timeout)
                        } catch {
                            errors = ["the action's parameter check could not run: \(error.message)"]
                        }
                        return (key, errors)
                    }
                }
                for await (key, errors) in group { seen[key] = errors }
            }
        }
        return checks.flatMap { check in (seen[check.key] ?? []).map { "Step '\(check.stepID)': \($0)" } }
    }
}
