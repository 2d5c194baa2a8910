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
}
