import Autodiff
import Classification
import Foundation
import NN

// The classifier as an ONNX graph, node by node. Values are named after the layer's dotted path
// (the state dict's names: `net.stem.0` is the stem's convolution, its weight the initializer
// `net.stem.0.weight`), so the file reads like the checkpoint. Shapes: N batch, C channels,
// H, W side, K classes; every tensor is float32, NCHW.
//
// Inference mode only: BatchNorm2d reads its running statistics (ONNX BatchNormalization,
// training_mode absent, opset 13), Dropout is the identity and leaves no node.

/// An ONNX graph under construction: nodes in execution order and the weights they read.
struct GraphBuilder {
    private(set) var nodes: [Onnx_NodeProto] = []
    private(set) var initializers: [Onnx_TensorProto] = []

    /// Adds `tensor` as an initializer named `name`; returns the name.
    mutating func constant(_ name: String, _ tensor: Tensor) -> String {
        var proto = Onnx_TensorProto()
        proto.name = name
        proto.dims = tensor.shape.map(Int64.init)
        proto.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        // NOTE: raw_data is little-endian by the ONNX spec; so is every machine we build for.
        proto.rawData = tensor.scalars.withUnsafeBufferPointer { Data(buffer: $0) }
        initializers.append(proto)
        return name
    }

    /// Adds one node computing `op(inputs)` into a value named `name`; returns the name.
    mutating func node(_ op: String, _ inputs: [String], name: String, _ attributes: [Onnx_AttributeProto] = []) -> String {
        var proto = Onnx_NodeProto()
        proto.opType = op
        proto.name = name
        proto.input = inputs
        proto.output = [name]
        proto.attribute = attributes
        nodes.append(proto)
        return name
    }

    /// Renames the value `old` (the output of the last node) to `new`, or adds an Identity.
    mutating func rename(_ old: String, to new: String) {
        if let last = nodes.indices.last, nodes[last].output == [old] {
            nodes[last].output = [new]
        } else {
            _ = node("Identity", [old], name: new)
        }
    }

    // MARK: Layers

    /// The ONNX nodes of one layer of the NN library applied to `x`; returns the output's name.
    mutating func layer(_ module: any Module, _ x: String, path: String) throws(ExportError) -> String {
        switch module {
        case let sequential as Sequential:
            var y = x
            for (name, child) in sequential.children { y = try layer(child, y, path: "\(path).\(name)") }
            return y
        case let conv as Conv2d:  // (N, C, H, W) -> (N, K, P, Q)
            let k = conv.weight.shape[2], s = conv.stride, p = conv.padding
            let weight = constant("\(path).weight", try effective(path) { try conv.effectiveWeight() })
            let bias = conv.bias.map { constant("\(path).bias", $0.value) }
            return node(
                "Conv", [x, weight] + (bias.map { [$0] } ?? []), name: path,
                [.ints("kernel_shape", [k, k]), .ints("strides", [s, s]), .ints("pads", [p, p, p, p])])
        case let bn as BatchNorm2d:  // (N, C, H, W) -> same; (x - mean) / sqrt(var + eps) * weight + bias
            let inputs = [
                x, constant("\(path).weight", bn.weight.value), constant("\(path).bias", bn.bias.value),
                constant("\(path).running_mean", bn.runningMean.value), constant("\(path).running_var", bn.runningVar.value),
            ]
            return node("BatchNormalization", inputs, name: path, [.float("epsilon", bn.epsilon)])
        case is ReLU:
            return node("Relu", [x], name: path)
        case let pool as MaxPool2d:  // floor((H + 2p - k) / s) + 1, padding is -inf (ceil_mode 0)
            let k = pool.kernelSize, s = pool.stride, p = pool.padding
            return node(
                "MaxPool", [x], name: path,
                [.ints("kernel_shape", [k, k]), .ints("strides", [s, s]), .ints("pads", [p, p, p, p])])
        case is Flatten:  // (N, ...) -> (N, rest), row-major as Tensor.flattened
            return node("Flatten", [x], name: path, [.int("axis", 1)])
        case is GlobalAvgPool2d:  // (N, C, H, W) -> (N, C, 1, 1) -> (N, C)
            let pooled = node("GlobalAveragePool", [x], name: path)
            return node("Flatten", [pooled], name: "\(path).flatten", [.int("axis", 1)])
        case let linear as Linear:  // (N, in) -> (N, out): x W^T + b
            let weight = constant("\(path).weight", try effective(path) { try linear.effectiveWeight() })
            let bias = linear.bias.map { constant("\(path).bias", $0.value) }
            return node("Gemm", [x, weight] + (bias.map { [$0] } ?? []), name: path, [.int("transB", 1)])
        case is Dropout:  // the identity in inference
            return x
        default:
            throw .unsupportedLayer(path: path, type: String(describing: type(of: module)))
        }
    }

