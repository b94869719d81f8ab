import Datasets
import Foundation
import Hashing
import SeededRandom
import TestSupport
import Testing
import ZIPFoundation

@testable import Autodiff
@testable import GAN
@testable import NN

// MARK: Helpers

/// A tiny GAN (widths 4, 28x28 gray) trained for a few steps on noise, its checkpoint written.
func trainTiny(
    classNames: [String], conditional: Bool = false, spectralNorm: Bool = false, maxSteps: Int = 3,
    dir: URL = temporaryDirectory()
) throws -> GANTrainer {
    let config = try DCGANConfig(
        imageSize: 28, channels: 1, generatorWidth: 4, discriminatorWidth: 4,
        classes: conditional ? classNames.count : nil, spectralNorm: spectralNorm)
    var options = GANTrainingOptions()
    options.batchSize = 4
    if spectralNorm { options.loss = .hinge }
    var plan = GANTrainingPlan()
    plan.epochs = 100; plan.maxSteps = maxSteps; plan.seed = 7; plan.checkpointEvery = 1000; plan.gridEvery = 1000
    var data = tinyData()
    data.classNames = classNames
    if conditional { data.labels = (0..<data.count).map { $0 % classNames.count } }
    let trainer = try GANTrainer(
        model: GANModel(config: config, options: options, seed: 7), data: data, plan: plan,
        outputDirectory: dir)
    try trainer.run()
    return trainer
}

/// Every array of an npz, read with ZIPFoundation and our own `.npy` parser.
func readAllNPZ(_ path: String) throws -> [String: NPYArray] {
    let archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
    var out: [String: NPYArray] = [:]
    for entry in archive {
        var bytes = [UInt8]()
        _ = try archive.extract(entry) { bytes.append(contentsOf: $0) }
        let name = String(entry.path.dropLast(4))
        out[name] = try parseNPY(bytes, path: path, entry: name)
    }
    return out
}

/// Whether python3 imports numpy (waiting off the cooperative pool: TestSupport's `exited`).
func numpyAvailable() async -> Bool {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", "import numpy"]
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return false }
    await exited(p)
    return p.terminationStatus == 0
}

/// Runs python3 with `script`; returns its standard output.
func python(_ script: String, _ args: [String]) async throws -> String {
    let p = Process(), pipe = Pipe()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script] + args
    p.standardOutput = pipe
    try p.run()
    let output = await exited(p, reading: pipe)
    #expect(p.terminationStatus == 0)
    return String(decoding: output, as: UTF8.self)
}

/// Runs the medsynth executable; returns its exit status.
func medsynth(_ args: [String]) async throws -> Int32 {
    let exe = try #require(medsynthExecutable(), "medsynth executable not found next to the tests")
    let p = Process()
    p.executableURL = exe
    p.arguments = args
    p.standardError = FileHandle.nullDevice
    try p.run()
    await exited(p)
    return p.terminationStatus
}

// MARK: Sampling

@Test func samplingIsDeterministicInRangeAndUsesTheEMAWeights() throws {
    let trainer = try trainTiny(classNames: ["lesion"])
    let source = try SyntheticImageSource(checkpoint: trainer.checkpointURL)
    source.batchSize = 4
    #expect(source.classNames == ["lesion"] && source.trainingSplit == SplitChoice(seed: 7))
    let a = try source.generate(className: nil, count: 6, seed: 5)
    #expect(a.count == 6 * 28 * 28)
    #expect(a.allSatisfy { $0 >= -1 && $0 <= 1 })
    #expect(try source.generate(className: "lesion", count: 6, seed: 5) == a)
    #expect(try source.generate(className: nil, count: 6, seed: 6) != a)
    #expect(Array(a.prefix(3 * 784)) == (try source.generate(className: nil, count: 3, seed: 5)))
    // The first batch equals the trained model's own EMA sample for the same latent vectors.
    var g = SeededGenerator(seed: 5)
    let z = Tensor.randomNormal([4, 100, 1, 1], generator: &g)
    #expect(try trainer.model.sample(latent: z).scalars == Array(a.prefix(4 * 784)))
    // Sampling leaves the model as it was.
    #expect(try source.generate(className: nil, count: 6, seed: 5) == a)
    let scores = try source.discriminatorScores(a)
    #expect(scores.count == 6 && scores.allSatisfy(\.isFinite))
    #expect(try source.discriminatorScores(a) == scores)
}

