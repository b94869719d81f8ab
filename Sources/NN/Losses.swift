import Autodiff

/// Losses built from tensor primitives; each returns a scalar (mean over the batch).
public enum Loss {
    /// Binary cross-entropy on logits: mean of softplus(x) - x t.
    /// NOTE: log(sigmoid(x)) underflows for x << 0; softplus(x) - x t is the same function,
    /// stable for any x, with gradient sigmoid(x) - t (torch.nn.BCEWithLogitsLoss).
    public static func binaryCrossEntropyWithLogits(_ logits: Tensor, targets: Tensor) throws -> Tensor {
        guard logits.shape == targets.shape else {
            throw TensorError.shapeMismatch(op: "binaryCrossEntropyWithLogits", lhs: logits.shape, rhs: targets.shape)
        }
        return try (logits.softplus() - logits * targets).mean()
    }

    /// BCE on logits against a constant label (1 real, 0 fake).
    public static func binaryCrossEntropyWithLogits(_ logits: Tensor, target: Float) throws -> Tensor {
        try binaryCrossEntropyWithLogits(logits, targets: Tensor(repeating: target, shape: logits.shape))
    }

    /// Cross-entropy of logits (N, C) against class indices, with optional class weights and
    /// label smoothing, matching torch.nn.functional.cross_entropy (reduction "mean"):
    /// loss = sum_i sum_c M_ic (-log p_ic) / sum_i w_{y_i}, M_ic = (1-e) w_{y_i} [c = y_i] + (e/C) w_c.
    /// NOTE: log p comes from logSoftmax (x - logsumexp), never log(softmax(x)).
    public static func crossEntropy(
        _ logits: Tensor, labels: [Int], classWeights: [Float]? = nil,
        labelSmoothing: Float = 0
    ) throws -> Tensor {
        guard logits.rank == 2, logits.shape[0] == labels.count else {
            throw TensorError.shapeMismatch(op: "crossEntropy (logits vs labels)", lhs: logits.shape, rhs: [labels.count])
        }
        let (n, c) = (logits.shape[0], logits.shape[1])
        if let bad = labels.first(where: { $0 < 0 || $0 >= c }) {
            throw TensorError.invalidArgument(op: "crossEntropy", reason: "label \(bad) outside 0..<\(c)")
        }
        let w = classWeights ?? [Float](repeating: 1, count: c)
        guard w.count == c else { throw TensorError.shapeMismatch(op: "crossEntropy class weights", lhs: [c], rhs: [w.count]) }
        guard labelSmoothing >= 0, labelSmoothing <= 1 else {
            throw TensorError.invalidArgument(op: "crossEntropy", reason: "label smoothing \(labelSmoothing) not in [0, 1]")
        }
        var m = [Float](repeating: 0, count: n * c)
        var denominator: Float = 0
        for (i, y) in labels.enumerated() {
            for k in 0..<c { m[i * c + k] = labelSmoothing / Float(c) * w[k] }
            m[i * c + y] += (1 - labelSmoothing) * w[y]
            denominator += w[y]
        }
        let coefficients = try Tensor(shape: [n, c], scalars: m)
        return try (logits.logSoftmax() * coefficients).sum() * (-1 / max(denominator, 1e-12))
    }

    /// Hinge loss for the discriminator: mean(relu(1 - D(real))) + mean(relu(1 + D(fake))).
    public static func hingeDiscriminator(real: Tensor, fake: Tensor) -> Tensor {
        let r = (real * -1 + 1).relu().mean(), f = (fake + 1).relu().mean()
        return try! r + f
    }

    /// Hinge loss for the generator: -mean(D(G(z))).
    public static func hingeGenerator(fake: Tensor) -> Tensor { fake.mean() * -1 }
}
