import BudJSON
import PipelineEngine
import Testing

/// Hostile templates: each one once stopped the server (a trap, a stack overflow, gigabytes of
/// memory). Each must now end in an error that says what went wrong, or in Python's answer.
@Suite struct TemplateLimitTests {
    static let scope = TemplateScope([
        "params": ["text": "abc", "numbers": .array((0..<20_000).map { .int($0) }), "big": .int(Int.max), "small": .int(Int.min)]
    ])

    private func evaluate(_ text: String, in scope: TemplateScope = Self.scope) throws(TemplateError) -> JSONValue {
        try Template(parsing: text).evaluate(in: scope)
    }

    private func failure(_ text: String, in scope: TemplateScope = Self.scope) -> TemplateError? {
        do {
            _ = try evaluate(text, in: scope)
            return nil
        } catch {
            return error
        }
    }

    // MARK: Arithmetic and filter arguments

    @Test func integerOverflowIsAnErrorNotATrap() {
        for text in [
            "{{ params.big + 1 }}", "{{ params.small - 1 }}", "{{ params.big * 2 }}", "{{ -params.small }}", "{{ params.small // -1 }}",
            "{{ 2 ** 64 }}", "{{ params.small | abs }}", "{{ [params.big, 1] | sum }}",
        ] {
            let error = failure(text)
            #expect(error?.kind == .evaluation, "\(text)")
            #expect(error?.message.contains("integer overflow") == true, "\(text): \(String(describing: error))")
        }
    }

    @Test func extremeDivisionAndModuloFollowPython() throws {
        #expect(try evaluate("{{ params.small % -1 }}") == 0)
        #expect(try evaluate("{{ params.small // 1 }}") == .int(Int.min))
        #expect(try evaluate("{{ params.small is divisibleby(-1) }}") == true)
        #expect(try evaluate("{{ -7 // 2 }} {{ 7 // -2 }} {{ -7 % 3 }} {{ 7 % -3 }}") == "-4 -4 2 -2")
        #expect(failure("{{ 1 // 0 }}")?.message == "integer division or modulo by zero")
        #expect(failure("{{ 0 ** -1 }}")?.message == "0.0 cannot be raised to a negative power")
        #expect(failure("{{ 10.0 ** 400 }}")?.message.contains("out of range") == true)
        #expect(try evaluate("{{ 2 ** -1 }}") == 0.5)
    }

    @Test func filterArgumentsAreChecked() throws {
        // As in Jinja: a base Python refuses makes `int` read the text as a number, no base at all.
        #expect(try evaluate(#"{{ "10" | int(0, 1) }}"#) == 10)
        #expect(try evaluate(#"{{ "12.7" | int(0, 37) }}"#) == 12)
        #expect(try evaluate(#"{{ "zz" | int(5, 1) }}"#) == 5)
        #expect(try evaluate(#"{{ "ff" | int(0, 16) }}"#) == 255)
        #expect(try evaluate(#"{{ "0x1f" | int(0, 0) }}"#) == 31)
        #expect(try evaluate(#"{{ "-0b101" | int(0, 2) }}"#) == -5)
        #expect(try evaluate(#"{{ "99999999999999999999" | int(7) }}"#) == 7)
        #expect(try evaluate(#"{{ "-9223372036854775808" | int }}"#) == .int(Int.min))
        #expect(try evaluate(#"{{ 1e300 | int(3) }}"#) == 3)
        #expect(try evaluate("{{ [1, [2]] | tojson(-4) }}") == "[\n1,\n[\n2\n]\n]")
        #expect(try evaluate("{{ params.big | tojson }}") == "9223372036854775807")
        #expect(try evaluate("{{ 1.25 | round(1000) }}") == 1.25)
        #expect(try evaluate("{{ 1.25 | round(-1000) }}") == 0.0)
        #expect(try evaluate("{{ 1e308 | round(5) }}") == 1e308)
        #expect(try evaluate("{{ 'abc' | replace('', '-') }}") == "-a-b-c-")
        #expect(try evaluate("{{ 'aaa' | replace('a', 'b', 2) }}") == "bba")
        #expect(failure("{{ 'aaa' | replace('a', 'b', 'x') }}")?.message == "filter 'replace': count must be an integer")
    }

    // MARK: Nesting

    @Test(arguments: [
        ("(", ")"), ("[", "]"), ("{'k': ", "}"), ("-", ""), ("not ", ""), ("+", ""),
    ])
    func deepNestingIsRefusedWithThePosition(opening: String, closing: String) {
        let depth = 12_000
        let text = "{{ " + String(repeating: opening, count: depth) + "1" + String(repeating: closing, count: depth) + " }}"
        #expect(throws: TemplateError.self) { try Template(parsing: text) }
        do {
            _ = try Template(parsing: text)
        } catch {
            #expect(error.kind == .syntax)
            #expect(error.message.contains("nests deeper than \(TemplateLimits.maximumNestingDepth) levels"), "\(error)")
            #expect(error.position > 0 && error.position < 12 * TemplateLimits.maximumNestingDepth, "\(error)")
        }
    }

