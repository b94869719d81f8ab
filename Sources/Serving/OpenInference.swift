import Foundation

// The Open Inference Protocol v2 (KServe's REST form, which Triton's clients speak) with Triton's
// binary tensor data extension.
//
// Shapes: an image batch is `[N, C, H, W]` (NCHW, row-major), N images of the model's (C, H, W);
// the outputs are `probabilities` `[N, K]` (FP32, K classes) and `label` `[N]` (BYTES, the most
// probable class name).
//
// Binary tensor data: the request header `Inference-Header-Content-Length: L` says the body's
// first L bytes are the JSON request; the rest is raw tensor data, one chunk per input that
// carries `parameters.binary_data_size` (its byte count), in input order. FP32 is 4 bytes
// little-endian per element, UINT8 one byte. An answer carries binary data for each output asked
// for it (`parameters.binary_data` on the output, else the request's `binary_data_output`); it
// then has the same header, the JSON first and the outputs' bytes after it, each output's JSON
// giving `parameters.binary_data_size`. BYTES elements are a 4-byte little-endian length and the
// bytes. Spec: triton-inference-server/server docs/protocol/extension_binary_data.md.

/// `POST /v2/models/{name}[/versions/{v}]/infer` body (JSON part).
public struct InferRequest: Codable, Sendable {
    /// Client-chosen request id, echoed back.
    public var id: String?
    /// Request parameters; only `binary_data_output` means anything here.
    public var parameters: RequestParameters?
    /// Exactly one image tensor, `[N, C, H, W]`.
    public var inputs: [InferInput]
    /// The outputs wanted (nil or empty: all of them).
    public var outputs: [RequestedOutput]?
}

/// Request-level parameters of an inference request.
public struct RequestParameters: Codable, Sendable {
    /// Default for every output: answer with binary data rather than JSON `data`.
    public var binary_data_output: Bool?
}

/// One input tensor: its values as JSON `data`, or as binary data after the JSON.
public struct InferInput: Codable, Sendable {
    /// Tensor name (any; the model has one input).
    public var name: String
    /// Dimensions, `[N, C, H, W]`.
    public var shape: [Int]
    /// `FP32` or `UINT8`.
    public var datatype: String
    /// `binary_data_size` when the values come after the JSON.
    public var parameters: InputParameters?
    /// Row-major values; nested arrays (as the protocol allows) are flattened when decoded.
    public var data: FlatNumbers?
}

/// Parameters of one input tensor.
public struct InputParameters: Codable, Sendable {
    /// Bytes of this input's values in the binary part of the body.
    public var binary_data_size: Int?
    /// Triton's shared-memory extension, which this server refuses (set only to name it in the error).
    public var shared_memory_region: String?
}

/// One output a request asks for.
public struct RequestedOutput: Codable, Sendable {
    /// `probabilities` or `label`.
    public var name: String
    /// `binary_data` for this output; `classification` and shared memory are refused.
    public var parameters: RequestedOutputParameters?
}

/// Parameters of one requested output.
public struct RequestedOutputParameters: Codable, Sendable {
    /// Answer this output as binary data (overrides the request's `binary_data_output`).
    public var binary_data: Bool?
    /// Triton's classification extension (top-k classes), refused.
    public var classification: Int?
    /// Triton's shared-memory extension, refused.
    public var shared_memory_region: String?
}

/// `POST /v2/models/{name}[/versions/{v}]/infer` answer (its JSON part).
public struct InferResponse: Codable, Sendable {
    /// Model name (protocol spelling).
    public var model_name: String
    /// Model version, as a string.
    public var model_version: String
    /// Client-chosen request id, echoed back.
    public var id: String?
    /// The outputs asked for, in the order asked (all: `probabilities` then `label`).
    public var outputs: [InferOutput]
}

/// One output tensor of an answer: JSON `data`, or `parameters.binary_data_size` bytes after the JSON.
public struct InferOutput: Codable, Sendable {
    /// `probabilities` or `label`.
    public var name: String
    /// Dimensions: `[N, K]` or `[N]`.
    public var shape: [Int]
    /// `FP32` or `BYTES`.
    public var datatype: String
    /// Set when the values are binary data after the JSON.
    public var parameters: OutputParameters?
    /// Row-major values, nil when they are binary data.
    public var data: TensorData?
}

