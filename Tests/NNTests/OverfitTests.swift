import Datasets
import Foundation
import SeededRandom
import TestSupport
import Testing

@testable import Autodiff
@testable import NN

/// A small CNN must be able to drive the training loss of 64 real ultrasound images near zero:
/// the whole stack (decoding, conv, pooling, batch norm, linear, cross-entropy, Adam) learns.
@Test func smallCNNMemorisesSixtyFourRealImages() throws {
    let loaded = try loadDataset(at: sharedData("breastmnist-png"))
    let images = loaded.images
    // 32 of each class.
    let picks = (0..<2).flatMap { c in images.labels.indices.filter { images.labels[$0] == c }.prefix(32) }
    let (pixels, labels) = images.gather(Array(picks))
    let x = try Tensor(shape: [64, 1, 28, 28], scalars: pixels)
    var g = SeededGenerator(seed: 0)
    let net = Sequential([
        Conv2d(1, 16, kernelSize: 3, padding: 1, generator: &g), BatchNorm2d(16), ReLU(), MaxPool2d(2),  // (64, 16, 14, 14)
        Conv2d(16, 32, kernelSize: 3, padding: 1, generator: &g), BatchNorm2d(32), ReLU(), MaxPool2d(2),  // (64, 32, 7, 7)
        Flatten(), Linear(32 * 7 * 7, 64, generator: &g), ReLU(), Linear(64, 2, generator: &g),  // (64, 2)
    ])
    let adam = Adam(net.parameters, learningRate: 3e-3)
    var first: Float = 0, last: Float = 0
    for step in 0..<60 {
        net.zeroGrad()
        let loss = try Loss.crossEntropy(net(x), labels: labels)
        loss.backward()
        adam.step()
        if step == 0 { first = loss.item }
        last = loss.item
    }
    #expect(first > 0.5)
    #expect(last < 0.02, "loss went from \(first) to \(last)")
    net.train(false)
    let predictions = try noGrad { try net(x) }.scalars
    let correct = (0..<64).filter { (predictions[$0 * 2 + 1] > predictions[$0 * 2] ? 1 : 0) == labels[$0] }.count
    #expect(correct == 64)
}