@Test func conditionalSamplingNeedsAKnownClass() throws {
    let trainer = try trainTiny(classNames: ["a", "b", "c"], conditional: true)
    let source = try SyntheticImageSource(checkpoint: trainer.checkpointURL)
    source.batchSize = 4
    #expect(throws: SamplingError.classRequired(path: trainer.checkpointURL.path, known: ["a", "b", "c"])) {
        try source.generate(className: nil, count: 2, seed: 1)
    }
    do {
        _ = try source.generate(className: "z", count: 2, seed: 1)
        Issue.record("an unknown class was accepted")
    } catch let error as SamplingError {
        #expect("\(error)".contains("\"z\"") && "\(error)".contains("a, b, c"))
    }
    #expect(try source.generate(className: "a", count: 2, seed: 1) != source.generate(className: "c", count: 2, seed: 1))
    let perClass = try SyntheticImageSource(checkpoint: trainTiny(classNames: ["x"]).checkpointURL)
    #expect(throws: SamplingError.self) { try perClass.generate(className: "y", count: 1, seed: 1) }
}

@Test func foreignCheckpointsAreRefused() throws {
    let dir = temporaryDirectory()
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    // A classifier checkpoint: valid safetensors, another format.
    var g = SeededGenerator(seed: 1)
    let classifier = dir.appendingPathComponent("classifier.safetensors")
    try Checkpoint.save(
        modules: ["model": Linear(4, 2, generator: &g)], metadata: ["format": "medsynth-classifier-1"],
        to: classifier)
    // Random bytes.
    let junk = dir.appendingPathComponent("junk.safetensors")
    try Data((0..<100).map { UInt8($0) }).write(to: junk)
    for url in [classifier, junk, dir.appendingPathComponent("missing.safetensors")] {
        do {
            _ = try SyntheticImageSource(checkpoint: url)
            Issue.record("\(url.lastPathComponent) was accepted")
        } catch let error as SamplingError {
            #expect("\(error)".contains(url.path), "\(error)")
        }
    }
}

@Test func samplesAreWrittenAsPNGsAndNPZ() throws {
    let trainer = try trainTiny(classNames: ["x"])
    let source = try SyntheticImageSource(checkpoint: trainer.checkpointURL)
    source.batchSize = 4
    let pixels = try source.generate(className: nil, count: 5, seed: 2)
    let bytes = imageBytes(pixels, channels: 1, size: 28)
    let dir = temporaryDirectory()
    let files = try writeImages(pixels, labels: Array(repeating: 0, count: 5), channels: 1, size: 28, to: dir.path)
    #expect(files.map { ($0 as NSString).lastPathComponent } == (0..<5).map { String(format: "sample-%05d.png", $0) })
    for (f, b) in zip(files, bytes) {
        let image = try decodeImage(at: f)
        #expect(image.width == 28 && image.channels == 1 && image.pixels == b)
    }
    // RGB: HWC interleaving of NCHW planes.
    let rgb: [Float] = (0..<(2 * 3 * 4)).map { Float($0 % 3) - 1 }  // (2, 3, 2, 2)
    let rgbBytes = imageBytes(rgb, channels: 3, size: 2)
    #expect(rgbBytes.count == 2 && Array(rgbBytes[0].prefix(6)) == [0, 128, 255, 128, 255, 0])
    let npz = dir.appendingPathComponent("new-folder/rgb.npz").path  // the folder is created
    try writeImages(rgb, labels: [3, 4], channels: 3, size: 2, to: npz)
    let arrays = try readAllNPZ(npz)
    #expect(arrays["images"]?.shape == [2, 2, 2, 3] && arrays["images"]?.data == rgbBytes.flatMap { $0 })
    #expect(arrays["labels"]?.shape == [2] && arrays["labels"]?.integers() == [3, 4])
    let grayNPZ = dir.appendingPathComponent("gray.npz").path
    try writeImages(pixels, labels: Array(repeating: 1, count: 5), channels: 1, size: 28, to: grayNPZ)
    #expect(try readAllNPZ(grayNPZ)["images"]?.shape == [5, 28, 28])
}

@Test(.enabled("python3 with numpy") { await numpyAvailable() })
func numpyReadsTheNPZ() async throws {
    let dir = temporaryDirectory()
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let pixels: [Float] = (0..<(3 * 3 * 5 * 5)).map { Float($0 % 17) / 8 - 1 }
    let path = dir.appendingPathComponent("s.npz").path
    try writeImages(pixels, labels: [0, 1, 2], channels: 3, size: 5, to: path)
    let out = try await python(
        """
        import sys, numpy as np
        d = np.load(sys.argv[1])
        print(d['images'].dtype, d['images'].shape, d['labels'].dtype, d['labels'].tolist(), int(d['images'].sum()))
        """, [path])
    let total = imageBytes(pixels, channels: 3, size: 5).flatMap { $0 }.reduce(0) { $0 + Int($1) }
    #expect(out.trimmingCharacters(in: .whitespacesAndNewlines) == "uint8 (3, 5, 5, 3) int64 [0, 1, 2] \(total)")
}

