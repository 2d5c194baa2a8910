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

    @Test func timestampsMatchTheCalendarAndReadBackToTheMicrosecond() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = try #require(TimeZone(identifier: "UTC"))
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            // Whole microseconds between 1900 and 2090: beyond, a Date (a Double of seconds since
            // 2001) no longer holds every microsecond.
            let microseconds = Int64.random(in: -2_208_988_800_000_000...3_786_825_600_000_000, using: &generator)
            let date = Date(timeIntervalSince1970: Double(microseconds) / 1_000_000)
            let text = SQLTimestamp.format(date)
            let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
            let fraction = ((microseconds % 1_000_000) + 1_000_000) % 1_000_000
            let expected = String(
                format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0, parts.hour ?? 0,
                parts.minute ?? 0, parts.second ?? 0, Int(fraction))
            #expect(text == expected)
            let back = try #require(SQLTimestamp.parse(text))
            #expect(SQLTimestamp.format(back) == text)
        }
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
