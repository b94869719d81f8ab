import Foundation

/// Training-set statistics stored with a model, the baseline drift monitoring compares against.
///
/// Two distributions: the class frequencies, and a histogram of each image's mean pixel value
/// (images scaled to [0, 1]) over `intensityBins` equal bins.
public struct ReferenceStats: Codable, Sendable, Equatable {
    /// Class names in label order.
    public var classNames: [String]
    /// Fraction of training images per class; sums to 1.
    public var classFrequencies: [Double]
    /// Fraction of training images per mean-intensity bin; sums to 1.
    public var intensityHistogram: [Double]
    /// Number of training images summarised.
    public var count: Int

    /// Number of equal bins over [0, 1] in `intensityHistogram`.
    public var intensityBins: Int { intensityHistogram.count }

    /// Creates stats from given frequencies.
    public init(classNames: [String], classFrequencies: [Double], intensityHistogram: [Double], count: Int) {
        self.classNames = classNames
        self.classFrequencies = classFrequencies
        self.intensityHistogram = intensityHistogram
        self.count = count
    }

    /// Summarises `count` images, NCHW in [0, 1], with labels in `0..<classNames.count`.
    public init(pixels: [Float], count: Int, labels: [Int], classNames: [String], bins: Int = 10) {
        precondition(count > 0 && pixels.count % count == 0 && labels.count == count, "shape mismatch")
        let perImage = pixels.count / count
        var classCounts = [Double](repeating: 0, count: classNames.count)
        var histogram = [Double](repeating: 0, count: bins)
        for i in 0..<count {
            classCounts[labels[i]] += 1
            let mean = pixels[i * perImage..<(i + 1) * perImage].reduce(0, +) / Float(perImage)
            histogram[Self.intensityBin(mean: mean, bins: bins)] += 1
        }
        self.init(
            classNames: classNames, classFrequencies: classCounts.map { $0 / Double(count) },
            intensityHistogram: histogram.map { $0 / Double(count) }, count: count)
    }

    /// The bin of a mean pixel value in [0, 1] (values outside are clamped to the end bins).
    public static func intensityBin(mean: Float, bins: Int) -> Int {
        guard mean.isFinite else { return 0 }
        return min(bins - 1, max(0, Int(mean * Float(bins))))
    }
}
