import Autodiff
import Kernels
import NN
import SeededRandom
import Testing

@testable import Classification

// The classifiers' hot paths on oneDNN: every primitive a training step, an evaluation pass and
// the server's requests execute is recorded, and none may be one of oneDNN's `ref:`
// implementations (naive loops, tens to hundreds of times slower). KernelsTests checks the
// DCGAN's convolution shapes one by one; this covers every primitive the classifiers run
// (convolutions, batch norm, activations, pooling, reorders) at the shapes they run them.

/// What one training step (zero, forward, cross-entropy, backward, Adam) and inference (the
/// evaluation's batches of 256 and a remainder, the server's single images) execute.
func primitivesUsed(_ arch: Architecture, size: Int, channels: Int, batch: Int = 64) throws -> [KernelUse] {
    let config = try ClassifierConfig(arch: arch, imageSize: size, channels: channels, classes: 7)
    var g = SeededGenerator(seed: 3)
    let model = Classifier(config, generator: &g)
    let optimizer = Adam(model.parameters)
    let x = Tensor.randomUniform([batch, channels, size, size], generator: &g)  // (N, C, S, S)
    let labels = (0..<batch).map { $0 % 7 }
    let imageSize = channels * size * size
    let pixels = (0..<257 * imageSize).map { Float($0 % 255) / 255 }
    return try KernelImplementations.recording {
        model.train(true)
        model.zeroGrad()
        try Loss.crossEntropy(model(x), labels: labels).backward()
        optimizer.step()
        for count in [257, 1, 3] {
            _ = try predictProbabilities(model, pixels: Array(pixels[..<(count * imageSize)]), count: count)
        }
    }.used
}

@Test(
    "no ref: implementation on classifier hot paths (training, evaluation, serving)",
    arguments: Architecture.allCases, [(28, 1), (28, 3), (64, 3)])
func noReferenceImplementationOnClassifierHotPaths(_ arch: Architecture, _ shape: (Int, Int)) throws {
    let used = try primitivesUsed(arch, size: shape.0, channels: shape.1)
    // The recording saw the whole step: all three convolution passes, and the model's own layers.
    for primitive in ["conv fwd", "conv bwd data", "conv bwd weights"] {
        #expect(used.contains { $0.primitive == primitive }, "\(arch) \(shape): no \(primitive) in \(used)")
    }
    // The ResNet's ReLUs run fused: into the batch norms before them, and into the residual add
    // (`Tensor.residualReLU`), so it runs no eltwise primitive at all.
    let own =
        arch == .resnet
        ? ["bnorm fwd training", "bnorm bwd", "bnorm fwd inference"] : ["pool fwd", "pool bwd", "eltwise fwd", "eltwise bwd"]
    for primitive in own {
        #expect(used.contains { $0.primitive == primitive }, "\(arch) \(shape): no \(primitive) in \(used)")
    }
    if arch == .resnet { #expect(!used.contains { $0.primitive.hasPrefix("eltwise") }, "\(arch) \(shape): \(used)") }
    let slow = used.filter(\.isReference)
    #expect(slow.isEmpty, "\(arch) \(shape): \(slow)")
    // Both networks have 3x3 stride-1 convolutions with 32 to 128 channels: Winograd where the
    // CPU has oneDNN's AVX-512 kernels for it (KernelsTests checks the geometries one by one).
    if VectorISA.avx512.isSupported && ConvAlgorithm.autoTakesWinograd {
        for primitive in ["conv fwd", "conv bwd data", "conv bwd weights"] {
            #expect(
                used.contains { $0.primitive == primitive && $0.implementation.contains("wino") },
                "\(arch) \(shape): no Winograd \(primitive) in \(used)")
        }
    }
}