// MARK: Balancing

/// A labelled training set: `counts[c]` noise images of class c (28x28 gray, [-1, 1]).
func tinyTrainingSet(_ counts: [Int], names: [String]) -> LabeledImages {
    var g = SeededGenerator(seed: 21)
    let labels = counts.enumerated().flatMap { Array(repeating: $0.offset, count: $0.element) }
    return LabeledImages(
        classNames: names, channels: 1, height: 28, width: 28,
        pixels: (0..<(labels.count * 784)).map { _ in g.uniform() * 2 - 1 }, labels: labels,
        sources: labels.indices.map { SampleSource(location: "img\($0).png", sha256: "") })
}

@Test func balancingReachesTheTargetFromTheCoveringCheckpoints() throws {
    let perClass = try SyntheticImageSource(checkpoint: trainTiny(classNames: ["b"]).checkpointURL)
    let conditional = try SyntheticImageSource(
        checkpoint: trainTiny(classNames: ["a", "b", "c"], conditional: true).checkpointURL)
    for s in [perClass, conditional] { s.batchSize = 4 }
    let train = tinyTrainingSet([10, 4, 2, 3], names: ["a", "b", "c", "d"])
    let set = try balanceTrainingSet(train, sources: [conditional, perClass])
    #expect(set.perClass.map(\.real) == [10, 4, 2, 3] && set.perClass.map(\.synthetic) == [0, 6, 8, 0])
    #expect(set.perClass[1].checkpoint == perClass.url.path && set.perClass[2].checkpoint == conditional.url.path)
    #expect(set.warnings.count == 1 && set.warnings[0].contains("class d"))
    #expect(set.count == 19 + 14 && set.pixels.count == set.count * 784)
    #expect(Array(set.pixels.prefix(train.pixels.count)) == train.pixels && Array(set.labels.prefix(19)) == train.labels)
    #expect(set.synthetic.filter { $0 }.count == 14 && !set.synthetic.prefix(19).contains(true))
    #expect(set.labels.suffix(14) == Array(repeating: 1, count: 6) + Array(repeating: 2, count: 8))
    // Synthetic images are the checkpoint's, regenerable from their provenance.
    let b = try perClass.generate(className: "b", count: 6, seed: 1)
    #expect(Array(set.pixels[(19 * 784)..<(25 * 784)]) == b)
    #expect(set.provenance[19] == SyntheticProvenance(checkpoint: perClass.url.path, seed: 1, sampleIndex: 0))

    var options = BalanceOptions()
    options.maxSyntheticRatio = 1.5
    #expect(
        try balanceTrainingSet(train, sources: [conditional, perClass], options: options).perClass.map(\.synthetic)
            == [0, 6, 3, 0])
    options.maxSyntheticRatio = nil; options.target = .count(3)
    #expect(try balanceTrainingSet(train, sources: [conditional], options: options).perClass.map(\.synthetic) == [0, 0, 1, 0])
    // Unit scaling converts the generated images.
    options.target = .majority
    let unit = try balanceTrainingSet(train, scaling: .unit, sources: [perClass], options: options)
    #expect(zip(unit.pixels[(19 * 784)...], b).allSatisfy { abs($0 - ($1 + 1) / 2) < 1e-6 })
    // A checkpoint that covers none of the classes is refused.
    let stranger = try SyntheticImageSource(checkpoint: trainTiny(classNames: ["zebra"]).checkpointURL)
    #expect(throws: GANError.self) { try balanceTrainingSet(train, sources: [perClass, stranger]) }
}

@Test func discriminatorSelectionKeepsTheTopScoredCandidates() throws {
    let source = try SyntheticImageSource(checkpoint: trainTiny(classNames: ["b"], maxSteps: 6).checkpointURL)
    source.batchSize = 4
    let train = tinyTrainingSet([9, 4], names: ["a", "b"])
    var options = BalanceOptions()
    options.selection = .discriminator; options.candidatesFactor = 3; options.seed = 40
    let set = try balanceTrainingSet(train, sources: [source], options: options)
    let candidates = try source.generate(className: "b", count: 15, seed: 41)
    let scores = try source.discriminatorScores(candidates)
    let kept = set.provenance.compactMap { $0?.sampleIndex }
    #expect(kept.count == 5 && Set(kept).count == 5)
    let worstKept = kept.map { scores[$0] }.min()!
    let bestDropped = scores.indices.filter { !kept.contains($0) }.map { scores[$0] }.max()!
    #expect(worstKept >= bestDropped)
    for (k, i) in kept.enumerated() {
        #expect(Array(set.pixels[((13 + k) * 784)..<((14 + k) * 784)]) == Array(candidates[(i * 784)..<((i + 1) * 784)]))
    }
    #expect(kept != Array(0..<5), "selection should differ from taking the first candidates (scores \(scores))")
}

