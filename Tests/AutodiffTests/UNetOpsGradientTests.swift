import Kernels
import SeededRandom
import Testing

@testable import Autodiff

// Finite-difference checks of the diffusion U-Net's ops (see GradientCheckTests.swift for the
// method), on awkward shapes and on the blocked layouts a convolution writes.

let unetOpCases: [OpCase] = [
    OpCase(name: "groupNorm 3 groups", shapes: [[2, 6, 3, 5], [6], [6]]) {
        try $0[0].groupNorm(groups: 3, scale: $0[1], shift: $0[2])
    },
    OpCase(name: "groupNorm batch 1, one group (layer norm)", shapes: [[1, 4, 1, 3], [4], [4]]) {
        try $0[0].groupNorm(groups: 1, scale: $0[1], shift: $0[2])
    },
    OpCase(name: "groupNorm one channel per group (instance norm)", shapes: [[2, 3, 2, 2], [3], [3]]) {
        try $0[0].groupNorm(groups: 3, scale: $0[1], shift: $0[2])
    },
    OpCase(name: "conv (blocked) -> groupNorm -> silu", shapes: [[2, 3, 5, 5], [16, 3, 3, 3], [16], [16]]) {
        try $0[0].conv2d(weight: $0[1], padding: 1).groupNorm(groups: 4, scale: $0[2], shift: $0[3]).silu()
    },
    OpCase(name: "silu", shapes: [[3, 7]]) { $0[0].silu() },
    OpCase(name: "silu on a blocked activation", shapes: [[1, 2, 4, 3], [16, 2, 3, 3]]) {
        try $0[0].conv2d(weight: $0[1], padding: 1).silu()
    },
    OpCase(name: "upsampleNearest x2", shapes: [[2, 3, 3, 5]]) { try $0[0].upsampleNearest() },
    OpCase(name: "upsampleNearest x3 batch 1", shapes: [[1, 1, 2, 3]]) { try $0[0].upsampleNearest(factor: 3) },
    OpCase(name: "upsampleNearest of a blocked activation", shapes: [[1, 2, 3, 3], [16, 2, 1, 1]]) {
        try $0[0].conv2d(weight: $0[1]).upsampleNearest()
    },
    OpCase(name: "concat channels, batch 1, odd sizes", shapes: [[1, 3, 5, 3], [1, 2, 5, 3]]) {
        try Tensor.concat([$0[0], $0[1]], axis: 1)
    },
    OpCase(name: "concat channels of blocked and plain activations", shapes: [[2, 3, 3, 3], [16, 3, 3, 3]]) {
        try Tensor.concat([$0[0].conv2d(weight: $0[1], padding: 1), $0[0]], axis: 1)
    },
    OpCase(name: "attention", shapes: [[2, 5, 3], [2, 5, 3], [2, 5, 3]]) {
        try Tensor.scaledDotProductAttention(query: $0[0], key: $0[1], value: $0[2])
    },
    OpCase(name: "attention one token", shapes: [[1, 1, 4], [1, 1, 4], [1, 1, 4]]) {
        try Tensor.scaledDotProductAttention(query: $0[0], key: $0[1], value: $0[2])
    },
    OpCase(name: "attention one channel, shared input", shapes: [[1, 7, 1]]) {
        try Tensor.scaledDotProductAttention(query: $0[0], key: $0[0], value: $0[0])
    },
    OpCase(name: "batchTransposed", shapes: [[2, 3, 5]]) { try $0[0].batchTransposed() },
    OpCase(name: "timestepEmbedding", shapes: [[4]]) { try $0[0].timestepEmbedding(dimension: 6) },
]

@Test("finite-difference gradient check of the U-Net ops", arguments: unetOpCases)
func unetGradientCheck(_ c: OpCase) throws {
    try checkGradients(c)
}

@Test(
    "concat along channels equals the reference on awkward shapes",
    arguments: [[[1, 1, 1, 1], [1, 2, 1, 1]], [[2, 3, 5, 3], [2, 1, 5, 3], [2, 4, 5, 3]], [[3, 5, 7, 1], [3, 2, 7, 1]]])
func concatMatchesReference(_ shapes: [[Int]]) throws {
    let parts = shapes.enumerated().map { makeInput($1, seed: UInt64($0 + 11), awayFromZero: false, distinct: false) }
    let fast = try Tensor.concat(parts, axis: 1).scalars
    #expect(fast == Reference.concat(parts.map(\.scalars), shapes: shapes, axis: 1))
}

@Test func unetOpsNameBadShapes() throws {
    let x = Tensor.zeros([2, 6, 3, 3])
    #expect(throws: TensorError.self) { try x.groupNorm(groups: 4, scale: .ones([6]), shift: .zeros([6])) }
    #expect(throws: TensorError.self) { try x.groupNorm(groups: 3, scale: .ones([5]), shift: .zeros([6])) }
    #expect(throws: TensorError.self) { try Tensor.zeros([6, 3]).groupNorm(groups: 3, scale: .ones([3]), shift: .zeros([3])) }
    #expect(throws: TensorError.self) { try x.upsampleNearest(factor: 0) }
    #expect(throws: TensorError.self) { try Tensor.zeros([3]).timestepEmbedding(dimension: 5) }
    #expect(throws: TensorError.self) {
        try Tensor.scaledDotProductAttention(query: .zeros([1, 4, 2]), key: .zeros([1, 3, 2]), value: .zeros([1, 4, 2]))
    }
}
