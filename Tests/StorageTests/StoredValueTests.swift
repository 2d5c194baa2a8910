import Foundation
import Storage
import Testing

/// Values on their way into a row: dates and text that either store could refuse.
@Suite struct StoredValueTests {
    @Test func datesOutsideTheStorableRangeAreBoundedNotTrapped() {
        #expect(SQLTimestamp.format(Date(timeIntervalSince1970: 1e300)) == "9999-12-31T23:59:59.999999Z")
        #expect(SQLTimestamp.format(Date(timeIntervalSince1970: -1e300)) == "0001-01-01T00:00:00.000000Z")
        #expect(SQLTimestamp.format(Date(timeIntervalSince1970: .nan)) == "9999-12-31T23:59:59.999999Z")
        #expect(SQLTimestamp.format(.distantFuture) == "4001-01-01T00:00:00.000000Z")
        #expect(SQLTimestamp.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000000Z")
    }

    @Test func yearZeroIsNotADate() {
        #expect(SQLTimestamp.parse("0000-01-01T00:00:00Z") == nil)
        #expect(SQLTimestamp.parse("0001-01-01T00:00:00Z") != nil)
    }

    @Test func textIsCutByCodePoints() {
        let marks = String(repeating: "e\u{301}", count: 200)
        #expect(StoredText.truncated(marks, to: 255).unicodeScalars.count == 255)
        #expect(StoredText.truncated("short", to: 255) == "short")
        let a = String(repeating: "x", count: 300) + "a"
        let b = String(repeating: "x", count: 300) + "b"
        #expect(StoredText.key(a) != StoredText.key(b), "long keys that differ stay different")
        #expect(StoredText.key(a).unicodeScalars.count <= 255)
        #expect(StoredText.key(a) == StoredText.key(a))
        #expect(StoredText.key("id-1") == "id-1")
    }
}
