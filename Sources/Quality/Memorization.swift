import Autodiff
import Evaluation
import Foundation
import SeededRandom

/// One synthetic image and how close it sits to the training set.
public struct NearestTraining: Codable, Equatable, Sendable {
    /// Index of the synthetic image in its set, and its name (file) when known.
    public var index: Int
    public var name: String
    /// Distance to the nearest training image in pixel space and in feature space.
    public var pixelDistance: Double
    public var featureDistance: Double
    /// Training indices of the nearest neighbours in pixel space, nearest first.
    public var neighbours: [Int]
    /// Which spaces put it below the threshold ("pixel", "feature").
    public var flaggedIn: [String]
}

/// A memorization audit: each synthetic image's nearest-training-image distance against the
/// distribution of nearest-training-image distances of held-out real images (which the generator
/// never saw). A synthetic image closer to the training set than the `percentile`-th percentile of
/// that held-out distribution, in pixel or in feature space, is flagged as a likely copy.
public struct MemorizationAudit: Codable, Equatable, Sendable {
    public var percentile: Double
    /// Thresholds: the held-out distribution's `percentile`-th percentile, per space.
    public var pixelThreshold: Double
    public var featureThreshold: Double
    /// Held-out images the thresholds come from.
    public var heldOutCount: Int
    /// Flagged synthetic images, closest (in pixel space) first.
    public var flagged: [NearestTraining]
    /// When nothing is flagged, a few random synthetic images for visual inspection.
    public var shown: [NearestTraining]

    /// Audits `synthetic` against `training`, with thresholds from `heldOut`. Pixel rows are the
    /// flattened images; feature rows come from one extractor applied to all three sets.
    public static func run(
        synthetic: (pixels: FeatureMatrix, features: FeatureMatrix, names: [String]),
        training: (pixels: FeatureMatrix, features: FeatureMatrix),
        heldOut: (pixels: FeatureMatrix, features: FeatureMatrix),
        percentile: Double = 1, neighbours: Int = 3, showIfNone: Int = 4,
        seed: UInt64 = 0
    ) throws -> MemorizationAudit {
        guard (0...100).contains(percentile) else {
            throw QualityError.invalidInput("memorization percentile \(percentile) must lie in [0, 100]")
        }
        guard heldOut.pixels.count >= 1, training.pixels.count >= neighbours else {
            throw QualityError.invalidInput(
                "memorization audit needs held-out images (got \(heldOut.pixels.count)) and at "
                    + "least \(neighbours) training images (got \(training.pixels.count))")
        }
        let pixelThreshold = threshold(heldOut: heldOut.pixels, training: training.pixels, percentile: percentile)
        let featureThreshold = threshold(heldOut: heldOut.features, training: training.features, percentile: percentile)
        let nt = training.pixels.count
        let pd = distances(synthetic.pixels, training.pixels)
        let fd = nearest(synthetic.features, training.features)
        var all: [NearestTraining] = []
        for i in 0..<synthetic.pixels.count {
            let row = Array(pd[(i * nt)..<((i + 1) * nt)])
            let order = row.indices.sorted { row[$0] < row[$1] }.prefix(neighbours)
            let spaces = flaggedSpaces(
                pixelDistance: row[order.first!], featureDistance: fd[i].0, pixelThreshold: pixelThreshold,
                featureThreshold: featureThreshold)
            all.append(
                NearestTraining(
                    index: i, name: i < synthetic.names.count ? synthetic.names[i] : "#\(i)",
                    pixelDistance: row[order.first!], featureDistance: fd[i].0,
                    neighbours: Array(order), flaggedIn: spaces))
        }
        let flagged = all.filter { !$0.flaggedIn.isEmpty }.sorted { $0.pixelDistance < $1.pixelDistance }
        var shown: [NearestTraining] = []
        if flagged.isEmpty {
            var g = SeededGenerator(seed: seed)
            shown = KernelDistance.sample(all.count, min(showIfNone, all.count), &g).map { all[$0] }
        }
        return MemorizationAudit(
            percentile: percentile, pixelThreshold: pixelThreshold, featureThreshold: featureThreshold,
            heldOutCount: heldOut.pixels.count, flagged: flagged, shown: shown)
    }

