import BudJSON
import PipelineEngine
import Testing

@Suite struct TemplateTests {
    static let scope = TemplateScope([
        "params": [
            "name": "Ada", "count": 3, "ratio": 0.5, "flag": true, "empty": "", "zero": 0, "none": nil,
            "items": [["id": "a", "value": 10], ["id": "b", "value": 20]], "tags": ["x", "y", "z"],
            "config": ["items": "key wins", "nested": ["deep": 42]], "digits": "123", "quote": "it's",
        ],
        "steps": [
            "fetch": ["outputs": ["url": "https://x", "status": 200, "body": ["ok": true]], "status": "COMPLETED"],
            "skipped": ["status": "SKIPPED"],
        ],
    ])

    private func evaluate(_ text: String) throws -> JSONValue {
        try Template(parsing: text).evaluate(in: Self.scope)
    }

    @Test func substitutesParametersAndStepOutputs() throws {
        #expect(try evaluate("Hello {{ params.name }}!") == "Hello Ada!")
        #expect(try evaluate("{{ steps.fetch.outputs.url }}/v1") == "https://x/v1")
        #expect(try evaluate("{{params.config.nested.deep}}") == 42)
        #expect(try evaluate("{{ params['name'] }}") == "Ada")
        #expect(try evaluate("{{ params.items[1].id }}") == "b")
        #expect(try evaluate("{{ params.tags[-1] }}") == "z")
        #expect(try evaluate("{{ params.items.0.value }}") == 10)
    }

    @Test func aWholeTemplateKeepsItsNativeType() throws {
        #expect(try evaluate("{{ params.count }}") == .int(3))
        #expect(try evaluate("  {{ params.flag }} ") == .bool(true))
        #expect(try evaluate("{{ params.items }}") == [["id": "a", "value": 10], ["id": "b", "value": 20]])
        #expect(try evaluate("{{ steps.fetch.outputs.body }}") == ["ok": true])
        #expect(try evaluate("{{ params.none }}") == .null)
        #expect(try evaluate("{{ params.count * 2 }}") == .int(6))
        #expect(try evaluate("{{ params.count > 2 }}") == .bool(true))
        #expect(try evaluate("{{ params.missing | default(5) }}") == .int(5))
        #expect(try evaluate("{{ params.missing | default([]) }}") == [])
        #expect(try evaluate("{{ params.missing | default({'a': 1}) }}") == ["a": 1])
    }

