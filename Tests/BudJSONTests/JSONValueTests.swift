import BudJSON
import Testing

@Suite struct JSONValueTests {
    @Test func objectEqualityIgnoresOrder() {
        let first: JSONValue = ["a": 1, "b": ["c": 2, "d": 3]]
        let second: JSONValue = ["b": ["d": 3, "c": 2], "a": 1]
        #expect(first == second)
        #expect(first != ["a": 1])
        #expect(first.serializedString() != second.serializedString())
    }

    @Test func numbersCompareByValue() {
        #expect(JSONValue.int(1) == .double(1.0))
        #expect(JSONValue.double(2.5) != .int(2))
        #expect(JSONValue.string("1") != .int(1))
        #expect(JSONValue.bool(true) != .int(1))
    }

    @Test func accessors() {
        let value: JSONValue = ["s": "x", "i": 3, "d": 2.0, "f": 2.5, "b": false, "a": [1], "o": ["k": nil]]
        #expect(value["s"]?.stringValue == "x")
        #expect(value["i"]?.intValue == 3)
        #expect(value["d"]?.intValue == 2)
        #expect(value["f"]?.intValue == nil)
        #expect(value["f"]?.doubleValue == 2.5)
        #expect(value["i"]?.doubleValue == 3)
        #expect(value["b"]?.boolValue == false)
        #expect(value["a"]?[0] == 1)
        #expect(value["a"]?[1] == nil)
        #expect(value["o"]?["k"]?.isNull == true)
        #expect(value["missing"] == nil)
        #expect(value["s"]?["x"] == nil)
        #expect(value.typeName == "object")
        #expect(JSONValue.int(1).typeName == "number")
    }

    @Test func objectEditing() {
        var object: JSONObject = ["a": 1, "b": 2]
        object["c"] = 3
        object["a"] = nil
        #expect(object.keys == ["b", "c"])
        #expect(object.removeValue(forKey: "b") == 2)
        object.merge(["c": 30, "d": 4])
        #expect(object == ["c": 30, "d": 4])
        #expect(object.merging(["e": 5]).count == 3)
        #expect(Array(object.map(\.key)) == ["c", "d"])
        #expect(object.description == #"{"c":30,"d":4}"#)
    }

    @Test func measureCountsWhatTheWriterWrites() throws {
        let values: [JSONValue] = [
            .null, true, false, 0, -7, .int(Int.min), .int(Int.max), 2.5, 1e300, .double(.infinity), "", "a\"b\\c\n\u{1}é",
            [], [1, "x", [nil]], [:], ["k": 1, "long key\t": ["nested": [1, 2, 3]], "": ""],
        ]
        for value in values {
            #expect(value.measure(limit: 1 << 20) == .fits(bytes: value.serialized().count), "\(value)")
        }
        let list: JSONValue = .array((0..<100).map { .int($0) })
        let size = list.serialized().count
        #expect(list.measure(limit: size) == .fits(bytes: size))
        #expect(list.measure(limit: size - 1) == .tooLarge)
        #expect(JSONValue.array(Array(repeating: .null, count: 1_000_000)).measure(limit: 100) == .tooLarge)
    }

    @Test func measureFindsValuesTooDeepToReadBack() throws {
        var deep = JSONValue.null
        for _ in 0..<JSONValue.maximumNestingDepth { deep = .array([deep]) }
        #expect(deep.measure(limit: .max) == .fits(bytes: 2 * JSONValue.maximumNestingDepth + 4))
        #expect(try JSONValue(parsing: deep.serializedString()) == deep)
        #expect(JSONValue.object(["k": deep]).measure(limit: .max) == .tooDeep)
    }
}