    /// The spaces ("pixel", "feature") whose threshold an image's nearest-training distance does
    /// not exceed. "<=" so that exact copies are flagged even when a threshold is 0 (datasets such as
    /// BreastMNIST hold duplicate images, which can put a held-out image at distance 0).
    static func flaggedSpaces(
        pixelDistance: Double, featureDistance: Double, pixelThreshold: Double, featureThreshold: Double
    ) -> [String] {
        (pixelDistance <= pixelThreshold ? ["pixel"] : []) + (featureDistance <= featureThreshold ? ["feature"] : [])
    }

    /// The `percentile`-th percentile of the held-out rows' distances to their nearest training row:
    /// a synthetic row at or below it is flagged (in that space).
    static func threshold(heldOut: FeatureMatrix, training: FeatureMatrix, percentile: Double) -> Double {
        Evaluation.quantile(nearest(heldOut, training).map(\.0), percentile / 100)
    }

    /// For each row of `a`, the distance to its nearest row of `b` and that row's index.
    static func nearest(_ a: FeatureMatrix, _ b: FeatureMatrix) -> [(Double, Int)] {
        let d = distances(a, b), nb = b.count
        return (0..<a.count).map { i in
            var best = (Double.infinity, -1)
            for j in 0..<nb where d[i * nb + j] < best.0 { best = (d[i * nb + j], j) }
            return best
        }
    }
}

/// The memorization audit's rule, to apply to images as they are made (the experiment's filter
/// drops what it flags): an image is a likely copy when it is at least as near a training image,
/// in pixel space or in the extractor's feature space, as the `percentile`-th percentile of the
/// held-out images' nearest-training distances. Same thresholds, same spaces, same extractor as
/// `ClassAudit` with `MemorizationAudit`.
public struct NearCopyRule {
    public let pixelThreshold: Double, featureThreshold: Double
    let trainingPixels: FeatureMatrix, trainingFeatures: FeatureMatrix
    let extractor: any FeatureExtractor

    /// `training` and `heldOut`: (N, C, H, W) images of one class, scaled as the images to judge
    /// will be. Needs at least one image in each.
    public init(training: Tensor, heldOut: Tensor, extractor: any FeatureExtractor, percentile: Double = 1) throws {
        guard training.shape[0] >= 1, heldOut.shape[0] >= 1 else {
            throw QualityError.invalidInput(
                "near-copy rule needs training and held-out images (got \(training.shape[0]) and \(heldOut.shape[0]))")
        }
        guard (0...100).contains(percentile) else {
            throw QualityError.invalidInput("memorization percentile \(percentile) must lie in [0, 100]")
        }
        self.extractor = extractor
        trainingPixels = try FeatureMatrix(training); trainingFeatures = try extractor.features(training)
        pixelThreshold = MemorizationAudit.threshold(
            heldOut: try FeatureMatrix(heldOut), training: trainingPixels, percentile: percentile)
        featureThreshold = MemorizationAudit.threshold(
            heldOut: try extractor.features(heldOut), training: trainingFeatures, percentile: percentile)
    }

    /// For each image of `images` (N, C, H, W), the spaces ("pixel", "feature") that flag it; empty
    /// when it is not a likely copy.
    public func flags(_ images: Tensor) throws -> [[String]] {
        let pixels = MemorizationAudit.nearest(try FeatureMatrix(images), trainingPixels)
        let features = MemorizationAudit.nearest(try extractor.features(images), trainingFeatures)
        return zip(pixels, features).map { p, f in
            MemorizationAudit.flaggedSpaces(
                pixelDistance: p.0, featureDistance: f.0, pixelThreshold: pixelThreshold, featureThreshold: featureThreshold)
        }
    }
}
