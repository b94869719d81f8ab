import Autodiff

/// A piece of a network: its own named parameters and buffers, its named children, and a
/// training flag. Names are dotted paths (`main.0.weight`), as in PyTorch state dicts.
/// No reflection: every module lists what it holds.
public protocol Module: AnyObject {
    /// Trainable tensors of this module itself (not its children).
    var ownParameters: [(String, Parameter)] { get }
    /// Saved, non-trainable tensors of this module itself (running statistics).
    var ownBuffers: [(String, Parameter)] { get }
    /// Sub-modules with their names.
    var children: [(String, any Module)] { get }
    /// Training mode (batch statistics, dropout) versus evaluation mode.
    var isTraining: Bool { get set }
}

/// A module that maps one tensor to another.
public protocol Layer: Module {
    func callAsFunction(_ x: Tensor) throws -> Tensor
}

extension Module {
    public var ownParameters: [(String, Parameter)] { [] }
    public var ownBuffers: [(String, Parameter)] { [] }
    public var children: [(String, any Module)] { [] }

    /// Every trainable parameter, depth first, with dotted names.
    public var parameters: [(String, Parameter)] {
        ownParameters + children.flatMap { name, child in child.parameters.map { ("\(name).\($0.0)", $0.1) } }
    }

    /// Every buffer, depth first, with dotted names.
    public var buffers: [(String, Parameter)] {
        ownBuffers + children.flatMap { name, child in child.buffers.map { ("\(name).\($0.0)", $0.1) } }
    }

    /// Parameters and buffers: what a checkpoint saves.
    public var stateTensors: [(String, Parameter)] { parameters + buffers }

    /// Sets training mode here and in every child.
    public func train(_ on: Bool = true) {
        isTraining = on
        for (_, child) in children { child.train(on) }
    }

    public func zeroGrad() { for (_, p) in parameters { p.zeroGrad() } }

    /// Freezes or unfreezes every parameter (frozen ones get no gradient).
    public func setRequiresGrad(_ on: Bool) { for (_, p) in parameters { p.requiresGrad = on } }

    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.1.count } }

    /// The state as a name -> tensor dictionary (copies).
    public func stateDict() -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: stateTensors.map { ($0.0, $0.1.value.copy()) })
    }

    /// Loads every parameter and buffer from `state`; names the missing, unexpected and
    /// wrongly shaped tensors if any (and changes nothing then).
    public func loadStateDict(_ state: [String: Tensor], prefix: String = "", strict: Bool = true) throws {
        let mine = stateTensors
        var missing: [String] = [], wrong: [String] = []
        for (name, p) in mine {
            guard let t = state[prefix + name] else { missing.append(prefix + name); continue }
            if t.shape != p.shape { wrong.append("\(prefix + name): expected \(p.shape), found \(t.shape)") }
        }
        let known = Set(mine.map { prefix + $0.0 })
        let unexpected = strict ? state.keys.filter { $0.hasPrefix(prefix) && !known.contains($0) }.sorted() : []
        guard missing.isEmpty, wrong.isEmpty, unexpected.isEmpty else {
            throw CheckpointError.stateMismatch(missing: missing, wrongShape: wrong, unexpected: unexpected)
        }
        for (name, p) in mine { try p.assign(state[prefix + name]!) }
    }
}

/// Layers applied in order; children are named 0, 1, 2, ... as in torch.nn.Sequential.
public final class Sequential: Layer {
    public var layers: [any Layer]
    public var isTraining = true
    public init(_ layers: [any Layer]) { self.layers = layers }
    public var children: [(String, any Module)] { layers.enumerated().map { ("\($0.offset)", $0.element) } }
    /// Runs the layers in order; a `BatchNorm2d` followed by a `ReLU` runs as one fused pass.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        var h = x, i = 0
        while i < layers.count {
            if let bn = layers[i] as? BatchNorm2d, i + 1 < layers.count, layers[i + 1] is ReLU {
                h = try bn(h, thenReLU: true)
                i += 2
            } else {
                h = try layers[i](h)
                i += 1
            }
        }
        return h
    }
}
