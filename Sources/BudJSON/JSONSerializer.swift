/// How ``JSONValue`` writes its text.
public struct JSONWritingOptions: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Object keys in lexicographic (byte) order instead of insertion order.
    public static let sortedKeys = JSONWritingOptions(rawValue: 1 << 0)
    /// Two-space indentation and one member per line.
    public static let prettyPrinted = JSONWritingOptions(rawValue: 1 << 1)
}

extension JSONValue {
    /// The JSON text of the value as UTF-8 bytes.
    ///
    /// Non-finite doubles, which JSON cannot express, are written as `null`.
    public func serialized(options: JSONWritingOptions = []) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(512)
        write(to: &output, options: options)
        return output
    }

    /// The JSON text of the value.
    public func serializedString(options: JSONWritingOptions = []) -> String {
        String(decoding: serialized(options: options), as: UTF8.self)
    }

    /// Appends the JSON text of the value to `output`.
    public func write(to output: inout [UInt8], options: JSONWritingOptions = []) {
        var writer = JSONWriter(options: options)
        writer.write(self, to: &output)
    }
}

struct JSONWriter {
    let sortedKeys: Bool
    let pretty: Bool
    private var indentation = 0

    init(options: JSONWritingOptions) {
        sortedKeys = options.contains(.sortedKeys)
        pretty = options.contains(.prettyPrinted)
    }

    mutating func write(_ value: JSONValue, to output: inout [UInt8]) {
        switch value {
        case .null: output.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])
        case .bool(true): output.append(contentsOf: [0x74, 0x72, 0x75, 0x65])
        case .bool(false): output.append(contentsOf: [0x66, 0x61, 0x6C, 0x73, 0x65])
        case .int(let number): Self.writeInteger(number, to: &output)
        case .double(let number): Self.writeDouble(number, to: &output)
        case .string(let text): Self.writeString(text, to: &output)
        case .array(let elements): writeArray(elements, to: &output)
        case .object(let members): writeObject(members, to: &output)
        }
    }

    private mutating func writeArray(_ elements: [JSONValue], to output: inout [UInt8]) {
        output.append(UInt8(ascii: "["))
        if elements.isEmpty {
            output.append(UInt8(ascii: "]"))
            return
        }
        indentation += 1
        for (position, element) in elements.enumerated() {
            if position > 0 { output.append(UInt8(ascii: ",")) }
            newline(&output)
            write(element, to: &output)
        }
        indentation -= 1
        newline(&output)
        output.append(UInt8(ascii: "]"))
    }

    private mutating func writeObject(_ members: JSONObject, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "{"))
        if members.isEmpty {
            output.append(UInt8(ascii: "}"))
            return
        }
        indentation += 1
        if sortedKeys {
            for (position, member) in members.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }).enumerated() {
                writeMember(member.key, member.value, first: position == 0, to: &output)
            }
        } else {
            var first = true
            for (key, value) in members {
                writeMember(key, value, first: first, to: &output)
                first = false
            }
        }
        indentation -= 1
        newline(&output)
        output.append(UInt8(ascii: "}"))
    }

    private mutating func writeMember(_ key: String, _ value: JSONValue, first: Bool, to output: inout [UInt8]) {
        if !first { output.append(UInt8(ascii: ",")) }
        newline(&output)
        Self.writeString(key, to: &output)
        output.append(UInt8(ascii: ":"))
        if pretty { output.append(UInt8(ascii: " ")) }
        write(value, to: &output)
    }

    private func newline(_ output: inout [UInt8]) {
        guard pretty else { return }
        output.append(UInt8(ascii: "\n"))
        output.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indentation * 2))
    }

    static func writeInteger(_ number: Int, to output: inout [UInt8]) {
        var magnitude = number.magnitude
        let start = output.count
        repeat {
            output.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        if number < 0 { output.append(UInt8(ascii: "-")) }
        output[start...].reverse()
    }

    static func writeDouble(_ number: Double, to output: inout [UInt8]) {
        guard number.isFinite else {
            output.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])
            return
        }
        output.append(contentsOf: number.description.utf8)
    }

    static func writeString(_ text: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            var runStart = 0
            for position in bytes.indices {
                let byte = bytes[position]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<position]))
                appendEscape(for: byte, to: &output)
                runStart = position + 1
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...]))
        }
        output.append(UInt8(ascii: "\""))
    }

    private static func appendEscape(for byte: UInt8, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\\"))
        switch byte {
        case UInt8(ascii: "\""): output.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): output.append(UInt8(ascii: "\\"))
        case 0x08: output.append(UInt8(ascii: "b"))
        case 0x0C: output.append(UInt8(ascii: "f"))
        case 0x0A: output.append(UInt8(ascii: "n"))
        case 0x0D: output.append(UInt8(ascii: "r"))
        case 0x09: output.append(UInt8(ascii: "t"))
        default:
            let hex: [UInt8] = Array("0123456789abcdef".utf8)
            output.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
        }
    }
}
