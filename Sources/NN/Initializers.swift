import Autodiff
import SeededRandom

/// Weight initialisers, applied to a built module.
public enum Initializer {
    /// DCGAN (Radford et al. 2015): conv and transposed-conv weights ~ N(0, 0.02); batch-norm
    /// scale ~ N(1, 0.02), shift 0 (pytorch/examples dcgan `weights_init`).
    public static func dcgan(_ module: any Module, generator: inout SeededGenerator) {
        visit(module) { m in
            if let c = m as? Conv2d { fill(c.weight, std: 0.02, generator: &generator); c.bias.map { fill($0, constant: 0) } }
            if let c = m as? ConvTranspose2d {
                fill(c.weight, std: 0.02, generator: &generator); c.bias.map { fill($0, constant: 0) }
            }
            if let b = m as? BatchNorm2d { fill(b.weight, mean: 1, std: 0.02, generator: &generator); fill(b.bias, constant: 0) }
        }
    }

    /// Kaiming (He) normal for ReLU networks: N(0, 2 / fan_in) for conv and linear weights, bias 0.
    public static func kaimingNormal(_ module: any Module, generator: inout SeededGenerator) {
        visit(module) { m in
            for (name, p) in m.ownParameters {
                if name == "weight", p.shape.count >= 2, !(m is BatchNorm2d) {
                    let fanIn = p.shape.dropFirst().reduce(1, *)
                    fill(p, std: (2 / Float(fanIn)).squareRoot(), generator: &generator)
                } else if name == "bias", !(m is BatchNorm2d) {
                    fill(p, constant: 0)
                }
            }
        }
    }

    static func visit(_ m: any Module, _ body: (any Module) -> Void) {
        body(m)
        for (_, c) in m.children { visit(c, body) }
    }

    /// Fills with N(mean, std^2).
    public static func fill(_ p: Parameter, mean: Float = 0, std: Float, generator: inout SeededGenerator) {
        for i in 0..<p.count { p.pointer[i] = mean + std * generator.normal() }
    }

    /// Fills with a constant.
    public static func fill(_ p: Parameter, constant: Float) { p.pointer.update(repeating: constant, count: p.count) }
}
