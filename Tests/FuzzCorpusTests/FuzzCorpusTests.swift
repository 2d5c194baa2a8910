import Foundation
import FuzzHarness
import Testing
import _BudPipelineTestSupport

/// Every input of the committed fuzzing corpus (`Fuzz/corpus/<target>/`), including the inputs
/// that once crashed a target, runs through its target on every test run, without the fuzzer.
@Suite struct FuzzCorpusTests {
    static let corpus = Repository.path("Fuzz/corpus")

    @Test(arguments: FuzzHarness.targets.keys.sorted())
    func corpusRuns(target: String) throws {
        let harness = try #require(FuzzHarness.targets[target])
        let directory = (Self.corpus as NSString).appendingPathComponent(target)
        let files = try FileManager.default.subpathsOfDirectory(atPath: directory).sorted()
        var ran = 0
        for file in files {
            let path = (directory as NSString).appendingPathComponent(file)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
                let data = FileManager.default.contents(atPath: path)
            else { continue }
            harness(Array(data))
            ran += 1
        }
        #expect(ran >= 5, "the corpus of \(target) has \(ran) inputs")
    }
}
