import Datasets
import SeededRandom
import TestSupport
import Testing

/// Seeded random-mutation fuzzing of the `.npy` and `.npz` parsers: 20,000 inputs in all
/// (10,000 mutated `.npy` files, 5,000 mutated `.npz` byte streams, 5,000 `.npz` files
/// re-zipped around a mutated `.npy`, so that mutations get past the zip CRC). Each input must
/// either throw a `DatasetError` or parse to a self-consistent result; a crash fails the run.
@Suite("Parser fuzzing")
struct FuzzTests {
    static let npyInputs = 10_000, npzByteInputs = 5_000, npzRezippedInputs = 5_000

    /// One random edit: bit flips, truncation, byte insert/delete, or a header-text splice.
    static func mutate(_ input: [UInt8], _ rng: inout SeededGenerator, headerEnd: Int) -> [UInt8] {
        var bytes = input
        switch rng.int(below: 6) {
        case 0:
            for _ in 0...rng.int(below: 8) where !bytes.isEmpty {
                bytes[rng.int(below: bytes.count)] ^= UInt8(1) << UInt8(rng.int(below: 8))
            }
        case 1:
            bytes = Array(bytes.prefix(rng.int(below: bytes.count + 1)))
        case 2:
            bytes.insert(UInt8(rng.int(below: 256)), at: rng.int(below: bytes.count + 1))
        case 3 where !bytes.isEmpty:
            bytes.remove(at: rng.int(below: bytes.count))
        default:
            // Overwrite part of the header text with characters a header is made of.
            let alphabet = Array("0123456789(),: '<>|=iubfTrueFalse{}descrshape_\n".utf8)
            let end = min(headerEnd, bytes.count)
            guard end > 8 else { break }
            let start = 8 + rng.int(below: end - 8)
            for i in start..<min(end, start + 1 + rng.int(below: 6)) {
                bytes[i] = alphabet[rng.int(below: alphabet.count)]
            }
        }
        return bytes
    }

    @Test("10,000 mutated .npy files: throw or parse consistently")
    func npyParser() throws {
        let seeds = [
            makeNPY(descr: "|u1", shape: [2, 3, 3], data: Array(0..<18)),
            makeNPY(descr: "<i8", shape: [3, 1], data: int64Bytes([0, 1, 2]), version: 2),
            makeNPY(descr: ">u2", shape: [2], data: [1, 2, 3, 4], version: 3),
        ]
        var rng = SeededGenerator(seed: 2024)
        // The unmutated seeds parse: the mutations below start from valid files.
        for seed in seeds { _ = try parseNPY(seed, path: "fuzz.npy", entry: "x") }
        var outcomes = Outcomes()
        for _ in 0..<Self.npyInputs {
            let seed = seeds[rng.int(below: seeds.count)]
            var input = Self.mutate(seed, &rng, headerEnd: 128)
            if rng.int(below: 4) == 0 { input = Self.mutate(input, &rng, headerEnd: 128) }
            do {
                let array = try parseNPY(input, path: "fuzz.npy", entry: "x")
                #expect(array.data.count == array.shape.reduce(1, *) * array.dtype.size)
                #expect(array.integers().count == array.shape.reduce(1, *))
                outcomes.parsed += 1
            } catch let error as DatasetError {
                outcomes.reject(error, naming: "fuzz.npy")
            }
        }
        outcomes.check(inputs: Self.npyInputs)
    }

    /// How the mutated inputs fared. A parser that refused everything, or accepted everything,
    /// would not be checking what it reads; a refusal must name the file.
    struct Outcomes {
        var parsed = 0
        var rejected = 0

        mutating func reject(_ error: DatasetError, naming file: String) {
            rejected += 1
            #expect(error.description.contains(file), "the message does not name the file: \(error)")
        }

        func check(inputs: Int, sourceLocation: SourceLocation = #_sourceLocation) {
            // Most mutations hit the header (the files are small) and are refused; some hit the
            // data and parse (42 of 10,000 .npy files and 697 of 10,000 .npz inputs with these seeds).
            #expect(parsed >= inputs / 1000, "only \(parsed) of \(inputs) mutated inputs parsed", sourceLocation: sourceLocation)
            #expect(
                rejected >= inputs / 1000, "only \(rejected) of \(inputs) mutated inputs were refused",
                sourceLocation: sourceLocation)
        }
    }

    @Test("10,000 mutated .npz inputs: throw or parse consistently")
    func npzReader() throws {
        let dir = try makeTemporaryFolder(preferMemory: true)  // 10,000 file writes
        defer { removeTemporary(dir) }
        var rng = SeededGenerator(seed: 77)
        let stored = try makeMedMNIST(n: 2, h: 3, w: 3, splits: ["train", "test"], deflate: false)
        let deflated = try makeMedMNIST(n: 2, h: 3, w: 3, splits: ["val"], deflate: true)
        var unmutated = Outcomes()
        for seed in [stored, deflated] { check(seed, in: dir, &unmutated) }
        #expect(unmutated.parsed == 2, "an unmutated .npz was refused")
        var outcomes = Outcomes()
        for _ in 0..<Self.npzByteInputs {
            let seed = rng.int(below: 2) == 0 ? stored : deflated
            check(Self.mutate(seed, &rng, headerEnd: seed.count), in: dir, &outcomes)
        }
        let labels = makeNPY(descr: "<i8", shape: [2, 1], data: int64Bytes([0, 1]))
        let images = makeNPY(descr: "|u1", shape: [2, 3, 3], data: Array(0..<18))
        for _ in 0..<Self.npzRezippedInputs {
            let mutateImages = rng.int(below: 2) == 0
            let i = mutateImages ? Self.mutate(images, &rng, headerEnd: 128) : images
            let l = mutateImages ? labels : Self.mutate(labels, &rng, headerEnd: 128)
            check(
                try makeNPZ([("train_images.npy", i), ("train_labels.npy", l)], deflate: rng.int(below: 2) == 0),
                in: dir, &outcomes)
        }
        outcomes.check(inputs: Self.npzByteInputs + Self.npzRezippedInputs)
    }

    private func check(_ input: [UInt8], in dir: String, _ outcomes: inout Outcomes) {
        do {
            let parts = try readNPZ(input, in: dir, name: "fuzz.npz")
            for part in parts {
                #expect(part.images.data.count == part.count * part.height * part.width * part.channels)
                #expect(part.labels.count == part.count)
            }
            outcomes.parsed += 1
        } catch let error as DatasetError {
            outcomes.reject(error, naming: "fuzz.npz")
        } catch {
            Issue.record("not a DatasetError: \(error)")
        }
    }
}
