import Kernels
import SeededRandom
import Testing

@testable import Autodiff
@testable import NN

/// `Sequential` runs a BatchNorm2d followed by a ReLU as one fused batch norm (no eltwise pass)
/// and gives what the layers give one after the other: output, input gradient and parameter
/// gradients, and the same running statistics.
@Test func sequentialFusesBatchNormAndReLU() throws {
    func model() -> Sequential {
        var g = SeededGenerator(seed: 7)
        return Sequential([Conv2d(3, 16, kernelSize: 3, padding: 1, generator: &g), BatchNorm2d(16), ReLU()])
    }
    var rg = SeededGenerator(seed: 8)
    let x = Tensor.randomNormal([4, 3, 8, 8], generator: &rg)
    let r = Tensor.randomNormal([4, 16, 8, 8], generator: &rg)
    func run(_ net: Sequential, layerByLayer: Bool) throws -> (values: [[Float]], used: [KernelUse]) {
        let input = x.requiringGrad()
        let (out, used) = try KernelImplementations.recording {
            let y = layerByLayer ? try net.layers.reduce(input) { try $1($0) } : try net(input)
            y.backward(seed: r)
            return y
        }
        let grads = try net.parameters.map { try #require($0.1.grad).scalars }
        let bn = try #require(net.layers[1] as? BatchNorm2d)
        return ([out.scalars, try #require(input.grad).scalars, bn.runningMean.value.scalars] + grads, used)
    }
    let fused = try run(model(), layerByLayer: false), separate = try run(model(), layerByLayer: true)
    #expect(!fused.used.contains { $0.primitive.hasPrefix("eltwise") }, "\(fused.used)")
    #expect(separate.used.contains { $0.primitive == "eltwise fwd" })
    #expect(fused.values.count == separate.values.count)
    for (a, b) in zip(fused.values, separate.values) {
        let scale = max(b.map { abs($0) }.max() ?? 1, 1)
        #expect((zip(a, b).map { abs($0 - $1) }.max() ?? 0) / scale < 1e-5)
    }
}
