import Foundation
import PipelineEngine
import Testing

@Suite("Identifiers")
struct IdentifierTests {
    @Test("new ids are lower-case version 4 UUIDs that Foundation and the strict reader accept")
    func newIDsAreVersion4UUIDs() throws {
        var seen = Set<String>()
        for _ in 0..<2_000 {
            let text = UUIDText.random()
            #expect(UUIDText.normalized(text) == text, "\(text)")
            let uuid = try #require(UUID(uuidString: text))
            #expect(uuid.uuidString.lowercased() == text)
            let bytes = uuid.uuid
            #expect(bytes.6 >> 4 == 4, "version of \(text)")
            #expect(bytes.8 >> 6 == 0b10, "variant of \(text)")
            seen.insert(text)
        }
        #expect(seen.count == 2_000)
    }

    @Test("every random bit varies: no digit outside the version and variant is stuck")
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
        for index in 0..<36 where ![8, 13, 18, 23, 14, 19].contains(index) {
            #expect(ored[index] == 0xF && anded[index] == 0, "digit \(index)")
        }
        #expect(ored[19] == 0b1011 && anded[19] == 0b1000, "variant digit")
        #expect(ExecutionID.generate() != ExecutionID.generate())
    }
}
