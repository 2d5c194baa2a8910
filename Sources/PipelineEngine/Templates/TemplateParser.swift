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

    private mutating func parseExpression() throws(TemplateError) -> Expression {
        let then = try parseOr()
        guard matchKeyword("if") else { return then }
        let condition = try parseOr()
        let otherwise: Expression? = matchKeyword("else") ? try parseExpression() : nil
        return .conditional(then: then, condition: condition, otherwise: otherwise)
    }

    private mutating func parseOr() throws(TemplateError) -> Expression {
        var left = try parseAnd()
        while matchKeyword("or") { left = .or(left, try parseAnd()) }
        return left
    }

    private mutating func parseAnd() throws(TemplateError) -> Expression {
        var left = try parseNot()
        while matchKeyword("and") { left = .and(left, try parseNot()) }
        return left
    }

    private mutating func parseNot() throws(TemplateError) -> Expression {
        if matchKeyword("not") { return .not(try parseNot()) }
        return try parseComparison()
    }

    private mutating func parseComparison() throws(TemplateError) -> Expression {
        let position = currentPosition()
        let first = try parseAdditive()
        var rest: [(ComparisonOperator, Expression)] = []
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
            rest.append((comparison, try parseAdditive()))
        }
        return rest.isEmpty ? first : .comparison(first, rest, position: position)
    }

    private mutating func parseAdditive() throws(TemplateError) -> Expression {
        var left = try parseConcatenation()
        while true {
            skipWhitespace()
            let position = index
            if isWhitespaceControlClose { return left }
            guard let symbol = matchSymbol(["+", "-"]), let operation = BinaryOperator(rawValue: symbol) else { return left }
            left = .binary(operation, left, try parseConcatenation(), position: position)
        }
    }

    private mutating func parseConcatenation() throws(TemplateError) -> Expression {
        var left = try parseMultiplicative()
        while true {
            skipWhitespace()
            let position = index
            guard matchSymbol(["~"]) != nil else { return left }
            left = .binary(.concatenate, left, try parseMultiplicative(), position: position)
        }
    }

    private mutating func parseMultiplicative() throws(TemplateError) -> Expression {
        var left = try parsePower()
        while true {
            skipWhitespace()
            let position = index
            guard let symbol = matchSymbol(["//", "*", "/", "%"]), let operation = BinaryOperator(rawValue: symbol) else { return left }
            left = .binary(operation, left, try parsePower(), position: position)
        }
    }

    private mutating func parsePower() throws(TemplateError) -> Expression {
        let left = try parseUnary()
        skipWhitespace()
        let position = index
        guard matchSymbol(["**"]) != nil else { return left }
        return .binary(.power, left, try parsePower(), position: position)
    }

    /// A unary minus binds tighter than filters, as in Jinja: `-2.5 | abs` is `(-2.5) | abs`.
    private mutating func parseUnary(withFilters: Bool = true) throws(TemplateError) -> Expression {
        skipWhitespace()
        let position = index
        let operand: Expression
        if !isWhitespaceControlClose, matchSymbol(["-"]) != nil {
            operand = .negate(try parseUnary(withFilters: false), position: position)
        } else if matchSymbol(["+"]) != nil {
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

    private mutating func parseFiltersAndTests(_ base: Expression) throws(TemplateError) -> Expression {
        var expression = base
        while true {
            skipWhitespace()
            if peek() == "|" && peek(1) != "|" {
                index += 1
                skipWhitespace()
                let position = index
                let name = try expectName(what: "a filter name after '|'")
                let arguments = peekAfterWhitespace() == "(" ? try parseArguments() : Expression.Arguments()
                expression = .filter(expression, name: name, arguments: arguments, position: position)
            } else if matchKeyword("is") {
                let negated = matchKeyword("not")
                skipWhitespace()
                let position = index
                let name = try expectName(what: "a test name after 'is'")
                var arguments = Expression.Arguments()
                if peekAfterWhitespace() == "(" {
                    arguments = try parseArguments()
                } else if let argument = try parseBareTestArgument() {
                    arguments.positional = [argument]
                }
                expression = .test(expression, name: name, negated: negated, arguments: arguments, position: position)
            } else {
                return expression
            }
        }
    }

    /// Jinja allows one argument without parentheses for tests: `x is divisibleby 3`.
    private mutating func parseBareTestArgument() throws(TemplateError) -> Expression? {
        skipWhitespace()
        guard let character = peek(), character.isNumber || character == "'" || character == "\"" else { return nil }
        return try parsePrimary()
    }

    private mutating func parsePostfix(_ base: Expression) throws(TemplateError) -> Expression {
        var expression = base
        while true {
            skipWhitespace()
            let position = index
            if peek() == "." && !(peek(1)?.isNumber ?? false) {
                index += 1
                skipWhitespace()
                let name = try expectName(what: "an attribute name after '.'")
                expression = .attribute(expression, name, position: position)
            } else if peek() == "." {
                index += 1
                let digits = readWhile(\.isNumber)
                expression = .subscript(expression, .literal(.int(Int(digits) ?? 0)), position: position)
            } else if peek() == "[" {
                index += 1
                let key = try parseExpression()
                skipWhitespace()
                guard peek() == "]" else { throw unexpected("']' to close the subscript") }
                index += 1
                expression = .subscript(expression, key, position: position)
            } else if peek() == "(" {
                throw TemplateError(
                    .syntax,
                    "calling functions or methods is not supported; use a filter instead (e.g. `x | length`)",
                    position: position
                )
            } else {
                return expression
            }
        }
    }

    private mutating func parsePrimary() throws(TemplateError) -> Expression {
        skipWhitespace()
        let position = index
        guard let character = peek() else {
            throw TemplateError(.syntax, "unexpected end of template, expected an expression", position: index)
        }
        if character == "'" || character == "\"" { return .literal(.string(try readString())) }
        if character.isNumber { return .literal(try readNumber()) }
        if character == "(" {
            index += 1
            let inner = try parseExpression()
            skipWhitespace()
            guard peek() == ")" else { throw unexpected("')'") }
            index += 1
            return inner
        }
        if character == "[" {
            index += 1
            var elements: [Expression] = []
            while true {
                skipWhitespace()
                if peek() == "]" { break }
                elements.append(try parseExpression())
                skipWhitespace()
                if peek() == "," {
                    index += 1
                    continue
                }
                guard peek() == "]" else { throw unexpected("',' or ']' in a list") }
            }
            index += 1
            return .list(elements)
        }
        if character == "{" {
            index += 1
            var pairs: [(key: Expression, value: Expression)] = []
            while true {
                skipWhitespace()
                if peek() == "}" { break }
                let key = try parseExpression()
                skipWhitespace()
                guard peek() == ":" else { throw unexpected("':' after a dictionary key") }
                index += 1
                pairs.append((key, try parseExpression()))
                skipWhitespace()
                if peek() == "," {
                    index += 1
                    continue
                }
                guard peek() == "}" else { throw unexpected("',' or '}' in a dictionary") }
            }
            index += 1
            return .dictionary(pairs)
        }
        if character.isLetter || character == "_" {
            let name = readWhile { $0.isLetter || $0.isNumber || $0 == "_" }
            switch name {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.null)
            case "and", "or", "not", "if", "else", "in", "is":
                throw TemplateError(.syntax, "unexpected keyword '\(name)', expected an expression", position: position)
            default: return .variable(name, position: position)
            }
        }
        throw unexpected("an expression")
    }

    private mutating func parseArguments() throws(TemplateError) -> Expression.Arguments {
        skipWhitespace()
        index += 1
        var arguments = Expression.Arguments()
        while true {
            skipWhitespace()
            if peek() == ")" { break }
            let save = index
            if let character = peek(), character.isLetter || character == "_" {
                let name = readWhile { $0.isLetter || $0.isNumber || $0 == "_" }
                skipWhitespace()
                if peek() == "=" && peek(1) != "=" {
                    index += 1
                    arguments.keyword.append((name, try parseExpression()))
                } else {
                    index = save
                    arguments.positional.append(try parseExpression())
                }
            } else {
                arguments.positional.append(try parseExpression())
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
        let cleaned = text.replacingOccurrences(of: "_", with: "")
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
