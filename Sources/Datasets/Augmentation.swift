import Foundation
import SeededRandom

/// Classic image augmentation settings; each transform can be switched off.
public struct AugmentationOptions: Codable, Equatable, Sendable {
    /// Mirror left-right with probability 0.5.
    public var horizontalFlip: Bool
    /// Mirror top-bottom with probability 0.5 (off by default: anatomy is rarely upside down).
    public var verticalFlip: Bool
    /// Rotation drawn uniformly in ±this many degrees.
    public var maxRotationDegrees: Float
    /// Shift drawn uniformly in ±this fraction of the side, per axis.
    public var maxShift: Float
    /// Zoom factor drawn uniformly in this range (1 = none).
    public var zoom: ClosedRange<Float>
    /// Brightness offset drawn in ±this fraction of the value range.
    public var brightness: Float
    /// Contrast factor drawn in 1 ± this, applied around the image mean.
    public var contrast: Float

    /// Creates options; defaults are the usual mild medical-imaging set.
    public init(
        horizontalFlip: Bool = true, verticalFlip: Bool = false, maxRotationDegrees: Float = 15,
        maxShift: Float = 0.1, zoom: ClosedRange<Float> = 0.9...1.1, brightness: Float = 0.1,
        contrast: Float = 0.1
    ) {
        self.horizontalFlip = horizontalFlip
        self.verticalFlip = verticalFlip
        self.maxRotationDegrees = maxRotationDegrees
        self.maxShift = maxShift
        self.zoom = zoom
        self.brightness = brightness
        self.contrast = contrast
    }

    /// Every transform off: `apply` leaves images unchanged.
    public static let none = AugmentationOptions(
        horizontalFlip: false, maxRotationDegrees: 0, maxShift: 0, zoom: 1...1, brightness: 0, contrast: 0)
}

/// Applies random augmentations to CHW Float images, deterministically from a seed.
///
/// Geometry (flip, rotation, shift, zoom) is one affine map sampled bilinearly, with pixels
/// from outside the image filled with black; brightness and contrast follow, and values are
/// clamped to the scaling's range.
public struct Augmenter: Sendable {
    /// The settings in use.
    public var options: AugmentationOptions
    /// The value range of the images (for black fill and clamping).
    public var scaling: PixelScaling
    private var rng: SeededGenerator

    /// Creates an augmenter whose random stream is fixed by `seed`.
    public init(options: AugmentationOptions = AugmentationOptions(), scaling: PixelScaling, seed: UInt64) {
        self.options = options
        self.scaling = scaling
        rng = SeededGenerator(seed: seed)
    }

    /// Augments every image of an NCHW buffer in place (`count` images of C x H x W).
    public mutating func apply(toBatch pixels: inout [Float], count: Int, channels: Int, height: Int, width: Int) {
        let size = channels * height * width
        precondition(pixels.count == count * size, "pixel count mismatch")
        for n in 0..<count {
            var image = Array(pixels[n * size..<(n + 1) * size])
            apply(to: &image, channels: channels, height: height, width: width)
            pixels.replaceSubrange(n * size..<(n + 1) * size, with: image)
        }
    }

    /// Augments one C x H x W image in place.
    public mutating func apply(to image: inout [Float], channels: Int, height: Int, width: Int) {
        precondition(image.count == channels * height * width, "pixel count mismatch")
        let o = options
        // Draw every parameter, always in this order, so streams stay aligned across options.
        let flipX = rng.uniform() < 0.5 && o.horizontalFlip
        let flipY = rng.uniform() < 0.5 && o.verticalFlip
        let angle = symmetric(o.maxRotationDegrees) * .pi / 180
        let shiftX = symmetric(o.maxShift) * Float(width), shiftY = symmetric(o.maxShift) * Float(height)
        let zoom = o.zoom.lowerBound + rng.uniform() * (o.zoom.upperBound - o.zoom.lowerBound)
        let offset = symmetric(o.brightness) * (scaling.white - scaling.black)
        let gain = 1 + symmetric(o.contrast)
        if flipX || flipY || angle != 0 || shiftX != 0 || shiftY != 0 || zoom != 1 {
            image = warp(
                image, channels: channels, height: height, width: width, flipX: flipX, flipY: flipY,
                angle: angle, shift: (shiftX, shiftY), zoom: zoom)
        }
        if offset != 0 || gain != 1 {
            let area = height * width
            for c in 0..<channels {
                let plane = c * area..<(c + 1) * area
                let mean = image[plane].reduce(0, +) / Float(area)
                for i in plane {
                    image[i] = min(scaling.white, max(scaling.black, (image[i] - mean) * gain + mean + offset))
                }
            }
        }
    }

    private mutating func symmetric(_ limit: Float) -> Float { (rng.uniform() * 2 - 1) * limit }

    /// Output pixel (x, y) samples the source at the inverse map: undo shift, zoom, rotation, flip.
    private func warp(
        _ src: [Float], channels: Int, height: Int, width: Int, flipX: Bool, flipY: Bool,
        angle: Float, shift: (Float, Float), zoom: Float
    ) -> [Float] {
        var out = [Float](repeating: scaling.black, count: src.count)
        let cx = Float(width - 1) / 2, cy = Float(height - 1) / 2
        let cosA = cos(angle), sinA = sin(angle)
        for y in 0..<height {
            for x in 0..<width {
                // Output -> centred, unshifted, unzoomed, unrotated coordinates.
                let dx = (Float(x) - cx - shift.0) / zoom, dy = (Float(y) - cy - shift.1) / zoom
                var sx = cosA * dx + sinA * dy, sy = -sinA * dx + cosA * dy
                if flipX { sx = -sx }
                if flipY { sy = -sy }
                sx += cx
                sy += cy
                let x0 = Int(floor(sx)), y0 = Int(floor(sy))
                let tx = sx - Float(x0), ty = sy - Float(y0)
                for c in 0..<channels {
                    let base = c * height * width
                    func at(_ xx: Int, _ yy: Int) -> Float {
                        xx >= 0 && xx < width && yy >= 0 && yy < height ? src[base + yy * width + xx] : scaling.black
                    }
                    let top = at(x0, y0) * (1 - tx) + at(x0 + 1, y0) * tx
                    let bottom = at(x0, y0 + 1) * (1 - tx) + at(x0 + 1, y0 + 1) * tx
                    out[base + y * width + x] = top * (1 - ty) + bottom * ty
                }
            }
        }
        return out
    }
}