    @Test(arguments: [" + 1", " ~ 'a'", " | upper", ".key", "[0]", " ** 2", " or 1", " and 1", " if 1 else 1"])
    func longChainsAreRefused(link: String) {
        let text = "{{ params.text" + String(repeating: link, count: 50_000) + " }}"
        do {
            _ = try Template(parsing: text)
            Issue.record("a chain of 50,000 '\(link)' parsed")
        } catch {
            #expect(error.message.contains("nests deeper"), "\(error)")
        }
    }

    @Test func aLongComparisonChainIsFlatAndEvaluates() throws {
        #expect(try evaluate("{{ 1" + String(repeating: " == 1", count: 50_000) + " }}") == true)
    }

    @Test func nestingWithinTheLimitWorks() throws {
        let depth = TemplateLimits.maximumNestingDepth - 2
        let text = "{{ " + String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth) + " | length }}"
        #expect(try evaluate(text) == 1)
        #expect(try evaluate("{{ " + String(repeating: "1 + ", count: 40) + "1 }}") == 41)
    }

    @Test func anIndexTooLargeIsASyntaxError() {
        let error = #expect(throws: TemplateError.self) { try Template(parsing: "{{ params.99999999999999999999999 }}") }
        #expect(error?.message.contains("too large") == true)
    }

    // MARK: Size and work

    @Test func repetitionBeyondTheValueLimitFailsBeforeAllocating() {
        let error = failure("{{ 'a' * 200000000 }}")
        #expect(error?.kind == .limit)
        #expect(error?.message.contains("200000000 bytes") == true, "\(String(describing: error))")
        #expect(error?.message.contains("BUDPIPELINE_TEMPLATE_MAX_VALUE_BYTES") == true)
        #expect(failure("{{ 'ab' * 9223372036854775807 }}")?.kind == .limit)
        #expect(failure("{{ [1, 2] * 1000000000 }}")?.kind == .limit)
        #expect(failure("{{ [[1, 2] * 100000] * 100000 }}")?.kind == .limit)
    }

    @Test func growthThroughOtherOperatorsIsBounded() {
        let big = "('a' * 600000)"
        for text in [
            "{{ \(big) ~ \(big) }}", "{{ \(big) + \(big) }}", "x{{ \(big) }}{{ \(big) }}", "{{ [\(big), \(big)] }}",
            "{{ [\(big), \(big)] | join }}", "{{ \(big) | replace('a', 'aa') }}", "{{ [1] | tojson(100000000) }}",
            "{{ {'a': \(big), 'b': \(big)} }}", "{{ ([[1, 2, 3]] * 150000) | string }}",
        ] {
            #expect(failure(text)?.kind == .limit, "\(text.prefix(60))")
        }
    }

    @Test func quadraticWorkRunsOutOfOperations() {
        let error = failure("{{ params.numbers | unique | length }}")
        #expect(error?.kind == .limit)
        #expect(error?.message.contains("BUDPIPELINE_TEMPLATE_MAX_OPERATIONS") == true)
    }

    @Test func limitsAreConfigurable() throws {
        let small = TemplateScope(Self.scope.variables, limits: TemplateLimits(maximumValueBytes: 10, maximumOperations: 1000))
        #expect(try evaluate("{{ 'a' * 8 }}", in: small) == "aaaaaaaa", "10 bytes of JSON text")
        #expect(failure("{{ 'a' * 9 }}", in: small)?.kind == .limit)
        #expect(failure("{{ params.numbers | sort | length }}", in: small)?.kind == .limit)
        #expect(failure("{{ params.numbers }}", in: small)?.kind == .limit, "passing a value through counts too")
    }

    @Test func valuesNestedDeeperThanStoredJSONMayAreRefused() throws {
        var deep = JSONValue.int(1)
        for _ in 0..<(JSONValue.maximumNestingDepth - 2) { deep = .array([deep]) }
        let scope = TemplateScope(["params": ["deep": deep]])
        #expect(try evaluate("{{ [params.deep] | length }}", in: scope) == 1)
        let error = failure("{{ [[[params.deep]]] }}", in: scope)
        #expect(error?.kind == .limit)
        #expect(error?.message.contains("nested deeper than 512") == true, "\(String(describing: error))")
    }

    @Test func conditionsFailOnLimitsInsteadOfTrapping() throws {
        let condition = try Condition("{{ ('a' * 300000000) | length > 0 }}")
        #expect(throws: TemplateError.self) { try condition.evaluate(in: Self.scope) }
    }
}
