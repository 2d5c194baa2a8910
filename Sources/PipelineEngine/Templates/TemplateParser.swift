import BudJSON
import Foundation

extension Template {
    /// Parses template text: literal text, `{{ expression }}`, `{# comment #}`, `{% raw %}…{% endraw %}`,
    /// with Jinja's `-` whitespace control (`{{- x -}}`).
    public init(parsing source: String) throws(TemplateError) {
        var parser = TemplateParser(source)
        self.init(source: source, segments: try parser.parseSegments())
    }
}

/// Parses the Jinja2 subset BudPipeline supports (see docs/dag.md, "Templates").
struct TemplateParser {
    private let characters: [Character]
    private var index = 0

    init(_ source: String) {
        characters = Array(source)
    }

    // MARK: Text and tags

    mutating func parseSegments() throws(TemplateError) -> [Template.Segment] {
        var segments: [Template.Segment] = []
        var text = ""
        var trimNextText = false

        func flush(trimTrailing: Bool) {
            var chunk = text
            if trimNextText { chunk = String(chunk.drop(while: \.isWhitespace)) }
            if trimTrailing { while chunk.last?.isWhitespace == true { chunk.removeLast() } }
            if !chunk.isEmpty { segments.append(.text(chunk)) }
            text = ""
            trimNextText = false
        }

        while index < characters.count {
            let character = characters[index]
            guard character == "{", index + 1 < characters.count, "{%#".contains(characters[index + 1]) else {
                if character == "}", peek(1) == "}" {
                    throw TemplateError(.syntax, "Unbalanced template braces: '}}' without an opening '{{'", position: index)
                }
                text.append(character)
                index += 1
                continue
            }
            let opening = index
            let kind = characters[index + 1]
            index += 2
            let trimBefore = peek() == "-"
            if trimBefore { index += 1 }
            flush(trimTrailing: trimBefore)
            switch kind {
            case "{":
                let expression = try parseExpression()
                skipWhitespace()
                let trimAfter = peek() == "-" && peek(1) == "}" && peek(2) == "}"
                if trimAfter { index += 1 }
                guard peek() == "}", peek(1) == "}" else {
                    if index >= characters.count {
                        throw TemplateError(.syntax, "Unbalanced template braces: '{{' is never closed", position: opening)
                    }
                    throw TemplateError(.syntax, "expected '}}' but found \(describeCurrent())", position: index)
                }
                index += 2
                segments.append(.expression(expression))
                trimNextText = trimAfter
            case "#":
                guard let end = find("#}", from: index) else {
                    throw TemplateError(.syntax, "comment '{#' is never closed", position: opening)
                }
                trimNextText = end > 0 && characters[end - 1] == "-"
                index = end + 2
            default:
                trimNextText = try parseStatement(opening: opening, text: &text)
            }
        }
        flush(trimTrailing: false)
        return segments
    }

    /// `{% raw %}…{% endraw %}` is the only statement: its content is literal text.
    private mutating func parseStatement(opening: Int, text: inout String) throws(TemplateError) -> Bool {
        skipWhitespace()
        let nameStart = index
        var name = ""
        while let character = peek(), character.isLetter || character == "_" {
            name.append(character)
            index += 1
        }
        guard name == "raw" else {
            let shown = name.isEmpty ? "an empty statement" : "'{% \(name) %}'"
            throw TemplateError(
                .syntax,
                "\(shown) is not supported: templates are expressions in {{ … }}; the only statement is {% raw %}",
                position: name.isEmpty ? opening : nameStart
            )
        }
        skipWhitespace()
        if peek() == "-" { index += 1 }
        guard peek() == "%", peek(1) == "}" else {
            throw TemplateError(.syntax, "expected '%}' after {% raw", position: index)
        }
        index += 2
        let contentStart = index
        var search = index
        while let tag = find("{%", from: search) {
            var cursor = tag + 2
            if cursor < characters.count, characters[cursor] == "-" { cursor += 1 }
            while cursor < characters.count, characters[cursor].isWhitespace { cursor += 1 }
            if String(characters[cursor..<min(cursor + 6, characters.count)]) == "endraw" {
                cursor += 6
                while cursor < characters.count, characters[cursor].isWhitespace { cursor += 1 }
                let trimAfter = cursor < characters.count && characters[cursor] == "-"
                if trimAfter { cursor += 1 }
                guard cursor + 1 < characters.count, characters[cursor] == "%", characters[cursor + 1] == "}" else {
                    throw TemplateError(.syntax, "expected '%}' after {% endraw", position: cursor)
                }
                text.append(contentsOf: characters[contentStart..<tag])
                index = cursor + 2
                return trimAfter
            }
            search = tag + 2
        }
        throw TemplateError(.syntax, "{% raw %} is never closed with {% endraw %}", position: opening)
    }