/// Parameters of one output tensor in an answer.
public struct OutputParameters: Codable, Sendable, Equatable {
    /// Bytes of this output in the binary part of the answer.
    public var binary_data_size: Int
}

/// The JSON `data` of an output: numbers (FP32) or strings (BYTES).
public enum TensorData: Codable, Sendable, Equatable {
    /// FP32 values, row-major (a nested JSON array is flattened when decoded).
    case numbers([Double])
    /// BYTES elements as UTF-8 strings, row-major.
    case strings([String])

    public init(from decoder: any Decoder) throws {
        if let strings = try? [String](from: decoder) {
            self = .strings(strings)
        } else {
            self = .numbers(try FlatNumbers(from: decoder).values)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .numbers(let values): try container.encode(values)
        case .strings(let values): try container.encode(values)
        }
    }

    /// The numbers, or empty for strings.
    public var numbers: [Double] { if case .numbers(let values) = self { values } else { [] } }
    /// The strings, or empty for numbers.
    public var strings: [String] { if case .strings(let values) = self { values } else { [] } }
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

/// `GET /v2` answer: who this server is and which protocol extensions it speaks.
public struct ServerMetadata: Codable, Sendable, Equatable {
    /// Always `medsynth`.
    public var name: String
    /// The version of this server's protocol surface.
    public var version: String
    /// `binary_tensor_data`.
    public var extensions: [String]

    /// This server's metadata.
    public static let medsynth = ServerMetadata(name: "medsynth", version: "1", extensions: ["binary_tensor_data"])
}

/// `GET /v2/models/{name}[/versions/{v}]` answer.
public struct ModelMetadata: Codable, Sendable, Equatable {
    /// Name, datatype and shape of one input or output.
    public struct TensorMetadata: Codable, Sendable, Equatable {
        /// Tensor (or model) name.
        public var name: String
        /// `FP32`, `UINT8` or `BYTES`.
        public var datatype: String
        /// Dimensions; -1 means any.
        public var shape: [Int]
    }
    /// Model name.
    public var name: String
    /// The version served.
    public var versions: [String]
    /// Always `medsynth`.
    public var platform: String
    /// The image input.
    public var inputs: [TensorMetadata]
    /// `probabilities` and `label`.
    public var outputs: [TensorMetadata]
    /// Not in the protocol: the class names, in output order.
    public var classNames: [String]

    /// The metadata of `model`.
    init(of model: any InferenceModel) {
        let (c, h, w) = model.inputShape
        self.init(
            name: model.name, versions: ["\(model.version)"], platform: "medsynth",
            inputs: [.init(name: "images", datatype: "FP32", shape: [-1, c, h, w])],
            outputs: ServedOutput.allCases.map { .init(name: $0.rawValue, datatype: $0.datatype, shape: $0.shape(-1, model)) },
            classNames: model.classNames)
    }

    init(
        name: String, versions: [String], platform: String, inputs: [TensorMetadata], outputs: [TensorMetadata],
        classNames: [String]
    ) {
        (self.name, self.versions, self.platform) = (name, versions, platform)
        (self.inputs, self.outputs, self.classNames) = (inputs, outputs, classNames)
    }
}

/// The outputs the server computes for every request.
enum ServedOutput: String, CaseIterable, Sendable {
    /// Class probabilities, `[N, K]` FP32.
    case probabilities
    /// The most probable class name per image, `[N]` BYTES.
    case label

    var datatype: String { self == .probabilities ? "FP32" : "BYTES" }