@Test func balancedSetIsWrittenWithAManifest() throws {
    let source = try SyntheticImageSource(checkpoint: trainTiny(classNames: ["b"]).checkpointURL)
    source.batchSize = 4
    let set = try balanceTrainingSet(tinyTrainingSet([5, 2], names: ["a", "b"]), sources: [source])
    let dir = temporaryDirectory()
    let entries = try writeBalancedSet(set, to: dir.path)
    let lines = try String(contentsOf: dir.appendingPathComponent("manifest.jsonl"), encoding: .utf8).split(separator: "\n")
    #expect(lines.count == 10)
    let decoded = try lines.map { try JSONDecoder().decode(BalancedManifestEntry.self, from: Data($0.utf8)) }
    #expect(decoded == entries)
    #expect(decoded.filter(\.synthetic).map(\.file) == ["b/syn-00000.png", "b/syn-00001.png", "b/syn-00002.png"])
    #expect(decoded.filter(\.synthetic).allSatisfy { $0.checkpoint == source.url.path && $0.seed == 1 && $0.split == .train })
    #expect(decoded.filter { !$0.synthetic }.allSatisfy { $0.checkpoint == nil && $0.seed == nil && $0.source.hasPrefix("img") })
    #expect(lines[7].contains("\"synthetic\":true") && lines[0].contains("\"class\":\"a\""))
    for e in decoded {
        let bytes = try readFileBytes(dir.appendingPathComponent(e.file).path)
        #expect(sha256Hex(bytes) == e.sha256)
    }
    // Real images round-trip exactly through 8 bits.
    #expect(
        try decodeImage(at: dir.appendingPathComponent("a/real-00000.png").path).pixels
            == imageBytes(Array(set.pixels.prefix(784)), channels: 1, size: 28)[0])
    #expect(throws: GANError.self) { try writeBalancedSet(set, to: dir.path) }
}

// MARK: Spectral norm in the GAN

