import BudJSON
import Foundation
import PipelineEngine
import Testing
import _BudPipelineTestSupport

/// The template engine against Jinja2 itself, on thousands of expressions generated from the
/// grammar both share (Tests/Differential/jinja_corpus.py renders them with Jinja2). Where both
/// succeed the text must be the same; where Jinja2 fails BudPipeline must fail too, and the other
/// way round — but for the documented differences (docs/dag.md, "Differences from Jinja2").
@Suite struct TemplateDifferentialTests {
    struct Case: Decodable {
        let template: String
        let result: String?
        let error: String?
    }

    static let scope = TemplateScope([
        "params": [
            "name": "Ada", "count": 3, "ratio": 0.5, "flag": true, "none": nil, "zero": 0, "neg": -7,
            "tags": ["x", "y", "z"], "words": ["beta", "Alpha", "alpha", "Gamma"], "nums": [3, 1, 2, 3],
            "records": [["id": "a", "value": 10], ["id": "B", "value": 20]],
            "text": "Hello, World", "nested": ["deep": ["n": 42, "list": [1, [2, 3]]]], "empty": "", "floats": [0.5, 2.25],
        ]
    ])

    /// Renders `count` expressions of seed `seed` with Jinja2; `nil` when Python or Jinja2 is missing
    /// and the test command did not ask for them (BUDPIPELINE_REQUIRE_JINJA=1).
    static func corpus(seed: Int, count: Int) async throws -> [Case]? {
        let result = try await ProcessRunner.run(
            "/usr/bin/env", ["python3", Repository.path("Tests/Differential/jinja_corpus.py"), String(seed), String(count)])
        guard result.status == 0 else {
            if ProcessInfo.processInfo.environment["BUDPIPELINE_REQUIRE_JINJA"] == "1" {
                Issue.record("jinja_corpus.py failed: \(result.standardError)")
            }
            return nil
        }
        return try result.standardOutput.split(separator: "\n").map { line in
            try JSONDecoder().decode(Case.self, from: Data(line.utf8))
        }
    }

    @Test(arguments: [1, 2, 3, 4])
    func agreesWithJinja(seed: Int) async throws {
        guard let cases = try await Self.corpus(seed: seed, count: 1500) else { return }
        var compared = 0
        var mismatches: [String] = []
        for (index, item) in cases.enumerated() {
            // Share the test threads: thousands of evaluations would hold one for seconds.
            if index % 100 == 0 { await Task.yield() }
            let ours: Result<String, TemplateError>
            do {
                let value = try Template(parsing: item.template).evaluate(in: Self.scope)
                ours = .success(value.stringValue ?? PythonFormat.str(value))
            } catch {
                ours = .failure(error)
            }
            switch (ours, item.result, item.error) {
            case (.success(let text), let jinja?, _):
                compared += 1
                // Documented: an undefined value inside a list is `None`, where Jinja2 keeps an
                // `Undefined` object (and prints its class name).
                if text != jinja && !jinja.contains("Undefined") {
                    mismatches.append("\(item.template)\n    jinja: \(jinja)\n    ours:  \(text)")
                }
            case (.failure, nil, _?):
                compared += 1
            case (.success(let text), nil, let kind?):
                // Documented: an undefined value in an operation empties the whole template where
                // Jinja2 raises.
                if text.isEmpty { continue }
                mismatches.append("\(item.template)\n    jinja: \(kind)\n    ours:  \(text)")
            case (.failure(let error), let jinja?, _):
                // Documented: integers are 64-bit; Python's are not. Complex results are not values.
                if error.message.contains("integer overflow") || jinja.contains("j)|") { continue }
                mismatches.append("\(item.template)\n    jinja: \(jinja)\n    ours:  \(error)")
            default:
                break
            }
        }
        #expect(compared > 1000, "only \(compared) of \(cases.count) expressions compared")
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(cases.count) differ:\n\(mismatches.prefix(15).joined(separator: "\n"))")
    }
}
