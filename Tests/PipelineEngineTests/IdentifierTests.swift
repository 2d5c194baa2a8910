import Foundation
import PipelineEngine
import Testing

@Suite("Identifiers")
struct IdentifierTests {
    @Test("new ids are lower-case version 7 UUIDs that Foundation and the strict reader accept")
    func newIDsAreVersion7UUIDs() throws {
        let before = UInt64(Date().timeIntervalSince1970 * 1000)
        var seen = Set<String>()
        for _ in 0..<2_000 {
            let text = UUIDText.random()
            #expect(UUIDText.normalized(text) == text, "\(text)")
            let uuid = try #require(UUID(uuidString: text))
            #expect(uuid.uuidString.lowercased() == text)
            let bytes = uuid.uuid
            #expect(bytes.6 >> 4 == 7, "version of \(text)")
            #expect(bytes.8 >> 6 == 0b10, "variant of \(text)")
            let milliseconds = [bytes.0, bytes.1, bytes.2, bytes.3, bytes.4, bytes.5].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            #expect(milliseconds >= before && milliseconds <= UInt64(Date().timeIntervalSince1970 * 1000), "time of \(text)")
            seen.insert(text)
        }
        #expect(seen.count == 2_000)
    }

    /// Webhook, trigger and schedule ids: an unauthenticated webhook is called by its id alone,
    /// so nothing of it may be predictable — no time, every bit but version and variant random.
    @Test("unguessable ids are version 4 UUIDs whose 122 other bits all vary")
    func unguessableIDsAreVersion4() throws {
        var ored: [UInt8] = Array(repeating: 0, count: 16)
        var anded: [UInt8] = Array(repeating: 0xFF, count: 16)
        var seen = Set<String>()
        for _ in 0..<500 {
            let text = UUIDText.unguessable()
            #expect(UUIDText.normalized(text) == text, "\(text)")
            let uuid = try #require(UUID(uuidString: text))
            let bytes = withUnsafeBytes(of: uuid.uuid) { Array($0) }
            #expect(bytes[6] >> 4 == 4, "version of \(text)")
            #expect(bytes[8] >> 6 == 0b10, "variant of \(text)")
            for index in bytes.indices {
                ored[index] |= bytes[index]
                anded[index] &= bytes[index]
            }
            seen.insert(text)
        }
        #expect(seen.count == 500)
        // Fixed bits: the version's four (byte 6, high nibble) and the variant's two (byte 8).
        var fixedMask: [UInt8] = Array(repeating: 0, count: 16)
        fixedMask[6] = 0xF0
        fixedMask[8] = 0xC0
        for index in 0..<16 {
            #expect(ored[index] | fixedMask[index] == 0xFF && anded[index] & ~fixedMask[index] == 0, "byte \(index)")
        }
    }

    @Test("ids made in a later millisecond sort after earlier ones")
    func laterIDsSortAfter() async throws {
        let first = UUIDText.random()
        try await Task.sleep(for: .milliseconds(3))
        let second = UUIDText.random()
        #expect(first < second)
        #expect(ExecutionID(first) < ExecutionID(second))
    }

    @Test("every random bit varies: no digit outside the time, version and variant is stuck")
    func randomBitsVary() {
        var ored = [UInt8](repeating: 0, count: 36)
        var anded = [UInt8](repeating: 0xFF, count: 36)
        for _ in 0..<500 {
            for (index, byte) in UUIDText.random().utf8.enumerated() where byte != UInt8(ascii: "-") {
                let value = byte <= UInt8(ascii: "9") ? byte &- UInt8(ascii: "0") : byte &- UInt8(ascii: "a") &+ 10
                ored[index] |= value
                anded[index] &= value
            }
        }
        // Digits 0–12 hold the time (dash at 8), 14 the version, 19 the variant.
        for index in 14..<36 where ![18, 23, 14, 19].contains(index) {
            #expect(ored[index] == 0xF && anded[index] == 0, "digit \(index)")
        }
        #expect(ored[19] == 0b1011 && anded[19] == 0b1000, "variant digit")
        #expect(ExecutionID.generate() != ExecutionID.generate())
    }
}
