import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import Serving

/// The real server on 127.0.0.1 (random port, real sockets): real PNGs in, answers and metrics out.
@Test func servesRealPNGsOverLoopback() async throws {
    let model = try TrainedModel.shared.get()
    let state = try makeState()
    let files = model.files["malignant"]!.prefix(10) + model.files["normal_or_benign"]!.prefix(10)
    let correct = try await buildApplication(state: state, host: "127.0.0.1", port: 0).test(.live) { client in
        var correct = 0
        for file in files {
            let answer = try await client.execute(uri: "/v1/models/breast/predict", method: .post, body: try fileBuffer(file)) {
                response in
                #expect(response.status == .ok)
                return try JSONDecoder().decode(PredictResponse.self, from: Data(buffer: response.body))
            }
            #expect(answer.version == 1 && answer.model == "breast")
            if file.contains("/\(answer.predicted)/") { correct += 1 }
        }
        try await client.execute(uri: "/metrics", method: .get) { response in
            let text = String(buffer: response.body)
            #expect(
                text.contains(#"medsynth_http_requests_total{method="POST",route="/v1/models/{name}/predict",status="200"} 20"#))
            let predicted = text.split(separator: "\n").filter { $0.hasPrefix("medsynth_predictions_total{") }
                .compactMap { Int($0.split(separator: " ").last!) }
            #expect(predicted.reduce(0, +) == 20)
        }
        try await client.execute(uri: "/v2/models/breast/infer", method: .post, body: ByteBuffer(string: "{")) {
            #expect($0.status == .badRequest)
        }
        return correct
    }
    // 150 steps of training: better than always answering one class (10 of 20).
    #expect(correct > 10, "\(correct) of 20 correct")
}
