import Datasets
import Foundation
import SeededRandom

/// Seeded mutation fuzzing of the readers the tool uses on untrusted files: PNG, JPEG and DICOM
/// through `decodeImage` (what the data loader and the server call), `.npz` files through
/// `readMedMNISTArrays` and `.npy` arrays through `parseNPY`. What `medsynth-fuzz` (bench/fuzz) runs.
///
/// Each input is one real seed file with one to three mutations stacked: byte flips, a
/// truncation, a length-field edit (2 or 4 bytes, either byte order, set to 0, 1, a boundary or
/// all ones) or a splice from another seed. Every input must end in a decoded image or a
/// `DatasetError`; a crash ends the run (so a finished run shows there was none), and the peak
/// resident memory is checked against a ceiling every 1,000 inputs and at the end.
public enum ReaderFuzz {
    /// What a seed is read as.
    public enum Kind: String, CaseIterable, Sendable { case png, jpeg, dicom, npz, npy }

    /// A real file to mutate.
    public struct Seed: Sendable {
        public var kind: Kind
        public var name: String
        public var bytes: [UInt8]
        public init(kind: Kind, name: String, bytes: [UInt8]) { self.kind = kind; self.name = name; self.bytes = bytes }
    }

    /// The run's outcome.
    public struct Report: Sendable, Equatable {
        /// Inputs fed, per kind.
        public var inputs: [Kind: Int] = [:]
        /// Outcomes: "decoded", or the `DatasetError` case that refused the input.
        public var outcomes: [String: Int] = [:]
        /// The process's peak resident memory at the end, in bytes.
        public var peakResidentBytes = 0
        public var seconds = 0.0