    func shape(_ count: Int, _ model: any InferenceModel) -> [Int] {
        self == .probabilities ? [count, model.classNames.count] : [count]
    }
}

/// One output to answer with, and whether as binary data.
struct OutputPlan: Equatable, Sendable {
    var output: ServedOutput
    var binary: Bool
}

/// Splits an infer body into its JSON part and the binary tensor data after it, as
/// `Inference-Header-Content-Length` (`headerLength`; nil: all JSON) says.
func splitInferBody(_ body: [UInt8], headerLength: String?) throws -> (json: ArraySlice<UInt8>, binary: ArraySlice<UInt8>) {
    guard let headerLength else { return (body[...], []) }
    guard let length = Int(headerLength), (0...body.count).contains(length) else {
        throw ServingError.badRequest(
            "Inference-Header-Content-Length '\(headerLength)' is not a byte count in 0...\(body.count) (the body's length)")
    }
    return (body[..<length], body[length...])
}

extension InferRequest {
    /// Decodes the JSON part of an infer body; 400 naming the fault when it is not a request.
    static func decode(_ json: ArraySlice<UInt8>) throws -> InferRequest {
        do { return try JSONDecoder().decode(InferRequest.self, from: Data(json)) } catch {
            throw ServingError.badRequest("body is not an inference request: \(describe(error))")
        }
    }

    /// The outputs to answer with, in order; 400 for an unknown or repeated name, or an extension
    /// this server does not speak (classification, shared memory).
    func outputPlan() throws -> [OutputPlan] {
        let binaryDefault = parameters?.binary_data_output ?? false
        guard let outputs, !outputs.isEmpty else {
            return ServedOutput.allCases.map { OutputPlan(output: $0, binary: binaryDefault) }
        }
        var plan: [OutputPlan] = []
        for requested in outputs {
            guard let output = ServedOutput(rawValue: requested.name) else {
                let known = ServedOutput.allCases.map(\.rawValue).joined(separator: ", ")
                throw ServingError.badRequest("unknown output '\(requested.name)'; the model's outputs are \(known)")
            }
            guard !plan.contains(where: { $0.output == output }) else {
                throw ServingError.badRequest("output '\(requested.name)' is requested twice")
            }
            if requested.parameters?.classification != nil {
                throw ServingError.badRequest("output '\(requested.name)': the classification extension is not supported")
            }
            if requested.parameters?.shared_memory_region != nil {
                throw ServingError.badRequest("output '\(requested.name)': shared memory is not supported")
            }
            plan.append(OutputPlan(output: output, binary: requested.parameters?.binary_data ?? binaryDefault))
        }
        return plan
    }

    /// The request's images as NCHW Floats in [0, 1], checked against the model's input.
    ///
    /// One input; shape `[N, C, H, W]` equal to the model's (C, H, W), 1 <= N <= `maxBatch`;
    /// `FP32` values finite and in [0, 1], or `UINT8` integers 0...255 (divided by 255); as JSON
    /// `data`, or as exactly `binary_data_size` bytes of `binary` (all of it: no byte left over).
    func images(for model: any InferenceModel, maxBatch: Int, binary: ArraySlice<UInt8> = []) throws -> (
        pixels: [Float], count: Int
    ) {
        guard inputs.count == 1, let input = inputs.first else {
            throw ServingError.badRequest("expected exactly 1 input tensor, got \(inputs.count)")
        }
        let name = input.name
        let (c, h, w) = model.inputShape
        guard input.shape.count == 4, Array(input.shape[1...]) == [c, h, w] else {
            throw ServingError.badRequest("input '\(name)' has shape \(input.shape); the model takes [N, \(c), \(h), \(w)]")
        }
        let count = input.shape[0]
        guard (1...maxBatch).contains(count) else {
            throw ServingError.badRequest("input '\(name)': batch size \(count) outside 1...\(maxBatch)")
        }
        let elementBytes: Int
        switch input.datatype {
        case "FP32": elementBytes = 4
        case "UINT8": elementBytes = 1
        default: throw ServingError.badRequest("input '\(name)': datatype '\(input.datatype)' not supported (FP32 or UINT8)")
        }
        if input.parameters?.shared_memory_region != nil {
            throw ServingError.badRequest("input '\(name)': shared memory is not supported")
        }
        let elements = count * c * h * w
        let values: [Float]
        if let size = input.parameters?.binary_data_size {
            guard input.data == nil else {
                throw ServingError.badRequest("input '\(name)' has both JSON data and binary_data_size")
            }
            guard size == elements * elementBytes else {
                throw ServingError.badRequest(
                    "input '\(name)': binary_data_size \(size), but shape \(input.shape) of \(input.datatype) is "
                        + "\(elements * elementBytes) bytes")
            }
            guard binary.count == size else {
                throw ServingError.badRequest(
                    "input '\(name)': binary_data_size \(size), but the body has \(binary.count) bytes after its "
                        + "JSON header (Inference-Header-Content-Length)")
            }
            values = elementBytes == 4 ? littleEndianFloats(binary) : binary.map { Float($0) / 255 }
        } else {
            guard binary.isEmpty else {
                throw ServingError.badRequest(
                    "\(binary.count) bytes of binary data after the JSON header, but no input has binary_data_size")
            }
            guard let data = input.data?.values else {
                throw ServingError.badRequest("input '\(name)' has neither data nor parameters.binary_data_size")
            }
            guard data.count == elements else {
                throw ServingError.badRequest("input '\(name)': shape \(input.shape) needs \(elements) values, got \(data.count)")
            }
            if input.datatype == "UINT8" {
                if let bad = data.firstIndex(where: { !($0 >= 0 && $0 <= 255 && $0 == $0.rounded()) }) {
                    throw ServingError.badRequest(
                        "input '\(name)': UINT8 values must be integers 0...255; data[\(bad)] = \(data[bad])")
                }
                values = data.map { Float($0) / 255 }
            } else {
                try checkUnitRange(data, name)  // before rounding to Float: 1 + 1e-12 is refused
                values = data.map { Float($0) }
            }
        }
        if input.datatype == "FP32" { try checkUnitRange(values, name) }
        return (values, count)
    }

