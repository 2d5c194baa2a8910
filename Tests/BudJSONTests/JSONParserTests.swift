import BudJSON
import Testing

@Suite struct JSONParserTests {
    @Test func parsesScalars() throws {
        #expect(try JSONValue(parsing: "null") == .null)
        #expect(try JSONValue(parsing: " true ") == .bool(true))
        #expect(try JSONValue(parsing: "false") == .bool(false))
        #expect(try JSONValue(parsing: "\"hi\"") == .string("hi"))
    }

    @Test func keepsIntegersAndDoublesApart() throws {
        guard case .int(42) = try JSONValue(parsing: "42") else {
            Issue.record("42 is not an int")
            return
        }
        guard case .int(-7) = try JSONValue(parsing: "-7") else {
            Issue.record("-7 is not an int")
            return
        }
        guard case .double(1.0) = try JSONValue(parsing: "1.0") else {
            Issue.record("1.0 is not a double")
            return
        }
        guard case .double(1500) = try JSONValue(parsing: "1.5e3") else {
            Issue.record("1.5e3 is not a double")
            return
        }
        guard case .double(let small) = try JSONValue(parsing: "-2.5E-2"), small == -0.025 else {
            Issue.record("-2.5E-2 misread")
            return
        }
        guard case .int(Int.min) = try JSONValue(parsing: "-9223372036854775808") else {
            Issue.record("Int.min misread")
            return
        }
        guard case .double(let big) = try JSONValue(parsing: "9223372036854775808"), big == 9_223_372_036_854_775_808 else {
            Issue.record("an integer beyond Int.max must become a double")
            return
        }
    }

    @Test func parsesNestedContainersInOrder() throws {
        let value = try JSONValue(parsing: #"{"b": [1, {"c": null}], "a": {}, "z": []}"#)
        #expect(value.objectValue?.keys == ["b", "a", "z"])
        #expect(value["b"]?[1]?["c"] == .null)
        #expect(value["a"] == .object([:]))
        #expect(value["z"] == .array([]))
    }

    @Test func repeatedKeysKeepTheLastValue() throws {
        let value = try JSONValue(parsing: #"{"a": 1, "b": 2, "a": 3}"#)
        #expect(value.objectValue?.keys == ["a", "b"])
        #expect(value["a"] == 3)
    }

    @Test func decodesEscapes() throws {
        let value = try JSONValue(parsing: #""q\"b\\s\/n\nt\tr\rb\bf\fu\u00e9\u20ac\ud83d\ude00""#)
        #expect(value == .string("q\"b\\s/n\nt\tr\rb\u{8}f\u{c}u\u{e9}\u{20ac}\u{1F600}"))
    }

    @Test func keepsRawUTF8() throws {
        #expect(try JSONValue(parsing: "\"naïve – ✓ 😀\"") == .string("naïve – ✓ 😀"))
    }

    @Test(arguments: [
        ("", "unexpected end of input at byte 0"),
        ("{", "unexpected end of input, expected an object key at byte 1"),
        (#"{"a" 1}"#, "unexpected character '1', expected ':' after an object key at byte 5"),
        (#"{"a":1,}"#, "unexpected character '}', expected an object key at byte 7"),
        ("[1 2]", "unexpected character '2', expected ',' or ']' in an array at byte 3"),
        ("[1,]", "unexpected character ']' at byte 3"),
        (#""abc"#, "unterminated string at byte 4"),
        ("\"a\tb\"", "unescaped control character 0x09 in a string at byte 2"),
        (#""\x""#, "invalid escape \\'x' in a string at byte 2"),
        (#""\u12G4""#, "invalid hex digit 'G' in a \\u escape at byte 5"),
        (#""\ud83d""#, "unpaired surrogate in a \\u escape at byte 1"),
        (#""\ude00""#, "unpaired surrogate in a \\u escape at byte 1"),
        ("01", "unexpected character '1' after the document at byte 1"),
        ("-", "unexpected end of input, expected a digit at byte 1"),
        ("1.", "unexpected end of input, expected a digit after '.' at byte 2"),
        ("1e+", "unexpected end of input, expected a digit in the exponent at byte 3"),
        ("1e999", "number 1e999 is out of range at byte 0"),
        ("tru", "unexpected character 't' at byte 0"),
        ("nulls", "unexpected character 's' after the document at byte 4"),
        ("{} {}", "unexpected character '{' after the document at byte 3"),
    ])
    func rejectsMalformedInputWithPosition(input: String, message: String) {
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: input) }
        do {
            _ = try JSONValue(parsing: input)
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func rejectsInvalidUTF8() {
        let bytes: [UInt8] = [0x22, 0xC3, 0x28, 0x22]
        #expect(throws: JSONParseError(reason: "invalid UTF-8 in a string", offset: 1)) { try JSONValue(parsing: bytes) }
    }

    @Test func limitsNesting() throws {
        let deep =
            String(repeating: "[", count: JSONValue.maximumNestingDepth) + String(repeating: "]", count: JSONValue.maximumNestingDepth)
        _ = try JSONValue(parsing: deep)
        let tooDeep = "[" + deep + "]"
        #expect(throws: JSONParseError(reason: "nesting deeper than 512 levels", offset: 512)) { try JSONValue(parsing: tooDeep) }
    }
}