    // MARK: Expressions

    /// An expression and the depth of its tree (a leaf is 1).
    ///
    /// Every node is made through ``make(_:_:position:)``, which refuses trees deeper than
    /// ``TemplateLimits/maximumNestingDepth``; together with the bound on the parser's own
    /// recursion (``enter(at:)``) this keeps parsing, evaluation and the tree's destruction within
    /// a small, fixed stack, whatever the template's length.
    private struct Node {
        var expression: Expression
        var depth: Int

        static func leaf(_ expression: Expression) -> Node { Node(expression: expression, depth: 1) }
    }

    /// How deeply the parser has recursed into nested expressions.
    private var nesting = 0

    /// Enters one level of nesting (brackets, parentheses, a unary operator, a right-associative
    /// power); the caller leaves it with `nesting -= 1`.
    private mutating func enter(at position: Int) throws(TemplateError) {
        guard nesting < TemplateLimits.maximumNestingDepth else { throw tooDeep(at: position) }
        nesting += 1
    }

    private func make(_ expression: Expression, _ children: [Node], position: Int) throws(TemplateError) -> Node {
        var deepest = 0
        for child in children where child.depth > deepest { deepest = child.depth }
        guard deepest < TemplateLimits.maximumNestingDepth else { throw tooDeep(at: position) }
        return Node(expression: expression, depth: deepest + 1)
    }

    private func tooDeep(at position: Int) -> TemplateError {
        TemplateError(
            .syntax, "the expression nests deeper than \(TemplateLimits.maximumNestingDepth) levels (brackets, operators, filters)",
            position: position)
    }

    private mutating func parseExpression() throws(TemplateError) -> Expression {
        try parseNested().expression
    }

    private mutating func parseNested() throws(TemplateError) -> Node {
        let position = currentPosition()
        try enter(at: position)
        defer { nesting -= 1 }
        let then = try parseOr()
        guard matchKeyword("if") else { return then }
        let condition = try parseOr()
        let otherwise: Node? = matchKeyword("else") ? try parseNested() : nil
        return try make(
            .conditional(then: then.expression, condition: condition.expression, otherwise: otherwise?.expression),
            [then, condition] + (otherwise.map { [$0] } ?? []), position: position)
    }

    private mutating func parseOr() throws(TemplateError) -> Node {
        var left = try parseAnd()
        while matchKeyword("or") {
            let right = try parseAnd()
            left = try make(.or(left.expression, right.expression), [left, right], position: index)
        }
        return left
    }

    private mutating func parseAnd() throws(TemplateError) -> Node {
        var left = try parseNot()
        while matchKeyword("and") {
            let right = try parseNot()
            left = try make(.and(left.expression, right.expression), [left, right], position: index)
        }
        return left
    }

    private mutating func parseNot() throws(TemplateError) -> Node {
        let position = currentPosition()
        guard matchKeyword("not") else { return try parseComparison() }
        try enter(at: position)
        defer { nesting -= 1 }
        let operand = try parseNot()
        return try make(.not(operand.expression), [operand], position: position)
    }

    private mutating func parseComparison() throws(TemplateError) -> Node {
        let position = currentPosition()
        let first = try parseAdditive()
        var rest: [Node] = []
        var operators: [ComparisonOperator] = []
        while true {
            skipWhitespace()
            let comparison: ComparisonOperator
            if let symbol = matchSymbol(["==", "!=", "<=", ">=", "<", ">"]) {
                guard let parsed = ComparisonOperator(rawValue: symbol) else { break }
                comparison = parsed
            } else if matchKeyword("in") {
                comparison = .contains
            } else if lookingAtKeywords("not", "in") {
                _ = matchKeyword("not")
                _ = matchKeyword("in")
                comparison = .notContains
            } else {
                break
            }
            operators.append(comparison)
            rest.append(try parseAdditive())
        }
        guard !rest.isEmpty else { return first }
        let pairs = zip(operators, rest).map { ($0, $1.expression) }
        return try make(.comparison(first.expression, pairs, position: position), [first] + rest, position: position)
    }

