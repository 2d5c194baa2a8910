import BudJSON
import Testing

@Suite struct JSONSerializerTests {
    @Test func writesCompactTextInInsertionOrder() {
        let value: JSONValue = ["z": 1, "a": [true, nil, 2.5, "x"], "m": ["k": -3]]
        #expect(value.serializedString() == #"{"z":1,"a":[true,null,2.5,"x"],"m":{"k":-3}}"#)
    }

    @Test func sortsKeysOnRequest() {
        let value: JSONValue = ["b": 1, "a": ["d": 1, "c": 2]]
        #expect(value.serializedString(options: .sortedKeys) == #"{"a":{"c":2,"d":1},"b":1}"#)
    }

    @Test func prettyPrints() {
        let value: JSONValue = ["a": [1, 2], "b": [:], "c": []]
        #expect(value.serializedString(options: .prettyPrinted) == "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {},\n  \"c\": []\n}")
    }

    @Test func escapesStrings() {
        let value = JSONValue.string("q\"b\\n\nt\tc\u{1}é😀/")
        #expect(value.serializedString() == #""q\"b\\n\nt\tc\u0001é😀/""#)
    }

    @Test func writesNumbers() {
        #expect(JSONValue.int(0).serializedString() == "0")
        #expect(JSONValue.int(Int.min).serializedString() == "-9223372036854775808")
        #expect(JSONValue.int(Int.max).serializedString() == "9223372036854775807")
        #expect(JSONValue.double(1).serializedString() == "1.0")
        #expect(JSONValue.double(0.1).serializedString() == "0.1")
        #expect(JSONValue.double(-0.0).serializedString() == "-0.0")
        #expect(JSONValue.double(1e21).serializedString() == "1e+21")
        #expect(JSONValue.double(.infinity).serializedString() == "null")
        #expect(JSONValue.double(.nan).serializedString() == "null")
    }

    @Test func roundTripsRandomDocuments() throws {
        var generator = SeededGenerator(seed: 0x5EED)
        for _ in 0..<500 {
            let value = randomValue(depth: 0, using: &generator)
            let text = value.serialized()
            #expect(try JSONValue(parsing: text) == value)
            let pretty = value.serialized(options: [.prettyPrinted, .sortedKeys])
            #expect(try JSONValue(parsing: pretty) == value)
        }
    }

    private func randomValue(depth: Int, using generator: inout SeededGenerator) -> JSONValue {
        let kind = Int.random(in: 0..<(depth > 3 ? 5 : 7), using: &generator)
        switch kind {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &generator))
        case 2: return .int(Int.random(in: Int.min...Int.max, using: &generator))
        case 3: return .double(Double.random(in: -1e12...1e12, using: &generator))
        case 4:
            let scalars = (0..<Int.random(in: 0..<12, using: &generator)).map { _ in
                Character(Unicode.Scalar([0x22, 0x5C, 0x0A, 0x41, 0xE9, 0x1F600, 0x7F, 0x01][Int.random(in: 0..<8, using: &generator)])!)
            }
            return .string(String(scalars))
        case 5:
            return .array((0..<Int.random(in: 0..<5, using: &generator)).map { _ in randomValue(depth: depth + 1, using: &generator) })
        default:
            var object = JSONObject()
            for index in 0..<Int.random(in: 0..<5, using: &generator) {
                object["k\(index)\(Int.random(in: 0..<3, using: &generator))"] = randomValue(depth: depth + 1, using: &generator)
            }
            return .object(object)
        }
    }
}

/// A deterministic generator (SplitMix64) so failures reproduce.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
