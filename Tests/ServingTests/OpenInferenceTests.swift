import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import Serving

// The core Open Inference Protocol (server metadata, versioned routes, requested outputs) and
// Triton's binary tensor data extension, through the router without a socket.

/// An infer body with binary tensor data: `json`, then `binary`; the header that says where the JSON ends.
func binaryInferBody(_ json: [String: Any], _ binary: [UInt8], headerLength: String? = nil) throws -> (ByteBuffer, HTTPFields) {
    let header = try JSONSerialization.data(withJSONObject: json)
    var fields = HTTPFields()
    fields[inferenceHeaderContentLength] = headerLength ?? "\(header.count)"
    return (ByteBuffer(bytes: Array(header) + binary), fields)
}

/// Float32 values as little-endian bytes (the extension's layout), written independently of the server.
func littleEndianBytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { value -> [UInt8] in
        let bits = value.bitPattern
        return [UInt8(bits & 0xFF), UInt8(bits >> 8 & 0xFF), UInt8(bits >> 16 & 0xFF), UInt8(bits >> 24)]
    }
}

/// An answer's JSON part and the binary data after it (all JSON without the header).
func splitAnswer(_ response: TestResponse) throws -> (InferResponse, [UInt8]) {
    let bytes = Array(response.body.readableBytesView)
    let length = try response.headers[inferenceHeaderContentLength].map { try #require(Int($0)) } ?? bytes.count
    return (try JSONDecoder().decode(InferResponse.self, from: Data(bytes[..<length])), Array(bytes[length...]))
}

/// The FP32 values of an output's binary chunk (read with Foundation, not the server's reader).
func floats(_ bytes: ArraySlice<UInt8>) -> [Float] {
    stride(from: bytes.startIndex, to: bytes.endIndex, by: 4).map { at in
        Data(bytes[at..<at + 4]).withUnsafeBytes { Float(bitPattern: UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))) }
    }
}

/// BYTES elements: 4-byte little-endian length, then the bytes.
func strings(_ bytes: ArraySlice<UInt8>) -> [String] {
    var out: [String] = [], at = bytes.startIndex
    while at + 4 <= bytes.endIndex {
        let n = Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
        out.append(String(decoding: bytes[(at + 4)..<(at + 4 + n)], as: UTF8.self))
        at += 4 + n
    }
    return out
}

/// Two real images, their pixels, the model's probabilities and labels for them.
struct Probe: Sendable {
    let pixels: [Float]
    let expected: [[Float]]
    let labels: [String]

    init(_ state: ServingState) throws {
        let images = try TrainedModel.shared.get().images
        // One of each class (the first 200 are not all one class), so both labels can appear.
        pixels = images.gather([0, 200]).pixels
        let model = state.deployment!.model
        expected = try model.predict(pixels, count: 2)
        labels = expected.map { row in model.classNames[row[0] >= row[1] ? 0 : 1] }
    }
}