    private mutating func parseAdditive() throws(TemplateError) -> Node {
        var left = try parseConcatenation()
        while true {
            skipWhitespace()
            let position = index
            if isWhitespaceControlClose { return left }
            guard let symbol = matchSymbol(["+", "-"]), let operation = BinaryOperator(rawValue: symbol) else { return left }
            let right = try parseConcatenation()
            left = try make(.binary(operation, left.expression, right.expression, position: position), [left, right], position: position)
        }
    }

    private mutating func parseConcatenation() throws(TemplateError) -> Node {
        var left = try parseMultiplicative()
        while true {
            skipWhitespace()
            let position = index
            guard matchSymbol(["~"]) != nil else { return left }
            let right = try parseMultiplicative()
            left = try make(
                .binary(.concatenate, left.expression, right.expression, position: position), [left, right], position: position)
        }
    }

    private mutating func parseMultiplicative() throws(TemplateError) -> Node {
        var left = try parsePower()
        while true {
            skipWhitespace()
            let position = index
            guard let symbol = matchSymbol(["//", "*", "/", "%"]), let operation = BinaryOperator(rawValue: symbol) else { return left }
            let right = try parsePower()
            left = try make(.binary(operation, left.expression, right.expression, position: position), [left, right], position: position)
        }
    }

    private mutating func parsePower() throws(TemplateError) -> Node {
        let left = try parseUnary()
        skipWhitespace()
        let position = index
        guard matchSymbol(["**"]) != nil else { return left }
        try enter(at: position)
        defer { nesting -= 1 }
        let right = try parsePower()
        return try make(.binary(.power, left.expression, right.expression, position: position), [left, right], position: position)
    }

    /// A unary minus binds tighter than filters, as in Jinja: `-2.5 | abs` is `(-2.5) | abs`.
    private mutating func parseUnary(withFilters: Bool = true) throws(TemplateError) -> Node {
        skipWhitespace()
        let position = index
        let operand: Node
        if !isWhitespaceControlClose, matchSymbol(["-"]) != nil {
            try enter(at: position)
            defer { nesting -= 1 }
            let negated = try parseUnary(withFilters: false)
            operand = try make(.negate(negated.expression, position: position), [negated], position: position)
        } else if matchSymbol(["+"]) != nil {
            try enter(at: position)
            defer { nesting -= 1 }
            operand = try parseUnary(withFilters: false)
        } else {
            operand = try parsePostfix(try parsePrimary())
        }
        return withFilters ? try parseFiltersAndTests(operand) : operand
    }

    /// `-}}`: the end of an expression that trims the white space after it, not a minus.
    private var isWhitespaceControlClose: Bool {
        peek() == "-" && peek(1) == "}" && peek(2) == "}"
    }

    private mutating func parseFiltersAndTests(_ base: Node) throws(TemplateError) -> Node {
        var node = base
        while true {
            skipWhitespace()
            if peek() == "|" && peek(1) != "|" {
                index += 1
                skipWhitespace()
                let position = index
                let name = try expectName(what: "a filter name after '|'")
                let arguments = peekAfterWhitespace() == "(" ? try parseArguments() : ParsedArguments()
                node = try make(
                    .filter(node.expression, name: name, arguments: arguments.expressions, position: position), [node] + arguments.nodes,
                    position: position)
            } else if matchKeyword("is") {
                let negated = matchKeyword("not")
                skipWhitespace()
                let position = index
                let name = try expectName(what: "a test name after 'is'")
                var arguments = ParsedArguments()
                if peekAfterWhitespace() == "(" {
                    arguments = try parseArguments()
                } else if let argument = try parseBareTestArgument() {
                    arguments.positional = [argument]
                }
                node = try make(
                    .test(node.expression, name: name, negated: negated, arguments: arguments.expressions, position: position),
                    [node] + arguments.nodes, position: position)
            } else {
                return node
            }
        }
    }

    /// Jinja allows one argument without parentheses for tests: `x is divisibleby 3`.
    private mutating func parseBareTestArgument() throws(TemplateError) -> Node? {
        skipWhitespace()
        guard let character = peek(), character.isNumber || character == "'" || character == "\"" else { return nil }
        return try parsePrimary()
    }