    @Test func mixedTextRendersLikePython() throws {
        #expect(
            try evaluate("n={{ params.count }} r={{ params.ratio }} f={{ params.flag }} z={{ params.none }}") == "n=3 r=0.5 f=True z=None")
        #expect(try evaluate("items: {{ params.tags }}") == "items: ['x', 'y', 'z']")
        #expect(try evaluate("{{ params.config.nested }}!") == "{'deep': 42}!")
        #expect(try evaluate("q={{ [params.quote] }}") == "q=[\"it's\"]")
        #expect(try evaluate("{{ 1.0 }} {{ 10 / 4 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }}") == "1.0 2.5 3 -4 2 1024")
    }

    @Test func undefinedValuesRenderAsNothingAndChain() throws {
        #expect(try evaluate("[{{ params.missing }}]") == "[]")
        #expect(try evaluate("{{ params.missing }}") == "")
        #expect(try evaluate("{{ steps.missing.outputs.x | default('y') }}") == "y")
        #expect(try evaluate("{{ steps.skipped.outputs.result | default('none') }}") == "none")
        #expect(try evaluate("{{ params.missing + 1 }} and text") == "", "an undefined operand empties the whole template")
        #expect(try evaluate("{{ steps.fetch.outputs.url is defined }}") == true)
        #expect(try evaluate("{{ steps.skipped.outputs is defined }}") == false)
        #expect(try evaluate("{{ params.missing is not defined }}") == true)
    }

    @Test func keysWinOverMethodNames() throws {
        #expect(try evaluate("{{ params.config.items }}") == "key wins")
    }

    @Test func filters() throws {
        #expect(try evaluate("{{ params.name | upper }}") == "ADA")
        #expect(try evaluate("{{ params.name | lower | upper | length }}") == 3)
        #expect(try evaluate("{{ params.tags | first }}{{ params.tags | last }}") == "xz")
        #expect(try evaluate("{{ params.tags | join(', ') }}") == "x, y, z")
        #expect(try evaluate("{{ params.items | join('-', attribute='id') }}") == "a-b")
        #expect(try evaluate("{{ params.digits | int + 1 }}") == 124)
        #expect(try evaluate("{{ '3.9' | int }} {{ 'x' | int(7) }} {{ '2.5' | float }} {{ 'x' | float }}") == "3 7 2.5 0.0")
        #expect(try evaluate("{{ params.count | string }}") == "3")
        #expect(try evaluate("{{ params.items | tojson }}") == #"[{"id": "a", "value": 10}, {"id": "b", "value": 20}]"#)
        #expect(try evaluate("{{ {'b': '<&>', 'a': 'é'} | tojson }}") == #"{"a": "\u00e9", "b": "\u003c\u0026\u003e"}"#)
        #expect(try evaluate("{{ params.empty | default('x', true) }}|{{ params.empty | default('x') }}") == "x|")
        #expect(
            try evaluate("{{ '  hi ' | trim }}|{{ 'a-b-c' | replace('-', '+') }}|{{ 'hello world' | title }}") == "hi|a+b+c|Hello World")
        #expect(
            try evaluate("{{ [3, 1, 2] | sort }} {{ [3, 1, 2] | sort(reverse=true) }} {{ [1, 1, 2] | unique }}")
                == "[1, 2, 3] [3, 2, 1] [1, 2]")
        #expect(try evaluate("{{ [3, 1, 2] | min }}{{ [3, 1, 2] | max }}{{ [3, 1, 2] | sum }}{{ -2.5 | abs }}") == "1362.5")
        #expect(try evaluate("{{ 2.5 | round }} {{ 3.14159 | round(2) }} {{ 2.1 | round(method='ceil') }}") == "2.0 3.14 3.0")
        #expect(try evaluate("{{ 'abc' | reverse }} {{ 'ab' | list }}") == "cba ['a', 'b']")
        #expect(try evaluate("{{ params.missing | length }}") == 0)
    }

    @Test func logicAndComparisons() throws {
        #expect(try evaluate("{{ params.flag and params.count > 2 }}") == true)
        #expect(try evaluate("{{ params.empty or 'fallback' }}") == "fallback")
        #expect(try evaluate("{{ not params.flag }}") == false)
        #expect(
            try evaluate("{{ 'y' in params.tags }} {{ 'q' not in params.tags }} {{ 'da' in params.name }} {{ 'name' in params }}")
                == "True True True True")
        #expect(try evaluate("{{ 1 < params.count <= 3 }}") == true)
        #expect(try evaluate("{{ params.count == 3.0 }} {{ params.flag == 1 }} {{ params.name != 'Bo' }}") == "True True True")
        #expect(try evaluate("{{ 'yes' if params.flag else 'no' }}") == "yes")
        #expect(try evaluate("{{ 'yes' if params.zero else 'no' }}") == "no")
        #expect(try evaluate("{{ 'a' ~ params.count ~ params.missing }}") == "a3")
        #expect(
            try evaluate("{{ params.none is none }} {{ params.count is number }} {{ params.count is odd }} {{ 9 is divisibleby 3 }}")
                == "True True True True")
    }

    @Test func rawBlocksCommentsAndWhitespaceControl() throws {
        #expect(try evaluate("{% raw %}{{ params.name }}{% endraw %}") == "{{ params.name }}")
        #expect(try evaluate("a{# a comment #}b") == "ab")
        #expect(try evaluate("a   {{- params.name -}}   b") == "aAdab")
    }

    @Test(arguments: [
        ("{{ params.name", "Unbalanced template braces: '{{' is never closed at position 0"),
        ("{{ params.name }} }}", "Unbalanced template braces: '}}' without an opening '{{' at position 18"),
        ("Hi {{ }}", "unexpected '}}', expected an expression at position 6"),
        ("{{ params. }}", "unexpected '}}', expected an attribute name after '.' at position 11"),
        ("{{ a + }}", "unexpected '}}', expected an expression at position 7"),
        ("{{ 'abc }}", "string literal is never closed at position 3"),
        ("{{ x | }}", "unexpected '}}', expected a filter name after '|' at position 7"),
        ("{{ f(1) }}", "calling functions or methods is not supported; use a filter instead (e.g. `x | length`) at position 4"),
        (
            "{% if x %}y{% endif %}",
            "'{% if %}' is not supported: templates are expressions in {{ … }}; the only statement is {% raw %} at position 3"
        ),
        ("{% raw %}never closed", "{% raw %} is never closed with {% endraw %} at position 0"),
        ("{{ a b }}", "expected '}}' but found 'b' at position 5"),
    ])
    func syntaxErrorsNameThePosition(text: String, message: String) {
        #expect(throws: TemplateError.self) { try Template(parsing: text) }
        do {
            _ = try Template(parsing: text)
        } catch {
            #expect(error.kind == .syntax)
            #expect(error.description == message)
        }
    }

    @Test(arguments: [
        ("{{ params.name < 3 }}", "'<' not supported between instances of 'str' and 'int' at position 3"),
        ("{{ params.name - 1 }}", "unsupported operand type(s) for -: 'str' and 'int' at position 15"),
        ("{{ params.count / 0 }}", "division by zero at position 16"),
        ("{{ params.count | length }}", "filter 'length': object of type 'int' has no len() at position 18"),
        ("{{ params.name | shout }}", "no filter named 'shout' at position 17"),
        ("{{ params.name is shouting }}", "no test named 'shouting' at position 18"),
    ])
    func evaluationErrorsNameThePosition(text: String, message: String) throws {
        let template = try Template(parsing: text)
        #expect(throws: TemplateError.self) { try template.evaluate(in: Self.scope) }
        do {
            _ = try template.evaluate(in: Self.scope)
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func extractsTheVariablesRead() throws {
        let template = try Template(parsing: "{{ params.a }} {{ steps.s.outputs['k'] | default(params.b) }} {{ x.y if params.c else 1 }}")
        #expect(template.references.map(\.dotted) == ["params.a", "steps.s.outputs.k", "params.b", "x.y", "params.c"])
        #expect(Template.containsSyntax("a {{ b }}"))
        #expect(Template.containsSyntax("{% raw %}"))
        #expect(!Template.containsSyntax("plain { text }"))
    }
}

@Suite struct CompiledValueTests {
    @Test func resolvesTemplatesInsideParameterTrees() throws {
        let params: JSONValue = [
            "message": "Hi {{ params.name }}", "count": "{{ params.n }}", "plain": 7, "nested": ["list": ["{{ params.n * 2 }}", "x"]],
        ]
        let compiled = try CompiledValue.compile(params, path: "params")
        let scope = TemplateScope(["params": ["name": "Bo", "n": 2]])
        #expect(
            try compiled.resolve(in: scope, path: "params") == ["message": "Hi Bo", "count": 2, "plain": 7, "nested": ["list": [4, "x"]]])
        #expect(compiled.references(path: "params").map(\.field) == ["params.message", "params.count", "params.nested.list[0]"])
        #expect(try CompiledValue.compile(["a": 1, "b": ["c"]], path: "params").isConstant)
        #expect(try CompiledValue.compile("}} not a template", path: "p").isConstant)
    }

    @Test func namesTheFieldOfAnError() throws {
        #expect(throws: FieldTemplateError.self) { try CompiledValue.compile(["a": ["b": "{{ x"]], path: "params") }
        do {
            _ = try CompiledValue.compile(["a": ["b": "{{ x"]], path: "params")
        } catch {
            #expect(error.description == "params.a.b: Unbalanced template braces: '{{' is never closed at position 0")
        }
        let compiled = try CompiledValue.compile(["n": "{{ params.s - 1 }}"], path: "params")
        do {
            _ = try compiled.resolve(in: TemplateScope(["params": ["s": "x"]]), path: "params")
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "params.n: unsupported operand type(s) for -: 'str' and 'int' at position 12")
        }
    }
}

