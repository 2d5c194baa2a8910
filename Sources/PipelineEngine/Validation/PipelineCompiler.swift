public import BudJSON
import PluginSchema

/// What `POST /validate` answers: errors make a DAG invalid, warnings do not.
public struct ValidationReport: Sendable, Equatable {
    public var errors: [String]
    public var warnings: [String]
    /// The number of steps, when the DAG is valid; 0 otherwise.
    public var stepCount: Int

    public init(errors: [String], warnings: [String], stepCount: Int) {
        self.errors = errors
        self.warnings = warnings
        self.stepCount = stepCount
    }

    public var valid: Bool { errors.isEmpty }

    /// Whether the DAG is invalid because of a dependency cycle: an error contains "cycl", which the
    /// cycle message ("Cyclic dependency detected: a -> b -> a") does and a search for "cycle" would miss.
    public var hasCycles: Bool { !valid && errors.contains { $0.lowercased().contains("cycl") } }

    /// The response body: `{"valid", "errors", "warnings", "step_count", "has_cycles"}`.
    public var json: JSONValue {
        [
            "valid": .bool(valid), "errors": .array(errors.map(JSONValue.string)), "warnings": .array(warnings.map(JSONValue.string)),
            "step_count": .int(stepCount), "has_cycles": .bool(hasCycles),
        ]
    }
}

/// A validated pipeline with every template parsed, ready to run many times.
public struct CompiledPipeline: Sendable {
    public let definition: PipelineDefinition
    public let graph: DependencyGraph
    let steps: [CompiledStep]
    let outputs: [(name: String, value: CompiledValue)]
}

extension CompiledPipeline {
    /// Each step's id and action and, when its parameters hold no template, the parameters the
    /// step will be given: as written, with the action's defaults for those not written (as when
    /// it runs); `nil` when a template makes them known only when the step runs. In DAG order.
    public var stepParameters: [(stepID: String, action: String, literalParams: JSONObject?)] {
        steps.map { step in
            guard case .constant(let value) = step.params else { return (step.definition.id, step.definition.action, nil) }
            var params = value.objectValue ?? [:]
            for definition in step.metadata?.params ?? [] where params[definition.name] == nil {
                if let defaultValue = definition.defaultValue { params[definition.name] = defaultValue }
            }
            return (step.definition.id, step.definition.action, params)
        }
    }

    /// Whether step `stepID`'s parameters hold a template.
    public func hasTemplatedParams(_ stepID: String) -> Bool {
        guard let index = graph.index(of: stepID), steps.indices.contains(index) else { return false }
        return !steps[index].params.isConstant
    }
}

/// One step, compiled.
struct CompiledStep: Sendable {
    let definition: PipelineStep
    let index: Int
    let params: CompiledValue
    let condition: Condition
    /// `nil` when the action is not registered.
    let metadata: ActionMetadata?
    /// Steps whose outputs or status the step's templates read.
    let readsSteps: [Int]
    /// The branches of a `conditional` step, evaluated by the action itself.
    let branches: [CompiledBranch]?
    let retry: CompiledRetry?

    var id: String { definition.id }
}

struct CompiledBranch: Sendable {
    let id: String
    let label: String?
    let target: String?
    let condition: Condition
}

struct CompiledRetry: Sendable {
    let maxAttempts: CompiledNumber
    let backoffSeconds: CompiledNumber
    let backoffMultiplier: CompiledNumber
    let maxBackoffSeconds: CompiledNumber
}

enum CompiledNumber: Sendable {
    case number(Double)
    case template(Template, source: String)
}

/// Validates pipeline documents with the semantics of `POST /validate` and compiles valid ones.
public enum PipelineCompiler {
    /// Validates and compiles a DAG document. The pipeline is `nil` when the report has errors.
    public static func compile(_ document: JSONValue, catalog: some ActionCatalog) -> (
        report: ValidationReport, pipeline: CompiledPipeline?
    ) {
        switch PipelineParser.parse(document) {
        case .failure(let failure):
            return (ValidationReport(errors: failure.errors, warnings: [], stepCount: 0), nil)
        case .success(let definition):
            return compile(definition, catalog: catalog)
        }
    }

    /// Validates and compiles a parsed definition.
    public static func compile(
        _ definition: PipelineDefinition,
        catalog: some ActionCatalog
    ) -> (report: ValidationReport, pipeline: CompiledPipeline?) {
        var compilation = Compilation(definition: definition, catalog: catalog)
        let pipeline = compilation.run()
        let report = ValidationReport(
            errors: compilation.errors.ordered,
            warnings: compilation.warnings.ordered,
            stepCount: compilation.errors.ordered.isEmpty ? definition.steps.count : 0
        )
        return (report, report.valid ? pipeline : nil)
    }

