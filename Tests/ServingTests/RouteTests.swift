import Datasets
import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing
import Tracking

@testable import Serving

@Test func healthAndModelMetadata() async throws {
    let app = buildApplication(state: try makeState())
    try await app.test(.router) { client in
        try await client.execute(uri: "/v2/health/live", method: .get) { #expect($0.status == .ok) }
        try await client.execute(uri: "/v2/health/ready", method: .get) { #expect(object($0.body)["ready"] as? Bool == true) }
        try await client.execute(uri: "/v2/models/breast", method: .get) { response in
            let metadata = try JSONDecoder().decode(ModelMetadata.self, from: Data(buffer: response.body))
            #expect(metadata.inputs == [.init(name: "images", datatype: "FP32", shape: [-1, 1, 28, 28])])
            #expect(
                metadata.outputs == [
                    .init(name: "probabilities", datatype: "FP32", shape: [-1, 2]),
                    .init(name: "label", datatype: "BYTES", shape: [-1]),
                ])
            #expect(metadata.versions == ["1"] && metadata.classNames == ["malignant", "normal_or_benign"])
        }
        try await client.execute(uri: "/v2/models/lung", method: .get) { response in
            #expect(response.status == .notFound)
            #expect((object(response.body)["error"] as? String)?.contains("unknown model 'lung'") == true)
        }
        try await client.execute(uri: "/no/such/route", method: .get) { response in
            #expect(response.status == .notFound && object(response.body)["error"] != nil)
        }
    }
}

@Test func inferAnswersFP32AndUInt8Tensors() async throws {
    let state = try makeState()
    let images = try TrainedModel.shared.get().images
    let (pixels, _) = images.gather([0, 200])
    let expected = try state.deployment!.model.predict(pixels, count: 2)
    let app = buildApplication(state: state)
    try await app.test(.router) { client in
        let fp32: [String: Any] = [
            "id": "a",
            "inputs": [
                [
                    "name": "images", "shape": [2, 1, 28, 28], "datatype": "FP32",
                    "data": pixels.map(Double.init),
                ]
            ],
        ]
        try await client.execute(uri: "/v2/models/breast/infer", method: .post, body: try body(fp32)) { response in
            #expect(response.status == .ok)
            let answer = try JSONDecoder().decode(InferResponse.self, from: Data(buffer: response.body))
            #expect(answer.model_name == "breast" && answer.model_version == "1" && answer.id == "a")
            #expect(answer.outputs[0].shape == [2, 2] && answer.outputs[0].datatype == "FP32")
            for (got, want) in zip(answer.outputs[0].data!.numbers, expected.flatMap { $0 }) {
                #expect(abs(got - Double(want)) < 1e-6)
            }
        }
        // UINT8, nested row-major: the stored PNG bytes are exactly pixels * 255.
        let bytes = pixels.map { ($0 * 255).rounded() }
        let nested = (0..<2).map { n in [(0..<28).map { y in Array(bytes[(n * 28 + y) * 28..<(n * 28 + y + 1) * 28]) }] }
        let uint8: [String: Any] = [
            "inputs": [["name": "images", "shape": [2, 1, 28, 28], "datatype": "UINT8", "data": nested]]
        ]
        try await client.execute(uri: "/v2/models/breast/infer", method: .post, body: try body(uint8)) { response in
            #expect(response.status == .ok)
            let answer = try JSONDecoder().decode(InferResponse.self, from: Data(buffer: response.body))
            for (got, want) in zip(answer.outputs[0].data!.numbers, expected.flatMap { $0 }) {
                #expect(abs(got - Double(want)) < 1e-4)
            }
        }
    }
}

/// Every malformed inference request gets a 4xx with a JSON error naming the problem.
@Test(arguments: [
    (#"{"inputs":[{"name":"x","shape":[1,3,28,28],"datatype":"FP32","data":[0]}]}"#, 400, "shape [1, 3, 28, 28]"),
    (#"{"inputs":[{"name":"x","shape":[1,1,28,28],"datatype":"FP32","data":[0,1]}]}"#, 400, "needs 784 values, got 2"),
    (#"{"inputs":[{"name":"x","shape":[1,1,2,2],"datatype":"INT64","data":[0,0,0,0]}]}"#, 400, "shape [1, 1, 2, 2]"),
    (#"{"inputs":[]}"#, 400, "exactly 1 input"),
    (#"{"inputs":[{"name":"x","shape":[0,1,28,28],"datatype":"FP32","data":[]}]}"#, 400, "batch size 0"),
    (#"{"inputs":[{"name":"x","shape":[1,1,28,28],"datatype":"FP32","data":"abc"}]}"#, 400, "not an inference request"),
    (#"{"inputs":"#, 400, "not an inference request"),
    ("", 400, "not an inference request"),
])
func inferRefusesMalformedRequests(body: String, status: Int, message: String) async throws {
    let app = buildApplication(state: try makeState())
    try await app.test(.router) { client in
        try await client.execute(uri: "/v2/models/breast/infer", method: .post, body: ByteBuffer(string: body)) { response in
            #expect(response.status.code == status)
            let error = object(response.body)["error"] as? String ?? ""
            #expect(error.contains(message), "\(error)")
        }
    }
}

@Test func inferRefusesWrongDatatypesAndValues() async throws {
    let app = buildApplication(state: try makeState())
    @Sendable func request(_ datatype: String, _ value: Double) throws -> ByteBuffer {
        try body([
            "inputs": [
                [
                    "name": "x", "shape": [1, 1, 28, 28], "datatype": datatype,
                    "data": [Double](repeating: value, count: 784),
                ]
            ]
        ])
    }
    try await app.test(.router) { client in
        for (datatype, value, message) in [
            ("INT64", 1.0, "datatype 'INT64' not supported"), ("FP32", 2.0, "[0, 1]"),
            ("UINT8", 0.5, "integers 0...255"), ("UINT8", 256, "integers 0...255"),
        ] {
            try await client.execute(uri: "/v2/models/breast/infer", method: .post, body: try request(datatype, value)) {
                response in
                #expect(response.status == .badRequest)
                #expect((object(response.body)["error"] as? String)?.contains(message) == true, "\(datatype) \(value)")
            }
        }
        try await client.execute(uri: "/v2/models/lung/infer", method: .post, body: try request("FP32", 0)) {
            #expect($0.status == .notFound)
        }
        // 10 MB of noise: over the 8 MiB body limit.
        let big = ByteBuffer(bytes: noise(10_000_000))
        try await client.execute(uri: "/v2/models/breast/infer", method: .post, body: big) { response in
            #expect(response.status == .contentTooLarge && object(response.body)["error"] != nil)
        }
    }
}

@Test func predictClassifiesPNGAndJPEGImages() async throws {
    let model = try TrainedModel.shared.get()
    let app = buildApplication(state: try makeState())
    try await app.test(.router) { client in
        let png = model.files["malignant"]![0]
        try await client.execute(uri: "/v1/models/breast/predict", method: .post, body: try fileBuffer(png)) { response in
            #expect(response.status == .ok)
            let answer = try JSONDecoder().decode(PredictResponse.self, from: Data(buffer: response.body))
            #expect(answer.model == "breast" && answer.version == 1)
            #expect(Set(answer.probabilities.keys) == ["malignant", "normal_or_benign"])
            #expect(abs(answer.probabilities.values.reduce(0, +) - 1) < 1e-5)
            #expect(answer.probabilities[answer.predicted] == answer.probabilities.values.max())
        }
        // An RGB JPEG of another size: converted to gray luma and resized.
        let folder = sharedData("dermamnist-jpeg/actinic_keratosis")
        let jpeg = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()[0]
        try await client.execute(uri: "/v1/models/breast/predict", method: .post, body: try fileBuffer("\(folder)/\(jpeg)")) {
            #expect($0.status == .ok)
        }
    }
}

@Test func predictRefusesBadImagesWithoutFalling() async throws {
    let model = try TrainedModel.shared.get()
    let app = buildApplication(state: try makeState())
    let png = try readFileBytes(model.files["malignant"]![0])
    // A valid PNG signature and IHDR announcing 20000 x 20000 pixels, and nothing else.
    var huge: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8)
    huge += [0, 0, 0x4E, 0x20, 0, 0, 0x4E, 0x20, 8, 0, 0, 0, 0, 0, 0, 0, 0]
    let cases: [(String, [UInt8], Int, String)] = [
        ("empty", [], 400, "empty"),
        ("truncated PNG", Array(png.prefix(png.count / 2)), 400, "request body"),
        ("text", Array("hello, world".utf8), 415, "PNG, JPEG or DICOM"),
        ("20000x20000 header", huge, 413, "20000"),
        ("10 MB of noise", noise(10_000_000), 413, "over the limit"),
    ]
    try await app.test(.router) { client in
        for (label, bytes, status, message) in cases {
            try await client.execute(uri: "/v1/models/breast/predict", method: .post, body: ByteBuffer(bytes: bytes)) {
                response in
                #expect(response.status.code == status, "\(label)")
                let error = object(response.body)["error"] as? String ?? ""
                #expect(error.contains(message), "\(label): \(error)")
            }
        }
        // A 1x1 image is upsampled to 28x28 and classified (documented choice).
        let one = try encodePNG(pixels: [128], width: 1, height: 1, channels: 1)
        try await client.execute(uri: "/v1/models/breast/predict", method: .post, body: ByteBuffer(bytes: one)) {
            #expect($0.status == .ok)
        }
        // Still serving after all that.
        try await client.execute(uri: "/v1/models/breast/predict", method: .post, body: ByteBuffer(bytes: png)) {
            #expect($0.status == .ok)
        }
    }
}

@Test func metricsUsePrometheusTextFormat() async throws {
    let model = try TrainedModel.shared.get()
    let app = buildApplication(state: try makeState())
    try await app.test(.router) { client in
        for file in model.files["normal_or_benign"]!.prefix(3) {
            try await client.execute(uri: "/v1/models/breast/predict", method: .post, body: try fileBuffer(file)) { _ in }
        }
        try await client.execute(uri: "/v1/models/breast/predict", method: .post, body: ByteBuffer()) { _ in }
        try await client.execute(uri: "/metrics", method: .get) { response in
            #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let text = String(buffer: response.body)
            let lines = Set(text.split(separator: "\n").map(String.init))
            #expect(
                lines.contains(#"medsynth_http_requests_total{method="POST",route="/v1/models/{name}/predict",status="200"} 3"#),
                "\(text)")
            #expect(
                lines.contains(#"medsynth_http_requests_total{method="POST",route="/v1/models/{name}/predict",status="400"} 1"#))
            #expect(
                lines.contains(#"medsynth_http_request_duration_seconds_bucket{route="/v1/models/{name}/predict",le="+Inf"} 4"#))
            #expect(lines.contains(#"medsynth_http_request_duration_seconds_count{route="/v1/models/{name}/predict"} 4"#))
            #expect(lines.contains("# TYPE medsynth_http_request_duration_seconds histogram"))
            #expect(lines.contains(#"medsynth_model_info{model="breast",version="1"} 1"#))
            let predicted = lines.filter { $0.hasPrefix("medsynth_predictions_total{") }.compactMap {
                Int($0.split(separator: " ").last!)
            }
            #expect(predicted.reduce(0, +) == 3)
            #expect(lines.contains(#"medsynth_drift_window_samples{model="breast@1"} 3"#))
            #expect(lines.contains(#"medsynth_drift_active{model="breast@1"} 0"#))
            // Buckets are cumulative: never decreasing.
            let buckets = text.split(separator: "\n").filter { $0.contains("predict\",le=") }.map {
                Int($0.split(separator: " ").last!)!
            }
            #expect(buckets == buckets.sorted() && buckets.count == ServerMetrics.latencyBuckets.count + 1)
        }
    }
}

@Test func adminRoutesNeedTheBearerToken() async throws {
    try await buildApplication(state: try makeState(adminToken: "secret")).test(.router) { client in
        try await client.execute(uri: "/admin/reload", method: .post) { response in
            #expect(response.status == .unauthorized && response.headers[.wwwAuthenticate] == "Bearer")
        }
        try await client.execute(uri: "/admin/reload", method: .post, headers: [.authorization: "Bearer secreT"]) {
            #expect($0.status == .unauthorized)
        }
        try await client.execute(uri: "/admin/reload", method: .post, headers: [.authorization: "Bearer secret"]) { response in
            #expect(response.status == .ok && object(response.body)["version"] as? String == "1")
        }
    }
    try await buildApplication(state: try makeState(adminToken: nil)).test(.router) { client in
        try await client.execute(uri: "/admin/reload", method: .post, headers: [.authorization: "Bearer secret"]) {
            #expect($0.status == .forbidden)
        }
    }
}

@Test func reloadSwapsTheChampionWithoutDroppingRequests() async throws {
    let state = try makeState(limits: ServingLimits(maxConcurrentInferences: 32))  // all 23 admitted at once
    let model = try TrainedModel.shared.get()
    let runID = try recordTrainingRun(in: state.store, model: model)
    _ = try state.store.register(runID: runID, name: "breast")  // version 2
    let auth: HTTPFields = [.authorization: "Bearer secret"]
    let png = try fileBuffer(model.files["malignant"]![1])
    try await buildApplication(state: state).test(.router) { client in
        try await client.execute(
            uri: "/admin/alias", method: .post, headers: auth,
            body: try body(["name": "breast", "version": 9, "alias": "champion"])
        ) { #expect($0.status == .notFound) }
        try await client.execute(
            uri: "/admin/alias", method: .post, headers: auth,
            body: try body(["name": "breast", "version": 2, "alias": "best"])
        ) { #expect($0.status == .badRequest) }
        try await client.execute(
            uri: "/admin/alias", method: .post, headers: auth,
            body: try body(["name": "breast", "version": 2, "alias": "champion"])
        ) { #expect($0.status == .ok) }
        // Requests keep flowing while the reload happens; each is answered by version 1 or 2.
        let versions = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<24 {
                group.addTask {
                    if i == 12 {
                        return try await client.execute(uri: "/admin/reload", method: .post, headers: auth) { response in
                            #expect(response.status == .ok)
                            return -1
                        }
                    }
                    return try await client.execute(uri: "/v1/models/breast/predict", method: .post, body: png) { response in
                        #expect(response.status == .ok)
                        return object(response.body)["version"] as? Int ?? 0
                    }
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(versions.filter { $0 >= 0 }.allSatisfy { $0 == 1 || $0 == 2 } && versions.count == 24)
        try await client.execute(uri: "/v1/models/breast/predict", method: .post, body: png) { response in
            #expect(object(response.body)["version"] as? Int == 2)
        }
        try await client.execute(uri: "/admin/reload", method: .post, headers: auth, body: try body(["model": "breast@1"])) {
            #expect(object($0.body)["version"] as? String == "1")
        }
    }
}

@Test func busyServerAnswers503WithRetryAfter() async throws {
    let state = try makeState(limits: ServingLimits(maxConcurrentInferences: 1))
    try state.acquireInferenceSlot()  // the one slot is taken
    defer { state.releaseInferenceSlot() }
    try await buildApplication(state: state).test(.router) { client in
        let png = try fileBuffer(try TrainedModel.shared.get().files["malignant"]![0])
        try await client.execute(uri: "/v1/models/breast/predict", method: .post, body: png) { response in
            #expect(response.status == .serviceUnavailable && response.headers[.retryAfter] == "1")
            #expect((object(response.body)["error"] as? String)?.contains("server busy") == true)
        }
        // JSON decoding waits for a slot too (it costs several times the body): a body that
        // would be a 400 once decoded is not even decoded while every slot is busy.
        try await client.execute(uri: "/v2/models/breast/infer", method: .post, body: ByteBuffer(string: "{not json")) {
            response in
            #expect(response.status == .serviceUnavailable)
        }
        // A body whose Content-Length is over the limit is refused with 413 before it takes a
        // place (or is read), even when every place is taken.
        try await client.execute(
            uri: "/v2/models/breast/infer", method: .post, headers: [.contentLength: "\(9 << 20)"],
            body: ByteBuffer(bytes: [UInt8](repeating: 32, count: 9 << 20))
        ) { response in
            #expect(response.status == .contentTooLarge)
            #expect((object(response.body)["error"] as? String)?.contains("is over the limit of 8388608") == true)
        }
    }
}

@Test func limitsThatWouldTakeTheServerDownAreRefusedAtStart() throws {
    for limits in [
        ServingLimits(maxBodyBytes: -1), ServingLimits(maxImagePixels: 0), ServingLimits(maxConcurrentInferences: 0),
        ServingLimits(requestTimeout: .zero),
    ] {
        #expect(throws: ServingError.self) { try makeState(limits: limits) }
    }
    #expect(throws: ServingError.self) {
        let (store, _, _) = try makeStore()
        _ = try ServingState(store: store, modelReference: "breast@champion", loader: TinyCNN.loader, driftWindow: 10)
    }
}

@Test func aRegisteredModelWhoseFileChangedIsNotServed() throws {
    let model = try TrainedModel.shared.get()
    let folder = model.directory.appendingPathComponent("tampered-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let weights = folder.appendingPathComponent("model.safetensors")
    try FileManager.default.copyItem(at: model.weights, to: weights)
    let store = try RunStore(path: folder.appendingPathComponent("store.sqlite").path)
    let recorder = try RunRecorder.start(store: store, kind: .train, config: ["data": "breastmnist-png"])
    try recorder.artifact(path: weights.path, kind: "model")
    try recorder.finish(status: .finished)
    _ = try store.register(runID: recorder.runID, name: "breast")
    let state = try ServingState(store: store, modelReference: "breast@1", loader: TinyCNN.loader)
    try state.load()
    var bytes = try Data(contentsOf: weights)
    bytes[bytes.count - 1] ^= 1
    try bytes.write(to: weights)  // e.g. another `train --out` into the registered folder
    #expect(throws: TrackingError.self) { try state.load() }
    // The version loaded before the change keeps answering; a fresh server is not ready.
    #expect(state.modelStatus == .ready)
    let fresh = try ServingState(store: store, modelReference: "breast@1", loader: TinyCNN.loader)
    #expect(throws: TrackingError.self) { try fresh.load() }
    guard case .failed(let message) = fresh.modelStatus else { Issue.record("\(fresh.modelStatus)"); return }
    #expect(message.contains("has changed since it was registered"), "\(message)")
}

@Test func webPageIsSelfContained() async throws {
    try await buildApplication(state: try makeState()).test(.router) { client in
        try await client.execute(uri: "/", method: .get) { response in
            let html = String(buffer: response.body)
            #expect(response.status == .ok && response.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(html.contains(#"const model = "breast";"#) && html.contains("/v1/models/\" + model + \"/predict"))
            #expect(!html.contains("src=\"http") && !html.contains("href=\"http"))  // no CDN
        }
    }
}

@Test func aBodyThatNeverEndsTimesOutWith408() async throws {
    let state = try makeState(limits: ServingLimits(requestTimeout: .milliseconds(200)))
    // One chunk, then silence: a stalled upload.
    let (stream, continuation) = AsyncStream<ByteBuffer>.makeStream()
    continuation.yield(ByteBuffer(string: "{\"inputs\":"))
    let request = Request(
        head: HTTPRequest(method: .post, scheme: "http", authority: "localhost", path: "/v2/models/breast/infer"),
        body: RequestBody(asyncSequence: stream))
    // NOTE: no wall-clock bound here: when other tests keep the cooperative pool busy the timer
    // fires late, and the behaviour under test is the 408 itself.
    await #expect(throws: ServingError(status: 408, "request body not received within 0.2 seconds")) {
        _ = try await collectBody(request, state: state)
    }
    continuation.finish()
}