        /// Counts by outcome, one per line, most frequent first.
        public var summary: String {
            let total = inputs.values.reduce(0, +)
            let kinds = Kind.allCases.compactMap { k in inputs[k].map { "\(k.rawValue) \($0)" } }.joined(separator: ", ")
            let lines = outcomes.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "  \($0.key): \($0.value)" }
            return "\(total) inputs (\(kinds)) in \(String(format: "%.0f", seconds)) s, no crash; peak resident memory "
                + "\(peakResidentBytes >> 20) MiB\n" + lines.joined(separator: "\n")
        }
    }

    /// Most inputs of one run, and the range of the resident-memory ceiling in MiB.
    public static let inputRange = 1...100_000_000, residentMiBRange = 64...1_048_576

    /// The resident-memory ceiling was passed.
    public struct MemoryCeilingExceeded: Error, CustomStringConvertible {
        public var input: Int, kind: Kind, peakBytes: Int, ceilingBytes: Int
        public var description: String {
            "peak resident memory \(peakBytes >> 20) MiB passed the ceiling of \(ceilingBytes >> 20) MiB "
                + "by input \(input) (\(kind.rawValue))"
        }
    }

    /// The seeds made from real files: PNG, JPEG and DICOM files as they are; an `.npz` cut to
    /// its first 4 images per split (re-zipped in `scratch`), and that cut's images array as an
    /// `.npy`, so a mutation costs microseconds rather than a megabyte copy.
    public static func seeds(from paths: [String], scratch: String) throws -> [Seed] {
        var seeds: [Seed] = []
        for path in paths {
            let bytes = try readFileBytes(path, limit: defaultMaxArchiveBytes)
            let name = URL(fileURLWithPath: path).lastPathComponent
            if bytes.starts(with: Array("PK".utf8)) {
                var arrays: [(name: String, array: NPYArray)] = []
                for split in try readMedMNISTArrays(at: path) {
                    let n = min(4, split.images.shape[0]), per = split.images.count / max(split.images.shape[0], 1)
                    let shape = [n] + split.images.shape.dropFirst()
                    let images = NPYArray.uint8(Array(split.images.data.prefix(n * per)), shape: shape)
                    arrays += [
                        (split.imagesEntry, images),
                        ("\(split.split.rawValue)_labels", NPYArray.int64(Array(split.labels.prefix(n)), shape: [n, 1])),
                    ]
                }
                let small = scratch + "/seed-\(seeds.count).npz"
                try writeNPZ(arrays, to: small)
                seeds.append(Seed(kind: .npz, name: name, bytes: try readFileBytes(small)))
                if let first = arrays.first {
                    seeds.append(Seed(kind: .npy, name: name + ":" + first.name, bytes: encodeNPY(first.array)))
                }
            } else if hasDICOMPreamble(bytes) {
                seeds.append(Seed(kind: .dicom, name: name, bytes: bytes))
            } else if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) {
                seeds.append(Seed(kind: .png, name: name, bytes: bytes))
            } else if bytes.starts(with: [0xFF, 0xD8, 0xFF]) {
                seeds.append(Seed(kind: .jpeg, name: name, bytes: bytes))
            } else {
                throw DatasetError.notAnImage(path: path)
            }
        }
        return seeds
    }

    /// One to three stacked mutations of `input` (`donor`: another seed, for splices).
    public static func mutate(_ input: [UInt8], donor: [UInt8], _ g: inout SeededGenerator) -> [UInt8] {
        var bytes = input
        for _ in 0...g.int(below: 3) {
            switch g.int(below: 4) {
            case 0:  // byte flips: a bit, or a whole random byte
                for _ in 0...g.int(below: 8) where !bytes.isEmpty {
                    let i = g.int(below: bytes.count)
                    bytes[i] = g.int(below: 2) == 0 ? bytes[i] ^ (1 << UInt8(g.int(below: 8))) : UInt8(g.int(below: 256))
                }
            case 1:  // truncation
                bytes = Array(bytes.prefix(g.int(below: bytes.count + 1)))
            case 2:  // a length field: 2 or 4 bytes at a random place, either byte order, a telling value
                let width = g.int(below: 2) == 0 ? 2 : 4
                guard bytes.count >= width else { break }
                let values: [UInt64] = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF]
                var value = values[g.int(below: values.count)] & (width == 2 ? 0xFFFF : 0xFFFF_FFFF)
                if g.int(below: 3) == 0 { value = UInt64(bytes.count) &+ UInt64(g.int(below: 64)) }
                let at = g.int(below: bytes.count - width + 1), bigEndian = g.int(below: 2) == 0
                for k in 0..<width {
                    let shift = UInt64(8 * (bigEndian ? width - 1 - k : k))
                    bytes[at + k] = UInt8(truncatingIfNeeded: value >> shift)
                }
            default:  // a splice: a run of the donor's bytes over or into this input
                guard !donor.isEmpty else { break }
                let from = g.int(below: donor.count), length = 1 + g.int(below: min(256, donor.count - from))
                let piece = donor[from..<(from + length)], at = g.int(below: bytes.count + 1)
                if g.int(below: 2) == 0 {
                    bytes.insert(contentsOf: piece, at: at)
                } else {
                    bytes.replaceSubrange(at..<min(bytes.count, at + length), with: piece)
                }
            }
        }
        return bytes
    }

    /// Feeds `count` mutated inputs, round robin over the seeds, to the readers; `scratch` holds
    /// the one `.npz` file being read. `progress` gets the inputs done every 10,000.
    public static func run(
        seeds: [Seed], count: Int, seed: UInt64, maxResidentBytes: Int, scratch: String, progress: (Int) -> Void = { _ in }
    ) throws -> Report {
        precondition(!seeds.isEmpty, "no seed files")
        var g = SeededGenerator(seed: seed), report = Report()
        let start = Date(), npzPath = scratch + "/input.npz"
        let limits = (pixels: 4096 * 4096, bytes: 64 << 20)
        for i in 0..<count {
            let s = seeds[i % seeds.count], donor = seeds[g.int(below: seeds.count)].bytes
            let input = mutate(s.bytes, donor: donor, &g)
            report.inputs[s.kind, default: 0] += 1
            let outcome: String
            do {
                switch s.kind {
                case .png, .jpeg, .dicom: _ = try decodeImage(input, path: "input \(i)", maxPixels: limits.pixels)
                case .npy: _ = try parseNPY(input, path: "input \(i)", entry: "fuzz")
                case .npz:
                    guard FileManager.default.createFile(atPath: npzPath, contents: Data(input)) else {
                        throw DatasetError.writeFailed(path: npzPath, reason: "could not write the input")
                    }
                    _ = try readMedMNISTArrays(at: npzPath, maxBytes: limits.bytes)
                }
                outcome = "decoded"
            } catch let error as DatasetError {
                outcome = Mirror(reflecting: error).children.first?.label ?? "\(error)"
            } catch {
                outcome = "other error: \(type(of: error))"
            }
            report.outcomes["\(s.kind.rawValue) \(outcome)", default: 0] += 1
            if (i + 1) % 1000 == 0 || i + 1 == count {
                let peak = peakResidentBytes()
                if peak > maxResidentBytes {
                    throw MemoryCeilingExceeded(input: i, kind: s.kind, peakBytes: peak, ceilingBytes: maxResidentBytes)
                }
                if (i + 1) % 10_000 == 0 { progress(i + 1) }
            }
        }
        report.peakResidentBytes = peakResidentBytes()
        report.seconds = Date().timeIntervalSince(start)
        return report
    }

    /// This process's peak resident memory in bytes (`ru_maxrss`, kilobytes on Linux).
    public static func peakResidentBytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
    }
}