@Suite struct ConditionTests {
    static let scope = TemplateScope([
        "params": ["on": true, "off": false, "text_false": "false", "zero": 0, "n": 5, "env": "prod", "list": [], "name": "x"],
        "steps": ["check": ["outputs": ["count": 2, "healthy": false, "branch": "true"], "status": "COMPLETED"]],
    ])

    private func holds(_ text: String?) throws -> Bool {
        try Condition(text).evaluate(in: Self.scope)
    }

    @Test func literals() throws {
        for text in [nil, "", "   ", "true", "TRUE", "1", "yes", "anything"] as [String?] { #expect(try holds(text), "\(text ?? "nil")") }
        for text in ["false", "False", "0", "no"] { #expect(try !holds(text), "\(text)") }
    }

    @Test func templates() throws {
        #expect(try holds("{{ params.on }}"))
        #expect(try !holds("{{ params.off }}"))
        #expect(try !holds("{{ params.text_false }}"), "the string 'false' reads as false, as in the reference")
        #expect(try !holds("{{ params.zero }}"))
        #expect(try !holds("{{ params.list }}"))
        #expect(try holds("{{ params.n > 3 and params.env == 'prod' }}"))
        #expect(try holds("{{ steps.check.outputs.count > 0 }}"))
        #expect(try holds("{{ not steps.check.outputs.healthy }}"))
        #expect(try holds("{{ steps.check.outputs.branch == 'true' }}"))
        #expect(try holds("{{ steps.check.status == 'COMPLETED' }}"))
        #expect(try holds("{{ 'prod' in ['prod', 'dev'] }}"))
        #expect(try !holds("{{ params.missing }}"), "undefined is false")
        #expect(try !holds("{{ params.missing > 3 }}"), "an undefined operand is false")
        #expect(try holds("{{ params.missing | default(true) }}"))
        #expect(try !holds("{{ none }}"))
        #expect(try holds("{{ params.name }} and more"), "mixed text is read as rendered text")
    }

    @Test func syntaxAndTypeErrorsThrow() throws {
        #expect(throws: TemplateError.self) { try Condition("{{ params.n > }}") }
        #expect(throws: TemplateError.self) { try holds("{{ params.env > 3 }}") }
    }
}
