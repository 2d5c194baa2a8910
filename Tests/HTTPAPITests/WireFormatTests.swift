import BudJSON
import PipelineEngine
import Testing

@testable import HTTPAPI

@Suite("Wire formats")
struct WireFormatTests {
    @Test(
        "percentages are decimal strings with two places, clamped to 0...100",
        arguments: [
            (0.0, "0.00"), (45.0, "45.00"), (33.333, "33.33"), (66.666, "66.67"), (99.999, "100.00"), (100.0, "100.00"),
            (250.0, "100.00"), (-3.0, "0.00"), (0.05, "0.05"), (7.1, "7.10"), (Double.nan, "0.00"),
        ])
    func percentage(value: Double, text: String) {
        #expect(Representation.percentage(value) == .string(text))
    }

    @Test("UUIDs are read in any case, trimmed, and written lower-case")
    func uuids() {
        let canonical = "3f2b8c1e-5a4d-4e6f-9a7b-0c1d2e3f4a5b"
        #expect(UUIDText.normalized(canonical) == canonical)
        #expect(UUIDText.normalized(canonical.uppercased()) == canonical)
        #expect(UUIDText.normalized(" \(canonical) ") == canonical)
        for invalid in [
            "", "not-a-uuid", "3f2b8c1e-5a4d-4e6f-9a7b-0c1d2e3f4a5", "3f2b8c1e-5a4d-4e6f-9a7b-0c1d2e3f4a5bb",
            "3f2b8c1e5a4d-4e6f-9a7b-0c1d2e3f4a5b0", "3f2b8c1e-5a4d-4e6f-9a7b-0c1d2e3f4a5g", "3f2b8c1e-5a4d-4e6f-9a7b+0c1d2e3f4a5b",
            "-3f2b8c1-5a4d-4e6f-9a7b-0c1d2e3f4a5b",
        ] {
            #expect(UUIDText.normalized(invalid) == nil, "\(invalid)")
            #expect(ExecutionID(parsing: invalid) == nil, "\(invalid)")
        }
        #expect(ExecutionID(parsing: canonical.uppercased())?.rawValue == canonical)
    }
}
