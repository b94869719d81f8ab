import Foundation

/// `POST /v2/models/{name}/infer` body (Open Inference Protocol v2, JSON form).
public struct InferRequest: Codable, Sendable {
    /// Client-chosen request id, echoed back.
    public var id: String?
    /// Exactly one image tensor, `[N, C, H, W]`.
    public var inputs: [InferTensor]
}

/// `POST /v2/models/{name}/infer` answer.
public struct InferResponse: Codable, Sendable {
    /// Model name (protocol spelling).
    public var model_name: String
    /// Model version, as a string.
    public var model_version: String
    /// Client-chosen request id, echoed back.
    public var id: String?
    /// One tensor `probabilities`, `[N, K]`.
    public var outputs: [InferTensor]
}

/// One named tensor: shape, datatype (`FP32`, `UINT8`) and row-major data.
public struct InferTensor: Codable, Sendable {
    /// Tensor (or model) name.
    public var name: String
    /// Dimensions; -1 means any.
    public var shape: [Int]
    /// `FP32` or `UINT8`.
    public var datatype: String
    /// Row-major values; nested arrays (as the protocol allows) are flattened when decoded.
    public var data: FlatNumbers
}

/// A flat list of numbers decoded from a JSON array nested to any depth.
public struct FlatNumbers: Codable, Sendable {
    /// The numbers, row-major.
    public var values: [Double]

    /// Wraps flat values.
    public init(_ values: [Double]) { self.values = values }

    public init(from decoder: any Decoder) throws {
        values = []
        var container = try decoder.unkeyedContainer()
        try Self.flatten(&container, into: &values, depth: 0)
    }

    static func flatten(_ container: inout any UnkeyedDecodingContainer, into values: inout [Double], depth: Int) throws {
        guard depth < 8 else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "data nested deeper than 8 levels")
        }
        while !container.isAtEnd {
            if let value = try? container.decode(Double.self) {
                values.append(value)
            } else {
                var nested = try container.nestedUnkeyedContainer()
                try flatten(&nested, into: &values, depth: depth + 1)
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(values)
    }
}

/// `GET /v2/models/{name}` answer.
public struct ModelMetadata: Codable, Sendable, Equatable {
    /// Name, datatype and shape of one input or output.
    public struct TensorMetadata: Codable, Sendable, Equatable {
        /// Tensor (or model) name.
        public var name: String
        /// `FP32` or `UINT8`.
        public var datatype: String
        /// Dimensions; -1 means any.
        public var shape: [Int]
    }
    /// Tensor (or model) name.
    public var name: String
    /// The version served.
    public var versions: [String]
    /// Always `medsynth`.
    public var platform: String
    /// The image input.
    public var inputs: [TensorMetadata]
    /// The probabilities output.
    public var outputs: [TensorMetadata]
    /// Not in the protocol: the class names, in output order.
    public var classNames: [String]
}

extension InferRequest {
    /// The request's images as NCHW Floats in [0, 1], checked against the model's input.
    ///
    /// One input; shape `[N, C, H, W]` equal to the model's (C, H, W), 1 <= N <= `maxBatch`;
    /// `FP32` values finite and in [0, 1], or `UINT8` integers 0...255 (divided by 255).
    func images(for model: any InferenceModel, maxBatch: Int) throws -> (pixels: [Float], count: Int) {
        guard inputs.count == 1, let input = inputs.first else {
            throw ServingError.badRequest("expected exactly 1 input tensor, got \(inputs.count)")
        }
        let (c, h, w) = model.inputShape
        guard input.shape.count == 4, Array(input.shape[1...]) == [c, h, w] else {
            throw ServingError.badRequest("input '\(input.name)' has shape \(input.shape); the model takes [N, \(c), \(h), \(w)]")
        }
        let count = input.shape[0]
        guard (1...maxBatch).contains(count) else {
            throw ServingError.badRequest("input '\(input.name)': batch size \(count) outside 1...\(maxBatch)")
        }
        guard input.data.values.count == count * c * h * w else {
            throw ServingError.badRequest(
                "input '\(input.name)': shape \(input.shape) needs \(count * c * h * w) values, got \(input.data.values.count)")
        }
        switch input.datatype {
        case "FP32":
            guard let bad = input.data.values.firstIndex(where: { !($0 >= 0 && $0 <= 1) }) else {
                return (input.data.values.map { Float($0) }, count)
            }
            throw ServingError.badRequest(
                "input '\(input.name)': FP32 values must lie in [0, 1]; data[\(bad)] = \(input.data.values[bad])")
        case "UINT8":
            guard let bad = input.data.values.firstIndex(where: { !($0 >= 0 && $0 <= 255 && $0 == $0.rounded()) }) else {
                return (input.data.values.map { Float($0) / 255 }, count)
            }
            throw ServingError.badRequest(
                "input '\(input.name)': UINT8 values must be integers 0...255; data[\(bad)] = \(input.data.values[bad])")
        default:
            throw ServingError.badRequest("input '\(input.name)': datatype '\(input.datatype)' not supported (FP32 or UINT8)")
        }
    }
}