@Test func spectralNormGANTrainsAndResumesExactly() throws {
    let straight = try trainTiny(classNames: ["x"], spectralNorm: true, maxSteps: 8)
    let d = straight.model.discriminator
    #expect(d.blocks.allSatisfy { $0.1 == nil && $0.0.spectralNorm != nil } && d.head.spectralNorm != nil)
    #expect(d.buffers.map(\.0) == ["main.0.conv.weight_u", "main.1.conv.weight_u", "head.weight_u"])

    let dir = temporaryDirectory()
    _ = try trainTiny(classNames: ["x"], spectralNorm: true, maxSteps: 4, dir: dir)
    let file = try SafeTensors.read(dir.appendingPathComponent("checkpoint.safetensors"))
    #expect(file.tensors["discriminator.head.weight_u"] != nil)
    // A fresh trainer resumes from step 4 and runs to 8.
    let config = try DCGANConfig(imageSize: 28, channels: 1, generatorWidth: 4, discriminatorWidth: 4, spectralNorm: true)
    var options = GANTrainingOptions()
    options.batchSize = 4; options.loss = .hinge
    var plan = GANTrainingPlan()
    plan.epochs = 100; plan.maxSteps = 8; plan.seed = 7; plan.checkpointEvery = 1000; plan.gridEvery = 1000
    var data = tinyData(); data.classNames = ["x"]
    let second = try GANTrainer(
        model: GANModel(config: config, options: options, seed: 7), data: data, plan: plan,
        outputDirectory: dir)
    try second.resume(from: second.checkpointURL)
    try second.run()
    for (a, b) in [
        (straight.model.generator.stateDict(), second.model.generator.stateDict()),
        (straight.model.discriminator.stateDict(), second.model.discriminator.stateDict()),
    ] {
        #expect(a.keys.sorted() == b.keys.sorted())
        for (k, v) in a { #expect(v.scalars == b[k]!.scalars, "\(k) differs after resume") }
    }
    // Sampling and scoring work on a spectrally normalised checkpoint.
    let source = try SyntheticImageSource(checkpoint: second.checkpointURL)
    source.batchSize = 4
    #expect(try source.discriminatorScores(source.generate(className: nil, count: 4, seed: 1)).count == 4)
}

// MARK: Command line

@Test func sampleAndBalanceCommandsEndToEnd() async throws {
    let dir = temporaryDirectory()
    let run = dir.appendingPathComponent("gan").path
    #expect(
        try await medsynth(["gan", "train", "--dry-run", "--conditional", "--spectral-norm", "--loss", "hinge", "--out", run])
            == 0)
    let checkpoint = run + "/checkpoint.safetensors"
    let npz = dir.appendingPathComponent("b.npz").path
    #expect(
        try await medsynth([
            "gan", "sample", "--checkpoint", checkpoint, "--class", "b", "--count", "10", "--batch-size", "8",
            "--out", npz,
        ]) == 0)
    let arrays = try readAllNPZ(npz)
    #expect(arrays["images"]?.shape == [10, 28, 28] && arrays["labels"]?.integers() == Array(repeating: 1, count: 10))
    #expect(
        try await medsynth(["gan", "sample", "--checkpoint", checkpoint, "--class", "zebra", "--count", "2", "--out", npz]) != 0)
    let pngs = dir.appendingPathComponent("pngs").path
    #expect(
        try await medsynth(["gan", "sample", "--checkpoint", checkpoint, "--class", "a", "--count", "3", "--out", pngs]) == 0)
    #expect(
        try FileManager.default.contentsOfDirectory(atPath: pngs).sorted()
            == ["sample-00000.png", "sample-00001.png", "sample-00002.png"])

    // A class-folder tree: a 20 images, b 6.
    let data = dir.appendingPathComponent("data").path
    var g = SeededGenerator(seed: 3)
    for (name, n) in [("a", 20), ("b", 6)] {
        try FileManager.default.createDirectory(atPath: data + "/" + name, withIntermediateDirectories: true)
        for i in 0..<n {
            try writePNG(
                to: "\(data)/\(name)/\(i).png", pixels: (0..<784).map { _ in UInt8(g.int(below: 256)) },
                width: 28, height: 28, channels: 1)
        }
    }
    let out = dir.appendingPathComponent("balanced").path
    #expect(
        try await medsynth([
            "balance", "--data", data, "--gan", checkpoint, "--select", "discriminator",
            "--candidates-factor", "2", "--out", out,
        ]) == 0)
    let lines = try String(contentsOfFile: out + "/manifest.jsonl", encoding: .utf8).split(separator: "\n")
    let entries = try lines.map { try JSONDecoder().decode(BalancedManifestEntry.self, from: Data($0.utf8)) }
    let realA = entries.filter { $0.className == "a" }.count, b = entries.filter { $0.className == "b" }
    #expect(realA == 16 && b.count == 16 && b.filter(\.synthetic).count >= 10, "\(realA) a, \(b.count) b")
    #expect(try FileManager.default.contentsOfDirectory(atPath: out + "/b").count == 16)
    #expect(try await medsynth(["balance", "--data", data, "--gan", checkpoint, "--out", out]) != 0)  // already there
}

/// A conditional generator that ignores z (its first layer's z weights zeroed) makes identical
/// images within each class while the classes differ: the diversity alarm must still fire.
@Test func conditionalCollapseWithinAClassRaisesTheAlarm() throws {
    let trainer = try trainTiny(classNames: ["a", "b", "c"], conditional: true, maxSteps: 40)
    #expect(trainer.epoch >= 10)  // the alarm waits for max(5, epochs / 10) epochs
    let first = trainer.model.generator.blocks[0].0.weight  // (nz + e, w0, 7, 7), z rows first
    let zValues = 100 * first.count / first.shape[0]
    for p in [first] + (trainer.model.ema ?? []).filter { $0.0 == "main.0.conv.weight" }.map(\.1) {
        p.pointer.update(repeating: 0, count: zValues)
    }
    trainer.alarmed.removeAll()  // training on noise may have raised it already
    var alarms: [String] = []
    try trainer.writeGrid { if case let .alarm(text) = $0 { alarms.append(text) } }
    #expect(alarms.count == 1 && alarms[0].contains("within a class"), "\(alarms)")
}

@Test func conditionalSpreadIsTheSmallestWithinAClass() throws {
    let trainer = try trainTiny(classNames: ["a", "b"], conditional: true, maxSteps: 1)
    // Two classes, 8 identical images each, the classes far apart.
    let images = try Tensor(shape: [16, 1, 28, 28], scalars: (0..<16).flatMap { Array(repeating: $0 < 8 ? -1 : 1, count: 784) })
    #expect(ImageGrid.meanPairwiseDistance(images) > 20)
    #expect(try trainer.sampleSpread(images) == 0)
}
