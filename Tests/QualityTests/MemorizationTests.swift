import Autodiff
import Datasets
import Foundation
import SeededRandom
import TestSupport
import Testing

@testable import Quality

/// Training and validation images of BreastMNIST's malignant class, in [-1, 1].
func malignantSplits() throws -> (train: LabeledImages, val: LabeledImages) {
    let options = LoadOptions(preprocessing: Preprocessing(imageSize: 28, channels: 1, scaling: .symmetric))
    let split = try makeSplits(loadDataset(at: sharedData("breastmnist-png"), options: options), seed: 0)
    func malignant(_ s: Split) -> LabeledImages {
        let d = split.subset(s)
        let label = d.classNames.firstIndex(of: "malignant")!
        return d.subset(d.labels.indices.filter { d.labels[$0] == label })
    }
    return (malignant(.train), malignant(.val))
}

func tensor(_ pixels: [Float], _ n: Int) throws -> Tensor { try Tensor(shape: [n, 1, 28, 28], scalars: pixels) }

/// Plants 5 training images and 5 lightly noised copies among 40 GAN-like samples (blends of two
/// training images with noise, as a generator interpolating between modes produces): the planted
/// ones are flagged, the blends mostly are not.
@Test func plantedTrainingImagesAreFlagged() throws {
    let (train, val) = try malignantSplits()
    let d = 28 * 28
    var g = SeededGenerator(seed: 7)
    var pixels: [Float] = [], names: [String] = []
    for k in 0..<40 {
        let a = train.image(at: g.int(below: train.count)), b = train.image(at: g.int(below: train.count))
        pixels += zip(a, b).map { max(-1, min(1, 0.5 * ($0 + $1) + 0.05 * g.normal())) }
        names.append("blend\(k)")
    }
    for k in 0..<5 { pixels += train.image(at: 10 * k); names.append("copy\(k)") }
    for k in 0..<5 {
        pixels += train.image(at: 10 * k + 5).map { max(-1, min(1, $0 + 0.02 * g.normal())) }
        names.append("noisy\(k)")
    }
    let synthetic = try tensor(pixels, pixels.count / d)
    let extractor = RandomCNNFeatures(channels: 1)
    let audit = try ClassAudit.run(
        className: "malignant", synthetic: AuditImages(images: synthetic, names: names),
        training: try tensor(train.pixels, train.count), heldOut: try tensor(val.pixels, val.count),
        extractor: extractor)
    let flagged = Set(audit.memorization.flagged.map(\.name))
    for k in 0..<5 {
        #expect(flagged.contains("copy\(k)"), "exact copy \(k) not flagged")
        #expect(flagged.contains("noisy\(k)"), "noised copy \(k) not flagged")
    }
    let blends = flagged.filter { $0.hasPrefix("blend") }.count
    #expect(blends <= 4, "\(blends) of 40 blends flagged")
    // Copies' nearest training neighbour is the source image itself.
    let copy0 = audit.memorization.flagged.first { $0.name == "copy0" }!
    #expect(copy0.pixelDistance == 0 && copy0.neighbours.first == 0)
    #expect(audit.memorization.pixelThreshold > 0)
    // The report renders every class and embeds the grid.
    let report = AuditReport(
        synthetic: "planted", data: "breastmnist", extractor: extractor.name, options: .init(),
        classes: [audit])
    let html = report.html(grids: ["malignant": [1, 2, 3]])
    #expect(html.contains("data:image/png;base64,AQID") && html.contains("copy0"))
    let decoded = try JSONDecoder().decode(AuditReport.self, from: try report.json())
    #expect(decoded == report)
}

@Test func randomFeaturesAreSeededAndShaped() throws {
    var g = SeededGenerator(seed: 1)
    let x = Tensor.randomNormal([3, 1, 28, 28], generator: &g)
    let a = try RandomCNNFeatures(channels: 1, seed: 4).features(x), b = try RandomCNNFeatures(channels: 1, seed: 4).features(x)
    #expect(a.count == 3 && a.dimension == 128 && a == b)
    let c = try RandomCNNFeatures(channels: 1, seed: 5).features(x)
    #expect(a != c)
    let viaClosure = try ClosureFeatures(name: "flat") { try $0.reshaped([$0.shape[0], -1]) }.features(x)
    #expect(viaClosure.dimension == 784)
}

