import Foundation
import Testing

@testable import Autodiff
@testable import NN

/// Adam after 3 steps on f(p) = sum(c * p^2), against the update written out in Double.
@Test("Adam and AdamW state after 3 steps", arguments: [false, true])
func adamThreeSteps(decoupled: Bool) throws {
    let p0: [Double] = [0.5, -1.5, 2.0], c: [Double] = [1, 2, 0.5]
    let lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1
    let param = Parameter(try Tensor(shape: [3], scalars: p0.map(Float.init)))
    let adam = Adam([("p", param)], learningRate: Float(lr), weightDecay: Float(wd), decoupledWeightDecay: decoupled)
    var p = p0, m = [0.0, 0, 0], v = [0.0, 0, 0]
    for t in 1...3 {
        param.zeroGrad()
        let cT = try Tensor(shape: [3], scalars: c.map(Float.init))
        try (cT * param.tensor.squared()).sum().backward()
        adam.step()
        for i in 0..<3 {
            var g = 2 * c[i] * p[i]
            if decoupled { p[i] -= lr * wd * p[i] } else { g += wd * p[i] }
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            let mh = m[i] / (1 - pow(b1, Double(t))), vh = v[i] / (1 - pow(b2, Double(t)))
            p[i] -= lr * mh / (vh.squareRoot() + eps)
        }
    }
    for i in 0..<3 {
        #expect(abs(Double(param.value.scalars[i]) - p[i]) < 1e-5)
        #expect(abs(Double(adam.m[0].scalars[i]) - m[i]) < 1e-5)
        #expect(abs(Double(adam.v[0].scalars[i]) - v[i]) < 1e-5)
    }
    #expect(adam.stepCount == 3)
}

/// Golden values from PyTorch 2 (torch.optim.Adam(lr=0.1) and AdamW(lr=0.1, weight_decay=0.1)):
/// `p = torch.tensor([0.5, -1.5, 2.0], requires_grad=True); c = torch.tensor([1., 2., .5])`,
/// three steps of `opt.zero_grad(); (c * p**2).sum().backward(); opt.step()`; then p, exp_avg, exp_avg_sq.
@Test(
    "Adam and AdamW match PyTorch after 3 steps",
    arguments: [
        (
            false, [0.2048712521791458, -1.2009029388427734, 1.7006233930587769],
            [0.2132374793291092, -1.5100957155227661, 0.5130166411399841],
            [0.002000216394662857, 0.09430662542581558, 0.010838993825018406]
        ),
        (
            true, [0.19341561198234558, -1.159520149230957, 1.6443686485290527],
            [0.21056774258613586, -1.4931747913360596, 0.5073409080505371],
            [0.0019633248448371887, 0.09245378524065018, 0.01062543224543333]
        ),
    ] as [(Bool, [Float], [Float], [Float])])
func adamMatchesTorch(_ fixture: (Bool, [Float], [Float], [Float])) throws {
    let (decoupled, p, m, v) = fixture
    let param = Parameter(try Tensor(shape: [3], scalars: [0.5, -1.5, 2.0]))
    let adam =
        decoupled
        ? Adam.adamW([("p", param)], learningRate: 0.1, weightDecay: 0.1)
        : Adam([("p", param)], learningRate: 0.1)
    for _ in 0..<3 {
        param.zeroGrad()
        try (Tensor(shape: [3], scalars: [1, 2, 0.5]) * param.tensor.squared()).sum().backward()
        adam.step()
    }
    for i in 0..<3 {
        #expect(abs(param.value.scalars[i] - p[i]) < 1e-6)
        #expect(abs(adam.m[0].scalars[i] - m[i]) < 1e-6)
        #expect(abs(adam.v[0].scalars[i] - v[i]) < 1e-5)  // float32 summation order differs
    }
}

@Test func sgdMomentumAndWeightDecay() throws {
    let param = Parameter(try Tensor(shape: [2], scalars: [1, -2]))
    let sgd = SGD([("p", param)], learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)
    var p: [Double] = [1, -2], buf: [Double] = [0, 0]
    for t in 1...3 {
        param.zeroGrad()
        try param.tensor.squared().sum().backward()
        sgd.step()
        for i in 0..<2 {
            let g = 2 * p[i] + 0.01 * p[i]
            buf[i] = t == 1 ? g : 0.9 * buf[i] + g
            p[i] -= 0.1 * buf[i]
        }
    }
    for i in 0..<2 { #expect(abs(Double(param.value.scalars[i]) - p[i]) < 1e-5) }
}

@Test func learningRateSchedules() {
    #expect(LearningRateSchedule.step(stepSize: 10, gamma: 0.5).rate(base: 1, epoch: 25) == 0.25)
    #expect(abs(LearningRateSchedule.cosine(tMax: 10, minimum: 0).rate(base: 1, epoch: 5) - 0.5) < 1e-6)
    #expect(LearningRateSchedule.cosine(tMax: 10, minimum: 0.1).rate(base: 1, epoch: 10) == 0.1)
    #expect(LearningRateSchedule.constant.rate(base: 0.3, epoch: 99) == 0.3)
}
