import Testing

@testable import WorkMarks

/// The record a mark keeps in its slot reads back as the mark, whatever its ids hold.
@Suite struct WorkMarkRecordTests {
    @Test func recordsReadBack() throws {
        let marks = [
            WorkMark(kind: .execute, executionID: "3f2b8c1e-0000-4000-8000-000000000001", stepIDs: ["deploy"], plugin: "p", action: "a"),
            WorkMark(kind: .transition, executionID: "e", stepIDs: []),
            WorkMark(kind: .onEvent, executionID: "e\"x\\y", stepIDs: ["étape", "ステップ", "q\"uote"], plugin: "π", action: nil),
        ]
        for mark in marks {
            #expect(WorkMark(record: mark.record) == mark, "\(String(decoding: mark.record, as: UTF8.self))")
        }
    }

    @Test func recordsFitTheirSlot() throws {
        let many = WorkMark(kind: .transition, executionID: "e", stepIDs: (0..<100).map { String(repeating: "s", count: 90) + "\($0)" })
        let record = many.record
        #expect(record.count <= 1008)
        let read = try #require(WorkMark(record: record))
        #expect(!read.stepIDs.isEmpty && read.stepIDs.count < 100, "the steps that fit are kept")
        let long = WorkMark(kind: .execute, executionID: "e", stepIDs: ["s"], plugin: String(repeating: "é", count: 300), action: "a")
        #expect(WorkMark(record: long.record) != nil, "a long name is cut between characters")
    }

    @Test func malformedFilesGiveNothing() {
        #expect(WorkMarks.parse([]).isEmpty)
        #expect(WorkMarks.parse(Array(repeating: 0xFF, count: 4096)).isEmpty)
    }
}

/// One death is one count per step, whatever marks name it.
@Suite struct InterruptionChargeTests {
    @Test func aStepNamedByACallAndItsTransitionIsChargedOnce() {
        let process = EndedProcess(
            worker: "w",
            marks: [
                WorkMark(kind: .execute, executionID: "e1", stepIDs: ["deploy"], plugin: "p", action: "a"),
                WorkMark(kind: .transition, executionID: "e1", stepIDs: ["deploy", "notify"]),
                WorkMark(kind: .transition, executionID: "e2", stepIDs: []),
                WorkMark(kind: .transition, executionID: "e2", stepIDs: []),
            ])
        #expect(process.charges.map(\.executionID) == ["e1", "e2"])
        #expect(process.charges.map(\.stepIDs) == [["deploy", "notify"], []])
        #expect(process.charges.map(\.marks.count) == [2, 2])
    }

    @Test func aFatalSignalNarrowsTheChargeToTheWorkItNamed() {
        var crashed = WorkMark(kind: .execute, executionID: "e1", stepIDs: ["deploy"], plugin: "p", action: "a")
        crashed.signal = 11
        let process = EndedProcess(
            worker: "w", marks: [crashed, WorkMark(kind: .execute, executionID: "e2", stepIDs: ["other"], plugin: "p", action: "b")])
        #expect(process.charges == [InterruptionCharge(executionID: "e1", stepIDs: ["deploy"], marks: [crashed])])
    }
}
