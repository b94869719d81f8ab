import Foundation
import Fuzzing

// `medsynth-fuzz [--count N] [--seed S] [--max-resident-mib M] FILE...`: the readers fed mutated
// copies of real seed files (PNG, JPEG, DICOM, MedMNIST .npz); prints the counts by outcome.
//
// A separate executable rather than a hidden `medsynth data fuzz`: it links only the readers
// (Datasets) and not the server, tracking and training stack, so its release build takes a
// fraction of the tool's, and the peak memory it reports is the readers' alone. It is not in CI
// (a million inputs take minutes); tests drive `ReaderFuzz` with a thousand.

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("medsynth-fuzz: \(message)\n".utf8))
    exit(64)
}

/// `value`, or the end with `message` when it is nil.
func required<T>(_ value: T?, _ message: @autoclosure () -> String) -> T {
    guard let value else { fail(message()) }
    return value
}

var count = 100_000, seed: UInt64 = 0, ceilingMiB = 1024, files: [String] = []
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    func value() -> String { required(arguments.popFirst(), "\(argument) needs a value") }
    switch argument {
    case "--count": count = required(Int(value()), "--count: not a whole number")
    case "--seed": seed = required(UInt64(value()), "--seed: not a whole number >= 0")
    case "--max-resident-mib": ceilingMiB = required(Int(value()), "--max-resident-mib: not a whole number")
    case "-h", "--help":
        print("usage: medsynth-fuzz [--count N] [--seed S] [--max-resident-mib M] FILE...")
        exit(0)
    default:
        if argument.hasPrefix("-") { fail("unknown option \(argument)") }
        files.append(argument)
    }
}
guard ReaderFuzz.inputRange.contains(count) else { fail("--count \(count) is out of range \(ReaderFuzz.inputRange)") }
guard ReaderFuzz.residentMiBRange.contains(ceilingMiB) else {
    fail("--max-resident-mib \(ceilingMiB) is out of range \(ReaderFuzz.residentMiBRange)")
}
guard !files.isEmpty else { fail("give at least one seed file") }

let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-fuzz-\(UUID().uuidString)").path
do {
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let seeds = try ReaderFuzz.seeds(from: files, scratch: scratch)
    let report = try ReaderFuzz.run(
        seeds: seeds, count: count, seed: seed, maxResidentBytes: ceilingMiB << 20, scratch: scratch
    ) { FileHandle.standardError.write(Data("\($0) inputs\n".utf8)) }
    print(report.summary)
} catch {
    FileHandle.standardError.write(Data("medsynth-fuzz: \(error)\n".utf8))
    exit(1)
}