    /// A layer's weight as used in inference (spectrally normalised when it is).
    private func effective(_ path: String, _ weight: () throws -> Tensor) throws(ExportError) -> Tensor {
        do { return try noGrad { try weight() } } catch {
            throw .unsupportedLayer(path: path, type: "weight not computable: \(error)")
        }
    }

    // MARK: Classifiers

    /// The graph of `model` from the value `x`: (N, C, S, S) -> logits (N, K).
    ///
    /// NOTE: the ResNet's forward lives in Classification (Models.swift: `ResNet`, `BasicBlock`),
    /// whose types are internal there; this walks their children by name and must follow that
    /// code. ExportTests runs both in ONNX Runtime against our own logits, which catches a drift.
    mutating func classifier(_ model: Classifier, _ x: String) throws(ExportError) -> String {
        let net = try child(model, "net", path: "")
        switch model.config.arch {
        case .paperCNN:  // [Conv -> Relu -> MaxPool] x blocks, Flatten, Gemm, Relu, (Dropout), Gemm
            return try layer(net, x, path: "net")
        case .resnet:  // stem, basic blocks, global average pool, Gemm
            var y = try layer(try child(net, "stem", path: "net"), x, path: "net.stem")  // (N, 32, S', S')
            for (name, block) in try child(net, "stages", path: "net").children {
                y = try basicBlock(block, y, path: "net.stages.\(name)")
            }
            y = node("GlobalAveragePool", [y], name: "net.pool")  // (N, 128, 1, 1)
            y = node("Flatten", [y], name: "net.flatten", [.int("axis", 1)])  // (N, 128)
            return try layer(try child(net, "fc", path: "net"), y, path: "net.fc")  // (N, K)
        }
    }

    /// relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), the shortcut a 1x1 conv + BN or x.
    private mutating func basicBlock(_ block: any Module, _ x: String, path: String) throws(ExportError) -> String {
        var y = try layer(try child(block, "conv1", path: path), x, path: "\(path).conv1")
        y = try layer(try child(block, "bn1", path: path), y, path: "\(path).bn1")
        y = node("Relu", [y], name: "\(path).relu1")
        y = try layer(try child(block, "conv2", path: path), y, path: "\(path).conv2")
        y = try layer(try child(block, "bn2", path: path), y, path: "\(path).bn2")
        var skip = x
        if let shortcut = block.children.first(where: { $0.0 == "shortcut" })?.1 {
            skip = try layer(shortcut, x, path: "\(path).shortcut")  // (N, Cout, H/stride, W/stride)
        }
        let sum = node("Add", [y, skip], name: "\(path).add")
        return node("Relu", [sum], name: "\(path).relu2")
    }

    private func child(_ module: any Module, _ name: String, path: String) throws(ExportError) -> any Module {
        guard let found = module.children.first(where: { $0.0 == name })?.1 else {
            let at = path.isEmpty ? name : "\(path).\(name)"
            throw .unsupportedLayer(path: at, type: "missing (the classifier's layout changed; update ONNXGraph.swift)")
        }
        return found
    }
}

extension Onnx_AttributeProto {
    static func int(_ name: String, _ value: Int) -> Self {
        var a = Self()
        (a.name, a.type, a.i) = (name, .int, Int64(value))
        return a
    }

    static func ints(_ name: String, _ values: [Int]) -> Self {
        var a = Self()
        (a.name, a.type, a.ints) = (name, .ints, values.map(Int64.init))
        return a
    }

    static func float(_ name: String, _ value: Float) -> Self {
        var a = Self()
        (a.name, a.type, a.f) = (name, .float, value)
        return a
    }
}