@Test func serverMetadataAndVersionedRoutes() async throws {
    let state = try makeState()
    let probe = try Probe(state)
    let request = try body([
        "inputs": [["name": "images", "shape": [2, 1, 28, 28], "datatype": "FP32", "data": probe.pixels.map(Double.init)]]
    ])
    try await buildApplication(state: state).test(.router) { client in
        try await client.execute(uri: "/v2", method: .get) { response in
            #expect(response.status == .ok)
            let metadata = try JSONDecoder().decode(ServerMetadata.self, from: Data(buffer: response.body))
            #expect(metadata.name == "medsynth" && metadata.extensions == ["binary_tensor_data"])
        }
        let unversioned = try await client.execute(uri: "/v2/models/breast", method: .get) { Data(buffer: $0.body) }
        try await client.execute(uri: "/v2/models/breast/versions/1", method: .get) { response in
            #expect(response.status == .ok && Data(buffer: response.body) == unversioned)
        }
        try await client.execute(uri: "/v2/models/breast/versions/1/ready", method: .get) { #expect($0.status == .ok) }
        try await client.execute(uri: "/v2/models/breast/ready", method: .get) { #expect($0.status == .ok) }
        for route in ["", "/ready"] {
            try await client.execute(uri: "/v2/models/breast/versions/2\(route)", method: .get) { response in
                #expect(response.status == .notFound)
                #expect((object(response.body)["error"] as? String)?.contains("no version '2'") == true)
            }
        }
        try await client.execute(uri: "/v2/models/breast/versions/2/infer", method: .post, body: request) { response in
            #expect(response.status == .notFound && object(response.body)["error"] != nil)
        }
        try await client.execute(uri: "/v2/models/lung/versions/1", method: .get) { #expect($0.status == .notFound) }
        for uri in ["/v2/models/breast/infer", "/v2/models/breast/versions/1/infer"] {
            try await client.execute(uri: uri, method: .post, body: request) { response in
                #expect(response.status == .ok && response.headers[inferenceHeaderContentLength] == nil)
                let (answer, binary) = try splitAnswer(response)
                #expect(binary.isEmpty && answer.model_version == "1")
                #expect(answer.outputs.map(\.name) == ["probabilities", "label"])
                #expect(answer.outputs[1].shape == [2] && answer.outputs[1].data == .strings(probe.labels))
                for (got, want) in zip(answer.outputs[0].data!.numbers, probe.expected.joined()) {
                    #expect(abs(got - Double(want)) < 1e-6, "\(uri)")
                }
            }
        }
    }
}

/// Binary FP32 and UINT8 inputs give the JSON request's answer; binary outputs carry it exactly.
@Test func binaryTensorDataInAndOut() async throws {
    let state = try makeState()
    let probe = try Probe(state)
    let bytes = probe.pixels.map { UInt8(($0 * 255).rounded()) }
    try await buildApplication(state: state).test(.router) { client in
        for (datatype, payload) in [("FP32", littleEndianBytes(probe.pixels)), ("UINT8", bytes)] {
            let (request, headers) = try binaryInferBody(
                [
                    "id": "b", "parameters": ["binary_data_output": true],
                    "inputs": [
                        [
                            "name": "images", "shape": [2, 1, 28, 28], "datatype": datatype,
                            "parameters": ["binary_data_size": payload.count],
                        ]
                    ],
                ], payload)
            try await client.execute(uri: "/v2/models/breast/infer", method: .post, headers: headers, body: request) {
                response in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                #expect(response.headers[.contentType] == "application/octet-stream")
                let (answer, binary) = try splitAnswer(response)
                #expect(answer.id == "b" && answer.outputs.map(\.name) == ["probabilities", "label"])
                #expect(answer.outputs.allSatisfy { $0.data == nil })
                let sizes = answer.outputs.map { $0.parameters?.binary_data_size ?? -1 }
                #expect(sizes[0] == 2 * 2 * 4 && sizes.reduce(0, +) == binary.count)
                let probabilities = floats(binary[..<sizes[0]])
                for (got, want) in zip(probabilities, probe.expected.joined()) {
                    // FP32 goes in and comes out as bits: exactly the model's answer.
                    #expect(datatype == "FP32" ? got == want : abs(got - want) < 1e-5, "\(datatype)")
                }
                #expect(strings(binary[sizes[0]...]) == probe.labels)
            }
        }
    }
}

/// `outputs` picks and orders the outputs; each may be binary or JSON on its own.
@Test func requestedOutputs() async throws {
    let state = try makeState()
    let probe = try Probe(state)
    @Sendable func request(_ outputs: [[String: Any]]) throws -> ByteBuffer {
        try body([
            "inputs": [["name": "images", "shape": [2, 1, 28, 28], "datatype": "FP32", "data": probe.pixels.map(Double.init)]],
            "outputs": outputs,
        ])
    }
    try await buildApplication(state: state).test(.router) { client in
        try await client.execute(uri: "/v2/models/breast/infer", method: .post, body: try request([["name": "label"]])) {
            response in
            let (answer, binary) = try splitAnswer(response)
            #expect(binary.isEmpty && answer.outputs.map(\.name) == ["label"])
            #expect(answer.outputs[0].datatype == "BYTES" && answer.outputs[0].data == .strings(probe.labels))
        }
        try await client.execute(
            uri: "/v2/models/breast/infer", method: .post, body: try request([["name": "probabilities"]])
        ) { response in
            let (answer, _) = try splitAnswer(response)
            #expect(answer.outputs.map(\.name) == ["probabilities"] && answer.outputs[0].shape == [2, 2])
        }
        let mixed = try request([["name": "label", "parameters": ["binary_data": true]], ["name": "probabilities"]])
        try await client.execute(uri: "/v2/models/breast/infer", method: .post, body: mixed) { response in
            let (answer, binary) = try splitAnswer(response)
            #expect(answer.outputs.map(\.name) == ["label", "probabilities"])
            #expect(answer.outputs[0].parameters?.binary_data_size == binary.count && strings(binary[...]) == probe.labels)
            #expect(answer.outputs[1].parameters == nil && answer.outputs[1].data!.numbers.count == 4)
        }
    }
}

/// One malformed request: body, `Inference-Header-Content-Length` (nil: none), expected message.
struct Malformed: Sendable, CustomStringConvertible {
    let description: String
    let body: [UInt8]
    let headerLength: String?
    let message: String

    /// A request for one 28x28 image: `input` merged into the input, `extra` into the request.
    init(
        _ description: String, input: [String: Any] = [:], extra: [String: Any] = [:], binary: [UInt8] = [],
        headerLength: String? = "json", message: String
    ) {
        var tensor: [String: Any] = ["name": "images", "shape": [1, 1, 28, 28], "datatype": "FP32"]
        tensor.merge(input) { $1 }
        var request: [String: Any] = ["inputs": [tensor]]
        request.merge(extra) { $1 }
        let json = Array(try! JSONSerialization.data(withJSONObject: request))
        self.description = description
        body = json + binary
        self.headerLength = headerLength == "json" ? "\(json.count)" : headerLength
        self.message = message
    }
}

let zeros = [UInt8](repeating: 0, count: 784 * 4)
let malformedRequests: [Malformed] = [
    Malformed(
        "header not a number", input: ["parameters": ["binary_data_size": 3136]], binary: zeros, headerLength: "abc",
        message: "Inference-Header-Content-Length 'abc' is not a byte count in 0..."),
    Malformed(
        "header negative", input: ["parameters": ["binary_data_size": 3136]], binary: zeros, headerLength: "-1",
        message: "Inference-Header-Content-Length '-1'"),
    Malformed(
        "header past the body", input: ["parameters": ["binary_data_size": 3136]], binary: zeros,
        headerLength: "999999", message: "'999999' is not a byte count in 0..."),
    Malformed(
        "header inside the JSON", input: ["parameters": ["binary_data_size": 3136]], binary: zeros,
        headerLength: "10", message: "body is not an inference request"),
    Malformed(
        "size not the shape's", input: ["parameters": ["binary_data_size": 3132]], binary: Array(zeros.dropLast(4)),
        message: "binary_data_size 3132, but shape [1, 1, 28, 28] of FP32 is 3136 bytes"),
    Malformed(
        "UINT8 size of FP32", input: ["datatype": "UINT8", "parameters": ["binary_data_size": 3136]], binary: zeros,
        message: "binary_data_size 3136, but shape [1, 1, 28, 28] of UINT8 is 784 bytes"),
    Malformed("negative size", input: ["parameters": ["binary_data_size": -4]], message: "binary_data_size -4"),
    Malformed(
        "body short of the size", input: ["parameters": ["binary_data_size": 3136]], binary: Array(zeros.dropLast()),
        message: "the body has 3135 bytes after its JSON header"),
    Malformed(
        "bytes past the size", input: ["parameters": ["binary_data_size": 3136]], binary: zeros + [0],
        message: "the body has 3137 bytes after its JSON header"),
    Malformed(
        "size without the header", input: ["parameters": ["binary_data_size": 3136]], headerLength: nil,
        message: "the body has 0 bytes after its JSON header"),
    Malformed(
        "binary without the header", input: ["parameters": ["binary_data_size": 3136]], binary: zeros,
        headerLength: nil, message: "body is not an inference request"),
    Malformed(
        "binary with no size", input: ["data": [Double](repeating: 0, count: 784)], binary: [1, 2],
        message: "2 bytes of binary data after the JSON header, but no input has binary_data_size"),
    Malformed(
        "data and size", input: ["data": [Double](repeating: 0, count: 784), "parameters": ["binary_data_size": 3136]],
        binary: zeros, message: "both JSON data and binary_data_size"),
    Malformed("neither data nor size", headerLength: nil, message: "neither data nor parameters.binary_data_size"),
    Malformed(
        "size not a number", input: ["parameters": ["binary_data_size": "3136"]], binary: zeros,
        message: "body is not an inference request"),
    Malformed(
        "binary FP32 above 1", input: ["parameters": ["binary_data_size": 3136]],
        binary: littleEndianBytes([Float](repeating: 0, count: 783) + [2]), message: "[0, 1]; data[783] = 2.0"),
    Malformed(
        "binary FP32 NaN", input: ["parameters": ["binary_data_size": 3136]],
        binary: littleEndianBytes([.nan] + [Float](repeating: 0, count: 783)), message: "[0, 1]; data[0] = nan"),
    Malformed(
        "binary batch over the limit", input: ["shape": [257, 1, 28, 28], "parameters": ["binary_data_size": 257 * 3136]],
        message: "batch size 257 outside 1...256"),
    Malformed(
        "shared memory", input: ["parameters": ["shared_memory_region": "r"]], headerLength: nil,
        message: "shared memory is not supported"),
    Malformed(
        "unknown output", input: ["data": [Double](repeating: 0, count: 784)], extra: ["outputs": [["name": "logits"]]],
        headerLength: nil, message: "unknown output 'logits'; the model's outputs are probabilities, label"),
    Malformed(
        "output twice", input: ["data": [Double](repeating: 0, count: 784)],
        extra: ["outputs": [["name": "label"], ["name": "label"]]], headerLength: nil, message: "'label' is requested twice"),
    Malformed(
        "classification", input: ["data": [Double](repeating: 0, count: 784)],
        extra: ["outputs": [["name": "label", "parameters": ["classification": 2]]]], headerLength: nil,
        message: "classification extension is not supported"),
    Malformed(
        "output not a list", input: ["data": [Double](repeating: 0, count: 784)], extra: ["outputs": "label"],
        headerLength: nil, message: "body is not an inference request"),
]

/// Every malformed binary or requested-output request: 400 with a JSON error naming the problem,
/// on both the unversioned and the versioned route.
@Test(arguments: malformedRequests)
func malformedBinaryAndOutputRequests(_ bad: Malformed) async throws {
    let app = buildApplication(state: try makeState())
    var fields = HTTPFields()
    if let length = bad.headerLength { fields[inferenceHeaderContentLength] = length }
    let headers = fields
    try await app.test(.router) { client in
        for uri in ["/v2/models/breast/infer", "/v2/models/breast/versions/1/infer"] {
            try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(bytes: bad.body)) { response in
                #expect(response.status == .badRequest, "\(bad)")
                #expect(response.headers[.contentType] == "application/json")
                let error = object(response.body)["error"] as? String ?? ""
                #expect(error.contains(bad.message), "\(bad): \(error)")
            }
        }
    }
}

/// The body limit holds for binary bodies as for JSON: 413 from the declared length, before reading.
@Test func binaryBodiesKeepTheBodyLimit() async throws {
    let app = buildApplication(state: try makeState(limits: ServingLimits(maxBodyBytes: 4096)))
    let (request, headers) = try binaryInferBody(
        [
            "inputs": [
                [
                    "name": "images", "shape": [2, 1, 28, 28], "datatype": "FP32",
                    "parameters": ["binary_data_size": 2 * 3136],
                ]
            ]
        ], [UInt8](repeating: 0, count: 2 * 3136))
    try await app.test(.router) { client in
        try await client.execute(uri: "/v2/models/breast/versions/1/infer", method: .post, headers: headers, body: request) {
            response in
            #expect(response.status.code == 413)
            #expect(object(response.body)["error"] != nil)
        }
    }
}