    /// 400 unless every value is a number in [0, 1] (NaN is not).
    private func checkUnitRange<T: BinaryFloatingPoint>(_ values: [T], _ name: String) throws {
        guard let bad = values.firstIndex(where: { !($0 >= 0 && $0 <= 1) }) else { return }
        throw ServingError.badRequest("input '\(name)': FP32 values must lie in [0, 1]; data[\(bad)] = \(values[bad])")
    }
}

/// IEEE-754 single-precision floats from little-endian bytes (`bytes.count` a multiple of 4).
func littleEndianFloats(_ bytes: ArraySlice<UInt8>) -> [Float] {
    let base = bytes.startIndex
    return (0..<bytes.count / 4).map { i in
        let at = base + 4 * i
        let bits =
            UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        return Float(bitPattern: bits)
    }
}

/// The index of the largest value (the first of equals): the predicted class.
func argmax(_ row: [Float]) -> Int { row.indices.max { row[$0] < row[$1] } ?? 0 }

/// An infer answer: the JSON part and the binary data after it (empty when every output is JSON).
func inferAnswer(
    model: any InferenceModel, id: String?, rows: [[Float]], plan: [OutputPlan]
) -> (response: InferResponse, binary: [UInt8]) {
    var binary: [UInt8] = []
    var outputs: [InferOutput] = []
    for item in plan {
        let shape = item.output.shape(rows.count, model)
        let datatype = item.output.datatype
        switch (item.output, item.binary) {
        case (.probabilities, false):
            outputs.append(
                InferOutput(
                    name: "probabilities", shape: shape, datatype: datatype,
                    data: .numbers(rows.flatMap { $0.map(Double.init) })))
        case (.probabilities, true):
            let start = binary.count
            for value in rows.joined() { withUnsafeBytes(of: value.bitPattern.littleEndian) { binary += $0 } }
            outputs.append(
                InferOutput(
                    name: "probabilities", shape: shape, datatype: datatype,
                    parameters: OutputParameters(binary_data_size: binary.count - start)))
        case (.label, false):
            outputs.append(
                InferOutput(
                    name: "label", shape: shape, datatype: datatype, data: .strings(rows.map { model.classNames[argmax($0)] })))
        case (.label, true):
            let start = binary.count
            for row in rows {
                let name = Array(model.classNames[argmax(row)].utf8)
                withUnsafeBytes(of: UInt32(name.count).littleEndian) { binary += $0 }
                binary += name
            }
            outputs.append(
                InferOutput(
                    name: "label", shape: shape, datatype: datatype,
                    parameters: OutputParameters(binary_data_size: binary.count - start)))
        }
    }
    return (
        InferResponse(model_name: model.name, model_version: "\(model.version)", id: id, outputs: outputs), binary
    )
}