    /// Compiles a definition an execution already started with, to continue it. Problems that
    /// depend on the current action catalog (a plugin upgraded or removed since) do not prevent
    /// it: such a step fails when it runs. `nil` only for a definition that cannot run at all
    /// (a dependency cycle).
    public static func compileForResume(_ definition: PipelineDefinition, catalog: some ActionCatalog) -> CompiledPipeline? {
        var compilation = Compilation(definition: definition, catalog: catalog)
        guard compilation.isAcyclic else { return nil }
        return compilation.run()
    }

    /// Parameter names templates may read without declaring them: the API adds `user_id` to the
    /// parameters of every execution started with a user.
    static let implicitParameters: Set<String> = ["user_id"]
}

/// Messages in first-seen order without repeats.
private struct MessageList {
    private(set) var ordered: [String] = []
    private var seen: Set<String> = []

    mutating func add(_ message: String) {
        if seen.insert(message).inserted { ordered.append(message) }
    }
}

private struct Compilation<Catalog: ActionCatalog> {
    let definition: PipelineDefinition
    let catalog: Catalog
    let graph: DependencyGraph
    /// Whether the dependencies form no cycle (the ancestry checks need that).
    let isAcyclic: Bool
    var errors = MessageList()
    var warnings = MessageList()

    init(definition: PipelineDefinition, catalog: Catalog) {
        self.definition = definition
        self.catalog = catalog
        graph = DependencyGraph(definition.steps)
        let cycle = graph.cycle()
        isAcyclic = cycle == nil
        if let cycle { errors.add("Cyclic dependency detected: \(cycle.joined(separator: " -> "))") }
    }

    mutating func run() -> CompiledPipeline {
        checkParameters()
        var steps: [CompiledStep] = []
        for (index, step) in definition.steps.enumerated() {
            steps.append(compileStep(step, index: index))
        }
        let outputs = definition.outputs.compactMap { output -> (name: String, value: CompiledValue)? in
            compileOutput(output.name, output.template)
        }
        return CompiledPipeline(definition: definition, graph: graph, steps: steps, outputs: outputs)
    }

    private mutating func checkParameters() {
        for (index, parameter) in definition.parameters.enumerated() {
            guard let type = parameter.type else { continue }
            if !ParameterBinding.checkedTypes.contains(type.lowercased()) {
                warnings.add("Parameter '\(parameter.name)' has unknown type '\(type)'; its values are not checked")
            }
            if let value = parameter.defaultValue, let problem = ParameterBinding.typeProblem(value, type: type) {
                errors.add("parameters.\(index).default: Value error, the default of parameter '\(parameter.name)' \(problem)")
            }
        }
    }

    private mutating func compileStep(_ step: PipelineStep, index: Int) -> CompiledStep {
        let metadata = catalog.metadata(for: step.action)
        let isConditional = step.action == BuiltInActions.conditionalType
        var references: [(field: String, reference: VariableReference)] = []

        var paramsValue = JSONValue.object(step.params)
        var branches: [CompiledBranch]?
        if isConditional, case .array(let rawBranches)? = step.params["branches"] {
            branches = compileBranches(rawBranches, step: step, references: &references)
            var withoutBranches = step.params
            withoutBranches["branches"] = nil
            paramsValue = .object(withoutBranches)
        }
        let params = compileValue(paramsValue, field: "params", step: step)
        references += params.references(path: "params")

        let condition: Condition
        do {
            condition = try Condition(step.condition)
            references += condition.template?.references.map { ("condition", $0) } ?? []
        } catch {
            errors.add(syntaxMessage(step: step, field: "condition", error))
            condition = .always
        }

        let retry = step.retry.map { compileRetry($0, step: step, references: &references) }
        let readsSteps = checkReferences(references, step: step, index: index)

        if let metadata {
            var literalParams = step.params
            if isConditional { literalParams["branches"] = nil }
            for problem in ActionParameterCheck.problems(literalParams, metadata: metadata) {
                if problem.isReferenceCheck {
                    errors.add(problem.dagMessage(stepID: step.id))
                } else {
                    warnings.add(problem.dagMessage(stepID: step.id))
                }
            }
        } else {
            warnings.add("Action '\(step.action)' is not registered")
        }
        if let branches { checkBranchTargets(branches, step: step, index: index) }
        return CompiledStep(
            definition: step,
            index: index,
            params: params,
            condition: condition,
            metadata: metadata,
            readsSteps: readsSteps,
            branches: branches,
            retry: retry
        )
    }

    private mutating func compileValue(_ value: JSONValue, field: String, step: PipelineStep) -> CompiledValue {
        do {
            return try CompiledValue.compile(value, path: field)
        } catch {
            errors.add(
                "Step '\(step.id)' \(error.field): template syntax error: \(error.error.message) at position \(error.error.position)")
            return .constant(value)
        }
    }

    private func syntaxMessage(step: PipelineStep, field: String, _ error: TemplateError) -> String {
        "Step '\(step.id)' \(field): template syntax error: \(error.message) at position \(error.position)"
    }

