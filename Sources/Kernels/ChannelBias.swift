// y[n, c, h, w] = x[n, c, h, w] + bias[n, c]: the U-Net adds each image's embedding to every
// pixel of a channel. In Swift on plain NCHW or a convolution's nChw{8,16}c (`Layout.channelBlock`),
// so the activation stays where the convolution left it. `Reference.channelBias*` is the plain
// loop it is tested against.

/// Per-(image, channel) bias over the pixels of a 4-D tensor (N, C, H, W); bias is (N, C).
public enum ChannelBiasKernel {
    /// y = x + bias[n, c] in `layout` (plain or nChw{8,16}c).
    public static func forward(
        shape: [Int], layout: Layout, input x: UnsafePointer<Float>, bias: UnsafePointer<Float>,
        output y: UnsafeMutablePointer<Float>
    ) {
        let (block, n, c, hw) = geometry(shape, layout)
        KernelParallel.forEach(n) { _, images in
            for i in images {
                for cb in 0..<(c / block) {
                    let off = (i * c + cb * block) * hw
                    for j in 0..<hw {
                        for l in 0..<block {
                            // plain: block 1, so (j, l) = (pixel, 0); blocked: lane l of pixel j.
                            y[off + j * block + l] = x[off + j * block + l] + bias[i * c + cb * block + l]
                        }
                    }
                }
            }
        }
    }

    /// d bias[n, c] = sum over the pixels of dy[n, c]; dy in `layout`.
    public static func backward(
        shape: [Int], layout: Layout, gradOutput dy: UnsafePointer<Float>, gradBias: UnsafeMutablePointer<Float>
    ) {
        let (block, n, c, hw) = geometry(shape, layout)
        KernelParallel.forEach(n) { _, images in
            for i in images {
                for cb in 0..<(c / block) {
                    let off = (i * c + cb * block) * hw
                    switch block {
                    case 16:
                        let s = GroupNormKernel.laneSums(SIMD16<Float>.self, dy + off, hw)
                        for l in 0..<16 { gradBias[i * c + cb * 16 + l] = s[l] }
                    case 8:
                        let s = GroupNormKernel.laneSums(SIMD8<Float>.self, dy + off, hw)
                        for l in 0..<8 { gradBias[i * c + cb * 8 + l] = s[l] }
                    default:
                        gradBias[i * c + cb] = GroupNormKernel.sum(dy + off, hw)
                    }
                }
            }
        }
    }

    /// (channel block, N, C, H W) of a 4-D shape in a layout the kernels read.
    private static func geometry(_ shape: [Int], _ layout: Layout) -> (Int, Int, Int, Int) {
        guard let block = layout.channelBlock(shape) else {
            preconditionFailure("ChannelBiasKernel: layout \(layout) not readable for \(shape)")
        }
        return (block, shape[0], shape[1], shape[2] * shape[3])
    }
}
