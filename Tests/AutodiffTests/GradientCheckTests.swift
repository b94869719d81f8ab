import SeededRandom
import Testing

@testable import Autodiff

/// A differentiable op under test: builds its inputs and applies the op.
struct OpCase: CustomTestStringConvertible, Sendable {
    let name: String
    let shapes: [[Int]]
    /// Inputs are kept away from kinks (ReLU at 0, ties in max pooling) by construction.
    var awayFromZero = false
    var distinct = false
    let f: @Sendable ([Tensor]) throws -> Tensor
    var testDescription: String { name }
}

func makeInput(_ shape: [Int], seed: UInt64, awayFromZero: Bool, distinct: Bool) -> Tensor {
    var g = SeededGenerator(seed: seed)
    let n = shape.reduce(1, *)
    var values = (0..<n).map { _ in g.normal() }
    if awayFromZero { values = values.map { ($0 >= 0 ? 1 : -1) * (0.2 + Swift.abs($0)) } }
    if distinct {
        var order = Array(0..<n)
        g.shuffle(&order)
        values = order.map { Float($0) * 0.1 - Float(n) * 0.05 }
    }
    return try! Tensor(shape: shape, scalars: values)
}

/// Central differences of L = sum(f(x) * R) against backward, for every input.
func checkGradients(_ c: OpCase, eps: Float = 1e-2, tolerance: Float = 2e-2) throws {
    let inputs = c.shapes.enumerated().map {
        makeInput($1, seed: UInt64($0 + 1), awayFromZero: c.awayFromZero, distinct: c.distinct)
    }
    let probe = try noGrad { try c.f(inputs) }
    var rg = SeededGenerator(seed: 99)
    let r = Tensor.randomNormal(probe.shape, generator: &rg)
    func loss(_ xs: [Tensor]) throws -> Double {
        let y = try noGrad { try c.f(xs) }
        return zip(y.scalars, r.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }
    let leaves = inputs.map { $0.requiringGrad() }
    try c.f(leaves).backward(seed: r)
    for (i, x) in inputs.enumerated() {
        let analytic = try #require(leaves[i].grad, "\(c.name): no gradient for input \(i)").scalars
        var numeric = [Float](repeating: 0, count: x.count)
        for j in 0..<x.count {
            let plus = x.copy(), minus = x.copy()
            plus.storage.pointer[j] += eps; minus.storage.pointer[j] -= eps
            var xp = inputs, xm = inputs
            xp[i] = plus; xm[i] = minus
            numeric[j] = Float((try loss(xp) - loss(xm)) / Double(2 * eps))
        }
        let scale = max(numeric.map { Swift.abs($0) }.max() ?? 1, 1)
        let err = zip(analytic, numeric).map { Swift.abs($0 - $1) }.max() ?? 0
        #expect(err / scale < tolerance, "\(c.name) input \(i): max error \(err) (scale \(scale))")
    }
}

let opCases: [OpCase] = [
    OpCase(name: "add broadcast", shapes: [[2, 3, 4], [3, 1]]) { try $0[0] + $0[1] },
    OpCase(name: "sub broadcast", shapes: [[4], [2, 3, 4]]) { try $0[0] - $0[1] },
    OpCase(name: "mul broadcast", shapes: [[2, 3, 2, 2], [1, 3, 1, 1]]) { try $0[0] * $0[1] },
    OpCase(name: "div", shapes: [[3, 4], [3, 4]], awayFromZero: true) { try $0[0] / $0[1] },
    OpCase(name: "scalar ops", shapes: [[5]]) { ($0[0] * 3 + 1) / 2 - 0.5 },
    OpCase(name: "exp", shapes: [[2, 5]]) { $0[0].exp() },
    OpCase(name: "log", shapes: [[2, 5]], awayFromZero: true) { $0[0].abs().log() },
    OpCase(name: "sqrt, squared", shapes: [[7]], awayFromZero: true) { $0[0].squared().sqrt() },
    OpCase(name: "relu", shapes: [[3, 7]], awayFromZero: true) { $0[0].relu() },
    OpCase(name: "leakyRelu", shapes: [[3, 7]], awayFromZero: true) { $0[0].leakyRelu(0.2) },
    OpCase(name: "tanh", shapes: [[3, 7]]) { $0[0].tanh() },
    OpCase(name: "sigmoid", shapes: [[3, 7]]) { $0[0].sigmoid() },
    OpCase(name: "matmul", shapes: [[3, 5], [5, 4]]) { try Tensor.matmul($0[0], $0[1]) },
    OpCase(name: "matmul A^T B^T", shapes: [[5, 3], [4, 5]]) {
        try Tensor.matmul($0[0], $0[1], transposeA: true, transposeB: true)
    },
    OpCase(name: "matmul A B^T", shapes: [[1, 5], [4, 5]]) { try Tensor.matmul($0[0], $0[1], transposeB: true) },
    OpCase(name: "conv2d stride 2 pad 1 bias", shapes: [[2, 3, 7, 6], [4, 3, 3, 3], [4]]) {
        try $0[0].conv2d(weight: $0[1], bias: $0[2], stride: 2, padding: 1)
    },
    OpCase(name: "conv2d batch 1, 1 channel", shapes: [[1, 1, 5, 5], [2, 1, 4, 4]]) { try $0[0].conv2d(weight: $0[1]) },
    OpCase(name: "convTranspose2d stride 2 pad 1", shapes: [[2, 4, 3, 3], [4, 3, 4, 4]]) {
        try $0[0].convTranspose2d(weight: $0[1], stride: 2, padding: 1)
    },
    OpCase(name: "convTranspose2d output padding bias", shapes: [[1, 3, 3, 2], [3, 2, 3, 3], [2]]) {
        try $0[0].convTranspose2d(weight: $0[1], bias: $0[2], stride: 2, padding: 1, outputPadding: 1)
    },
    OpCase(name: "batchNorm training", shapes: [[4, 3, 3, 2], [3], [3]]) {
        try $0[0].batchNormTraining(scale: $0[1], shift: $0[2]).output
    },
    OpCase(name: "batchNorm 2-D input", shapes: [[6, 4], [4], [4]]) {
        try $0[0].batchNormTraining(scale: $0[1], shift: $0[2]).output
    },
    OpCase(name: "batchNorm inference", shapes: [[2, 3, 2, 2], [3], [3]]) {
        try $0[0].batchNormInference(
            scale: $0[1], shift: $0[2], mean: Tensor(shape: [3], scalars: [0.1, -0.2, 0.3]),
            variance: Tensor(shape: [3], scalars: [1.5, 0.5, 2]))
    },
    OpCase(name: "maxPool2d", shapes: [[2, 2, 6, 5]], distinct: true) { try $0[0].maxPool2d(kernel: 2) },
    OpCase(name: "maxPool2d overlapping padded", shapes: [[1, 2, 5, 5]], distinct: true) {
        try $0[0].maxPool2d(kernel: 3, stride: 2, padding: 1)
    },
    OpCase(name: "avgPool2d", shapes: [[2, 3, 4, 6]]) { try $0[0].avgPool2d(kernel: 2) },
    OpCase(name: "globalAvgPool2d", shapes: [[2, 3, 3, 5]]) { try $0[0].globalAvgPool2d() },
    OpCase(name: "reshape, flatten", shapes: [[2, 3, 4]]) { try $0[0].reshaped([4, -1]).flattened() * $0[0].reshaped([4, 6]) },
    OpCase(name: "concat", shapes: [[2, 3, 2], [2, 1, 2]]) { try Tensor.concat([$0[0], $0[1], $0[0]], axis: 1) },
    OpCase(name: "slice", shapes: [[3, 5, 2]]) { try $0[0].slice(axis: 1, start: 1, length: 3) },
    OpCase(name: "transpose", shapes: [[3, 5]]) { try $0[0].transposed() },
    OpCase(name: "gatherRows", shapes: [[4, 3]]) { try $0[0].gatherRows([2, 0, 2, 3]) },
    OpCase(name: "sum, mean", shapes: [[3, 4]]) { try $0[0].sum(axes: [1]) + $0[0].mean() + $0[0].sum() },
    OpCase(name: "mean over axes keepDims", shapes: [[2, 3, 4]]) { try $0[0].mean(axes: [0, 2], keepDims: true) },
    OpCase(name: "logSoftmax", shapes: [[3, 5]]) { try $0[0].logSoftmax() },
    OpCase(name: "softmax", shapes: [[2, 4]]) { try $0[0].softmax() },
    OpCase(name: "softplus", shapes: [[3, 4]]) { $0[0].softplus() },
    OpCase(name: "residual add of two blocked activations", shapes: [[2, 3, 6, 6], [16, 3, 3, 3], [16, 3, 3, 3]]) {
        try ($0[0].conv2d(weight: $0[1], padding: 1) + $0[0].conv2d(weight: $0[2], padding: 1)).tanh()
    },
    OpCase(name: "globalAvgPool2d of a square image", shapes: [[2, 3, 4, 4]]) { try $0[0].globalAvgPool2d() },
    // A residual block's input feeds a convolution and the identity: its two gradients are
    // accumulated in the blocked layout; `h * 0.5` adds a plain gradient to a blocked one.
    OpCase(
        name: "blocked activation used twice (residual), plus a plain use",
        shapes: [[2, 3, 6, 6], [16, 3, 3, 3], [16, 16, 3, 3]]
    ) {
        let h = try $0[0].conv2d(weight: $0[1], padding: 1)  // (2, 16, 6, 6), blocked
        return try (h.conv2d(weight: $0[2], padding: 1) + h).tanh() + h * 0.5
    },
    OpCase(name: "globalAvgPool2d and avgPool2d of blocked activations", shapes: [[2, 3, 6, 6], [16, 3, 3, 3]]) {
        let h = try $0[0].conv2d(weight: $0[1], padding: 1)  // (2, 16, 6, 6), blocked
        return try h.avgPool2d(kernel: 2).globalAvgPool2d() + h.globalAvgPool2d()  // (2, 16)
    },
    // Blocked layouts end to end: activations stay in oneDNN's layout between these ops.
    OpCase(
        name: "conv -> batchNorm -> tanh -> convTranspose -> sigmoid chain (smooth, so no kinks)",
        shapes: [[2, 3, 8, 8], [16, 3, 4, 4], [16], [16], [16, 5, 4, 4]]
    ) {
        let h = try $0[0].conv2d(weight: $0[1], stride: 2, padding: 1)
        let b = try h.batchNormTraining(scale: $0[2], shift: $0[3]).output.tanh()
        return try b.convTranspose2d(weight: $0[4], stride: 2, padding: 1).sigmoid()
    },
]

@Test("finite-difference gradient check", arguments: opCases)
func gradientCheck(_ c: OpCase) throws {
    try checkGradients(c)
}

@Test func dropoutScalesKeptValuesAndMasksGradient() throws {
    var g = SeededGenerator(seed: 3)
    let x = Tensor.ones([1000]).requiringGrad()
    let y = try x.dropout(probability: 0.25, generator: &g)
    let kept = y.scalars.filter { $0 != 0 }
    #expect(kept.allSatisfy { Swift.abs($0 - 4.0 / 3.0) < 1e-6 })
    #expect(Swift.abs(Float(kept.count) / 1000 - 0.75) < 0.05)
    y.sum().backward()
    #expect(x.grad!.scalars == y.scalars)
}