    private mutating func compileBranches(
        _ rawBranches: [JSONValue],
        step: PipelineStep,
        references: inout [(field: String, reference: VariableReference)]
    ) -> [CompiledBranch] {
        var branches: [CompiledBranch] = []
        for (index, raw) in rawBranches.enumerated() {
            guard case .object(let branch) = raw else {
                errors.add("Step '\(step.id)': Branch \(index) must be a dictionary")
                continue
            }
            guard let id = branch["id"].map(PythonFormat.str) else {
                errors.add("Step '\(step.id)': Branch \(index) missing 'id' field")
                continue
            }
            guard let conditionValue = branch["condition"] else {
                errors.add("Step '\(step.id)': Branch \(index) missing 'condition' field")
                continue
            }
            let field = "params.branches[\(index)].condition"
            let text: String? = conditionValue.isNull ? nil : (conditionValue.stringValue ?? PythonFormat.str(conditionValue))
            do {
                let condition = try Condition(text)
                references += condition.template?.references.map { (field, $0) } ?? []
                branches.append(
                    CompiledBranch(
                        id: id,
                        label: branch["label"].flatMap { $0.isNull ? nil : PythonFormat.str($0) },
                        target: branch["target_step"].flatMap { $0.isNull ? nil : PythonFormat.str($0) },
                        condition: condition
                    )
                )
            } catch {
                errors.add(syntaxMessage(step: step, field: field, error))
            }
        }
        return branches
    }

    private mutating func checkBranchTargets(_ branches: [CompiledBranch], step: PipelineStep, index: Int) {
        for branch in branches {
            guard let target = branch.target else { continue }
            guard let targetIndex = graph.index(of: target) else {
                errors.add("Step '\(step.id)': branch '\(branch.id)' targets unknown step '\(target)'")
                continue
            }
            if isAcyclic, !graph.dependsTransitively(targetIndex, on: index) {
                warnings.add(
                    "Step '\(step.id)': branch '\(branch.id)' targets step '\(target)', which does not depend on '\(step.id)'; it may run before the branch is chosen"
                )
            }
        }
    }

    private mutating func compileRetry(
        _ retry: StepRetry,
        step: PipelineStep,
        references: inout [(field: String, reference: VariableReference)]
    ) -> CompiledRetry {
        func number(_ value: TemplatedNumber, _ name: String) -> CompiledNumber {
            switch value {
            case .number(let number):
                return .number(number)
            case .template(let text):
                do {
                    let template = try Template(parsing: text)
                    references += template.references.map { ("retry.\(name)", $0) }
                    return .template(template, source: text)
                } catch {
                    errors.add(syntaxMessage(step: step, field: "retry.\(name)", error))
                    return .number(1)
                }
            }
        }
        return CompiledRetry(
            maxAttempts: number(retry.maxAttempts, "max_attempts"),
            backoffSeconds: number(retry.backoffSeconds, "backoff_seconds"),
            backoffMultiplier: number(retry.backoffMultiplier, "backoff_multiplier"),
            maxBackoffSeconds: number(retry.maxBackoffSeconds, "max_backoff_seconds")
        )
    }

    /// Checks what the step's templates read; returns the steps they read, by index.
    private mutating func checkReferences(
        _ references: [(field: String, reference: VariableReference)],
        step: PipelineStep,
        index: Int
    ) -> [Int] {
        var reads: Set<Int> = []
        let declared = Set(definition.parameters.map(\.name))
        for (field, reference) in references {
            switch reference.root {
            case "params":
                if let name = reference.path.first, !declared.contains(name), !PipelineCompiler.implicitParameters.contains(name) {
                    errors.add("Unknown parameter: \(name)")
                }
            case "steps":
                guard let id = reference.path.first else {
                    reads.formUnion(graph.ids.indices)
                    continue
                }
                guard let target = graph.index(of: id) else {
                    errors.add("Unknown step: \(id)")
                    continue
                }
                reads.insert(target)
                if isAcyclic, !graph.dependsTransitively(index, on: target) {
                    warnings.add(
                        "Step '\(step.id)' \(field) reads step '\(id)', which it does not depend on; its outputs may not exist yet"
                    )
                }
            default:
                warnings.add(
                    "Step '\(step.id)' \(field): '\(reference.root)' is not defined (templates can read 'params' and 'steps'); it renders as empty"
                )
            }
        }
        return reads.sorted()
    }

    private mutating func compileOutput(_ name: String, _ template: String) -> (name: String, value: CompiledValue)? {
        let compiled: CompiledValue
        do {
            compiled = try CompiledValue.compile(.string(template), path: "outputs.\(name)")
        } catch {
            errors.add("outputs.\(name): template syntax error: \(error.error.message) at position \(error.error.position)")
            return nil
        }
        for (_, reference) in compiled.references(path: "outputs.\(name)") where reference.root == "steps" {
            if let id = reference.path.first, graph.index(of: id) == nil {
                warnings.add("outputs.\(name): Unknown step: \(id)")
            }
        }
        return (name, compiled)
    }
}
