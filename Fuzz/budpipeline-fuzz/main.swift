// libFuzzer driver for the targets of FuzzHarness: `budpipeline-fuzz <target> [libFuzzer options]
// [corpus directories]`. Built only with BUDPIPELINE_FUZZ=1 and `-sanitize=fuzzer` (see
// scripts/fuzz.sh), so libFuzzer supplies the fuzzing loop and this file its entry.
import FuzzHarness

#if canImport(Glibc)
    import Glibc
#endif

@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzer(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

let arguments = CommandLine.arguments
guard arguments.count >= 2, let target = FuzzHarness.targets[arguments[1]] else {
    let names = FuzzHarness.targets.keys.sorted().joined(separator: ", ")
    print("usage: budpipeline-fuzz <target> [libFuzzer options] [corpus...]; targets: \(names)")
    exit(2)
}
let selected = target

// libFuzzer sees the program name and the options after the target.
var fuzzerArguments = [arguments[0]] + arguments.dropFirst(2)
var pointers: [UnsafeMutablePointer<CChar>?] = fuzzerArguments.map { strdup($0) } + [nil]
var argc = CInt(fuzzerArguments.count)
let status = pointers.withUnsafeMutableBufferPointer { buffer -> CInt in
    var argv = buffer.baseAddress
    return runFuzzer(&argc, &argv) { data, size in
        selected(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
        return 0
    }
}
exit(status)
