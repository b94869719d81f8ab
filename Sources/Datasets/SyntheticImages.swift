import Foundation

/// A trained generator that makes images on demand -- a GAN checkpoint or a diffusion one. The
/// contract that sampling, filtering, balancing and auditing rely on, whichever family made them.
public protocol SyntheticImages: AnyObject {
    /// The checkpoint the generator was read from.
    var url: URL { get }
    /// The classes it can make: one for a per-class model, all of them for a conditional one.
    var classNames: [String] { get }
    /// Image channels (1 or 3) and side length.
    var channels: Int { get }
    var imageSize: Int { get }
    /// One model for several classes, conditioned on the class (else a per-class model).
    var isConditional: Bool { get }
    /// The split its training images came from (`TrainingPlan.trainingSplit`).
    var trainingSplit: SplitChoice { get }
    /// Images per network call.
    var batchSize: Int { get set }
    /// The label a class is stored under: nil for a per-class model, the class's index otherwise.
    func label(for className: String?) throws -> Int?
    /// `count` images (count, C, S, S), NCHW in [-1, 1], determined by `seed`; a smaller count
    /// gives a prefix of a larger one.
    func generate(className: String?, count: Int, seed: UInt64) throws -> [Float]
}

extension SyntheticImages {
    /// `label(for:)` as both families answer it: nil for a per-class model (whose one class may be
    /// named), the class's index for a conditional one; `unknown` (given the name) and `required`
    /// make the family's error.
    public func conditioningLabel<E: Error>(
        for className: String?, unknown: (String) -> E, required: () -> E
    ) throws(E) -> Int? {
        guard isConditional else {
            if let className, className != classNames[0] { throw unknown(className) }
            return nil
        }
        guard let className else { throw required() }
        guard let index = classNames.firstIndex(of: className) else { throw unknown(className) }
        return index
    }

    /// An empty array with room for `count` images, refused with `tooMany(bytes)` (`Int.max` on
    /// overflow) before anything is allocated when they would take more than `maximumBytes`.
    public func reservedImages<E: Error>(count: Int, maximumBytes: Int, tooMany: (Int) -> E) throws(E) -> [Float] {
        let perImage = channels * imageSize * imageSize
        let (bytes, overflow) = count.multipliedReportingOverflow(by: perImage * MemoryLayout<Float>.size)
        guard count >= 0, !overflow, bytes <= maximumBytes else { throw tooMany(overflow ? Int.max : bytes) }
        var out = [Float]()
        out.reserveCapacity(count * perImage)
        return out
    }
}