    private mutating func parsePostfix(_ base: Node) throws(TemplateError) -> Node {
        var node = base
        while true {
            skipWhitespace()
            let position = index
            if peek() == "." && !(peek(1)?.isNumber ?? false) {
                index += 1
                skipWhitespace()
                let name = try expectName(what: "an attribute name after '.'")
                node = try make(.attribute(node.expression, name, position: position), [node], position: position)
            } else if peek() == "." {
                index += 1
                let digits = readWhile(\.isNumber)
                guard let offset = Int(digits) else {
                    throw TemplateError(.syntax, "index '\(digits.prefix(30))' is too large", position: position + 1)
                }
                let key = Node.leaf(.literal(.int(offset)))
                node = try make(.subscript(node.expression, key.expression, position: position), [node, key], position: position)
            } else if peek() == "[" {
                index += 1
                let key = try parseNested()
                skipWhitespace()
                guard peek() == "]" else { throw unexpected("']' to close the subscript") }
                index += 1
                node = try make(.subscript(node.expression, key.expression, position: position), [node, key], position: position)
            } else if peek() == "(" {
                throw TemplateError(
                    .syntax,
                    "calling functions or methods is not supported; use a filter instead (e.g. `x | length`)",
                    position: position
                )
            } else {
                return node
            }
        }
    }

    private mutating func parsePrimary() throws(TemplateError) -> Node {
        skipWhitespace()
        let position = index
        guard let character = peek() else {
            throw TemplateError(.syntax, "unexpected end of template, expected an expression", position: index)
        }
        if character == "'" || character == "\"" { return .leaf(.literal(.string(try readString()))) }
        if character.isNumber { return .leaf(.literal(try readNumber())) }
        if character == "(" {
            index += 1
            let inner = try parseNested()
            skipWhitespace()
            guard peek() == ")" else { throw unexpected("')'") }
            index += 1
            return inner
        }
        if character == "[" {
            index += 1
            var elements: [Node] = []
            while true {
                skipWhitespace()
                if peek() == "]" { break }
                elements.append(try parseNested())
                skipWhitespace()
                if peek() == "," {
                    index += 1
                    continue
                }
                guard peek() == "]" else { throw unexpected("',' or ']' in a list") }
            }
            index += 1
            return try make(.list(elements.map(\.expression)), elements, position: position)
        }
        if character == "{" {
            index += 1
            var pairs: [(key: Expression, value: Expression)] = []
            var children: [Node] = []
            while true {
                skipWhitespace()
                if peek() == "}" { break }
                let key = try parseNested()
                skipWhitespace()
                guard peek() == ":" else { throw unexpected("':' after a dictionary key") }
                index += 1
                let value = try parseNested()
                pairs.append((key.expression, value.expression))
                children += [key, value]
                skipWhitespace()
                if peek() == "," {
                    index += 1
                    continue
                }
                guard peek() == "}" else { throw unexpected("',' or '}' in a dictionary") }
            }
            index += 1
            return try make(.dictionary(pairs), children, position: position)
        }
        if character.isLetter || character == "_" {
            let name = readWhile { $0.isLetter || $0.isNumber || $0 == "_" }
            switch name {
            case "true", "True": return .leaf(.literal(.bool(true)))
            case "false", "False": return .leaf(.literal(.bool(false)))
            case "none", "None": return .leaf(.literal(.null))
            case "and", "or", "not", "if", "else", "in", "is":
                throw TemplateError(.syntax, "unexpected keyword '\(name)', expected an expression", position: position)
            default: return .leaf(.variable(name, position: position))
            }
        }
        throw unexpected("an expression")
    }

    /// Filter or test arguments as parsed, with their depths.
    private struct ParsedArguments {
        var positional: [Node] = []
        var keyword: [(name: String, value: Node)] = []

        var expressions: Expression.Arguments {
            Expression.Arguments(positional: positional.map(\.expression), keyword: keyword.map { ($0.name, $0.value.expression) })
        }

        var nodes: [Node] { positional + keyword.map(\.value) }
    }

    private mutating func parseArguments() throws(TemplateError) -> ParsedArguments {
        skipWhitespace()
        index += 1
        var arguments = ParsedArguments()
        while true {
            skipWhitespace()
            if peek() == ")" { break }
            let save = index
            if let character = peek(), character.isLetter || character == "_" {
                let name = readWhile { $0.isLetter || $0.isNumber || $0 == "_" }
                skipWhitespace()
                if peek() == "=" && peek(1) != "=" {
                    index += 1
                    arguments.keyword.append((name, try parseNested()))
                } else {
                    index = save
                    arguments.positional.append(try parseNested())
                }
            } else {
                arguments.positional.append(try parseNested())
            }
            skipWhitespace()
            if peek() == "," {
                index += 1
                continue
            }
            guard peek() == ")" else { throw unexpected("',' or ')' in the argument list") }
        }
        index += 1
        return arguments
    }

    // MARK: Tokens

