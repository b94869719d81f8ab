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
    /// The seed it was trained with (its data split used the same seed).
    var trainingSeed: UInt64 { get }
    /// Images per network call.
    var batchSize: Int { get set }
    /// The label a class is stored under: nil for a per-class model, the class's index otherwise.
    func label(for className: String?) throws -> Int?
    /// `count` images (count, C, S, S), NCHW in [-1, 1], determined by `seed`; a smaller count
    /// gives a prefix of a larger one.
    func generate(className: String?, count: Int, seed: UInt64) throws -> [Float]
}