/// The rule the experiment's filter applies (`NearCopyRule`) flags exactly what the audit flags,
/// image by image and space by space, with the same thresholds.
@Test func nearCopyRuleFlagsWhatTheAuditFlags() throws {
    let (train, val) = try malignantSplits()
    let d = 28 * 28
    var g = SeededGenerator(seed: 11)
    var pixels: [Float] = [], names: [String] = []
    for k in 0..<30 {
        let a = train.image(at: g.int(below: train.count)), b = train.image(at: g.int(below: train.count))
        pixels += zip(a, b).map { max(-1, min(1, 0.5 * ($0 + $1) + 0.05 * g.normal())) }
        names.append("blend\(k)")
    }
    for k in 0..<3 { pixels += train.image(at: 9 * k + 1); names.append("copy\(k)") }
    let synthetic = try tensor(pixels, pixels.count / d)
    let extractor = RandomCNNFeatures(channels: 1)
    let training = try tensor(train.pixels, train.count), heldOut = try tensor(val.pixels, val.count)
    let audit = try ClassAudit.run(
        className: "malignant", synthetic: AuditImages(images: synthetic, names: names), training: training,
        heldOut: heldOut, extractor: extractor)
    let rule = try NearCopyRule(training: training, heldOut: heldOut, extractor: extractor)
    #expect(rule.pixelThreshold == audit.memorization.pixelThreshold)
    #expect(rule.featureThreshold == audit.memorization.featureThreshold)
    let flags = try rule.flags(synthetic)
    let audited = Dictionary(uniqueKeysWithValues: audit.memorization.flagged.map { ($0.index, $0.flaggedIn) })
    for i in names.indices { #expect(flags[i] == (audited[i] ?? []), "\(names[i]): \(flags[i]) against the audit's") }
    for k in 0..<3 { #expect(flags[30 + k] == ["pixel", "feature"], "copy\(k)") }
}

/// Either space alone flags an image (a filter that checked pixels only let through what the
/// audit flags in feature space). Features here: each image's mean. Training images are constant
/// at -0.9, -0.7, ..., 0.9, held-out ones at -0.85, -0.65, ..., 0.75 (nearest distances 0.05 x 28
/// in pixels, 0.05 in features).
@Test func nearCopyRuleFlagsInEitherSpace() throws {
    func constant(_ values: [Float]) throws -> Tensor {
        try Tensor(shape: [values.count, 1, 28, 28], scalars: values.flatMap { Array(repeating: $0, count: 28 * 28) })
    }
    let mean = ClosureFeatures(name: "mean") { t in
        let n = t.shape[0], per = t.count / n
        return try Tensor(
            shape: [n, 1], scalars: (0..<n).map { i in t.scalars[(i * per)..<((i + 1) * per)].reduce(0, +) / Float(per) })
    }
    let rule = try NearCopyRule(
        training: try constant((0..<10).map { -0.9 + 0.2 * Float($0) }),
        heldOut: try constant((0..<9).map { -0.85 + 0.2 * Float($0) }), extractor: mean)
    var candidates: [Float] = []
    candidates += (0..<(28 * 28)).map { ($0 / 28 + $0 % 28) % 2 == 0 ? 0.3 : -0.9 }  // checkerboard, mean -0.3
    candidates += Array(repeating: 0.1 + 0.02, count: 28 * 28)  // 0.02 from a training image: both spaces
    candidates += Array(repeating: 0.0, count: 28 * 28)  // 0.1 from the nearest: neither
    let flags = try rule.flags(try Tensor(shape: [3, 1, 28, 28], scalars: candidates))
    #expect(flags == [["feature"], ["pixel", "feature"], []])
}