    private mutating func readString() throws(TemplateError) -> String {
        let quote = characters[index]
        let start = index
        index += 1
        var text = ""
        while index < characters.count {
            let character = characters[index]
            index += 1
            if character == quote { return text }
            guard character == "\\" else {
                text.append(character)
                continue
            }
            guard index < characters.count else { break }
            let escaped = characters[index]
            index += 1
            switch escaped {
            case "n": text.append("\n")
            case "t": text.append("\t")
            case "r": text.append("\r")
            case "\\", "'", "\"": text.append(escaped)
            default:
                text.append("\\")
                text.append(escaped)
            }
        }
        throw TemplateError(.syntax, "string literal is never closed", position: start)
    }

    private mutating func readNumber() throws(TemplateError) -> JSONValue {
        let start = index
        var text = readWhile { $0.isNumber || $0 == "_" }
        var isFloat = false
        if peek() == ".", let next = peek(1), next.isNumber {
            isFloat = true
            index += 1
            text += "." + readWhile { $0.isNumber || $0 == "_" }
        }
        if let marker = peek(), marker == "e" || marker == "E" {
            let save = index
            index += 1
            var exponent = "e"
            if let sign = peek(), sign == "+" || sign == "-" {
                exponent.append(sign)
                index += 1
            }
            let digits = readWhile(\.isNumber)
            if digits.isEmpty {
                index = save
            } else {
                isFloat = true
                text += exponent + digits
            }
        }
        let cleaned = String(text.unicodeScalars.filter { $0 != "_" })
        if !isFloat, let integer = Int(cleaned) { return .int(integer) }
        guard let number = Double(cleaned) else {
            throw TemplateError(.syntax, "invalid number '\(text)'", position: start)
        }
        return .double(number)
    }

    private mutating func readWhile(_ predicate: (Character) -> Bool) -> String {
        var text = ""
        while let character = peek(), predicate(character) {
            text.append(character)
            index += 1
        }
        return text
    }

    private mutating func expectName(what: String) throws(TemplateError) -> String {
        guard let character = peek(), character.isLetter || character == "_" else { throw unexpected(what) }
        return readWhile { $0.isLetter || $0.isNumber || $0 == "_" }
    }

    private mutating func matchKeyword(_ keyword: String) -> Bool {
        skipWhitespace()
        let scalars = Array(keyword)
        guard index + scalars.count <= characters.count, Array(characters[index..<index + scalars.count]) == scalars else {
            return false
        }
        if let after = characters[safe: index + scalars.count], after.isLetter || after.isNumber || after == "_" { return false }
        index += scalars.count
        return true
    }

    private mutating func lookingAtKeywords(_ first: String, _ second: String) -> Bool {
        let save = index
        defer { index = save }
        return matchKeyword(first) && matchKeyword(second)
    }

    private mutating func matchSymbol(_ symbols: [String]) -> String? {
        for symbol in symbols {
            let scalars = Array(symbol)
            if index + scalars.count <= characters.count, Array(characters[index..<index + scalars.count]) == scalars {
                index += scalars.count
                return symbol
            }
        }
        return nil
    }

    private mutating func skipWhitespace() {
        while let character = peek(), character.isWhitespace { index += 1 }
    }

    private mutating func peekAfterWhitespace() -> Character? {
        skipWhitespace()
        return peek()
    }

    private func peek(_ offset: Int = 0) -> Character? {
        characters[safe: index + offset]
    }

    private func find(_ marker: String, from start: Int) -> Int? {
        let pattern = Array(marker)
        var position = start
        while position + pattern.count <= characters.count {
            if Array(characters[position..<position + pattern.count]) == pattern { return position }
            position += 1
        }
        return nil
    }

    private func currentPosition() -> Int {
        var position = index
        while let character = characters[safe: position], character.isWhitespace { position += 1 }
        return position
    }

    private func describeCurrent() -> String {
        guard let character = peek() else { return "the end of the template" }
        return "'\(character)'"
    }

    private func unexpected(_ expected: String) -> TemplateError {
        guard let character = peek() else {
            return TemplateError(.syntax, "unexpected end of template, expected \(expected)", position: index)
        }
        if character == "}" && peek(1) == "}" {
            return TemplateError(.syntax, "unexpected '}}', expected \(expected)", position: index)
        }
        return TemplateError(.syntax, "unexpected '\(character)', expected \(expected)", position: index)
    }
}

extension Array {
    subscript(safe index: Int) -> Element? {
        indices.contains(index) ? self[index] : nil
    }
}
