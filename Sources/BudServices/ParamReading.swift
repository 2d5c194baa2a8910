public import PluginKit

/// Readers for the parameter shapes the domain actions share.
public enum ParamReading {
    /// A string parameter; `nil` when absent, empty or not a string.
    public static func string(_ params: JSONObject, _ name: String) -> String? {
        guard let text = params[name]?.stringValue, !text.isEmpty else { return nil }
        return text
    }

    /// A numeric parameter as an integer (`"8"` and `8.0` count), or `nil`.
    public static func integer(_ params: JSONObject, _ name: String) -> Int? {
        integer(params[name])
    }

    /// A value as an integer (`"8"` and `8.0` count), or `nil`.
    public static func integer(_ value: JSONValue?) -> Int? {
        switch value {
        case .int(let value)?: value
        case .double(let value)?: Int(exactly: value)
        case .string(let text)?: Int(text)
        default: nil
        }
    }

    /// The problem with a numeric parameter outside `bounds`, or `nil` when it is absent or fine.
    public static func boundsProblem(_ params: JSONObject, _ name: String, _ bounds: ClosedRange<Int>) -> String? {
        guard let value = params[name], value != .null else { return nil }
        let number = value.doubleValue ?? value.stringValue.flatMap(Double.init)
        guard let number else { return "\(name) must be a number" }
        guard number >= Double(bounds.lowerBound), number <= Double(bounds.upperBound) else {
            return "\(name) must be between \(bounds.lowerBound) and \(bounds.upperBound)"
        }
        return nil
    }

    /// Whether `text` is a UUID in its canonical 8-4-4-4-12 hexadecimal form.
    public static func isUUID(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 36 else { return false }
        for (index, byte) in bytes.enumerated() {
            if [8, 13, 18, 23].contains(index) {
                guard byte == UInt8(ascii: "-") else { return false }
            } else {
                let isHex =
                    (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
                    || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
                guard isHex else { return false }
            }
        }
        return true
    }
}

extension JSONObject {
    /// These outputs marked as a failure: `success` false, `status` `failed`, `message`.
    public func failed(with message: String) -> JSONObject {
        merging(["success": false, "status": "failed", "message": .string(message)])
    }
}
