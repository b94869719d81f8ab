import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import Tracking

@testable import Serving

@Test func populationStabilityIndexMatchesHandComputation() {
    #expect(populationStabilityIndex(expected: [0.5, 0.5], actual: [0.5, 0.5]) == 0)
    // (0.8 - 0.5) ln(0.8/0.5) + (0.2 - 0.5) ln(0.2/0.5) = 0.14100 + 0.27489
    #expect(abs(populationStabilityIndex(expected: [0.5, 0.5], actual: [0.8, 0.2]) - 0.415888) < 1e-5)
    // An empty bin is floored at 1e-4: finite.
    #expect(populationStabilityIndex(expected: [0.5, 0.5], actual: [1, 0]).isFinite)
}

/// p-values against scipy.stats.chi2.sf.
@Test(arguments: [(3.841459, 1, 0.05), (9.487729, 4, 0.05), (0.5, 2, 0.7788008), (30.0, 3, 1.380e-6), (0.01, 1, 0.9203443)])
func chiSquareTailMatchesReference(statistic: Double, dof: Int, p: Double) {
    let q = regularizedGammaQ(Double(dof) / 2, statistic / 2)
    #expect(abs(q - p) / p < 1e-3, "Q = \(q), want \(p)")
}

@Test func chiSquareTestOnCounts() {
    // 60/40 observed against 50/50: (10^2 + 10^2) / 50 = 4, p = 0.0455.
    let result = chiSquareTest(observed: [60, 40], expected: [0.5, 0.5])
    #expect(abs(result.statistic - 4) < 1e-9 && result.degreesOfFreedom == 1 && abs(result.pValue - 0.0455003) < 1e-5)
}

@Test func monitorSlidesItsWindowAndFiresOnTheTransitionOnly() {
    let reference = ReferenceStats(
        classNames: ["a", "b"], classFrequencies: [0.5, 0.5],
        intensityHistogram: [0.5, 0.5], count: 100)
    let monitor = DriftMonitor(
        model: "m@1", reference: reference, windowSize: 20,
        thresholds: DriftThresholds(psi: 0.25, pValue: 1e-3, minimumSamples: 10))
    var fired = 0
    for i in 0..<20 { if monitor.observe(predicted: i % 2, meanIntensity: i % 2 == 0 ? 0.2 : 0.7) != nil { fired += 1 } }
    #expect(fired == 0 && !monitor.report().drifting && monitor.report().samples == 20)
    for _ in 0..<40 { if monitor.observe(predicted: 0, meanIntensity: 0.2) != nil { fired += 1 } }
    let report = monitor.report()
    #expect(fired == 1 && report.drifting && report.samples == 20 && report.servedClassFrequencies == [1, 0])
    for i in 0..<20 { _ = monitor.observe(predicted: i % 2, meanIntensity: i % 2 == 0 ? 0.2 : 0.7) }  // back to normal
    #expect(!monitor.report().drifting)
    for _ in 0..<20 { if monitor.observe(predicted: 1, meanIntensity: 0.7) != nil { fired += 1 } }
    #expect(fired == 2)
}

/// Serving only one class's images fires the drift gauge, records one drift event and launches
/// the retraining command exactly once; its run becomes the challenger.
@Test func oneClassTrafficFiresDriftAndRetrainsOnce() async throws {
    let model = try TrainedModel.shared.get()
    let log = model.directory.appendingPathComponent("retrain-\(UUID().uuidString).log")
    // The fake retraining job reports a prepared run (same weights) by the MEDSYNTH_RUN_ID contract.
    let (store, _, _) = try makeStore()
    let retrainRun = try recordTrainingRun(in: store, model: model)
    let command = "echo started >> '\(log.path)'; echo 'training...'; echo MEDSYNTH_RUN_ID=\(retrainRun)"
    let state = try ServingState(
        store: store, modelReference: "breast@champion", loader: TinyCNN.loader,
        retrainCommand: command, driftWindow: 60, thresholds: DriftThresholds(minimumSamples: 50))
    try state.load()
    try await buildApplication(state: state).test(.router) { client in
        for file in model.files["malignant"]!.prefix(120) {
            try await client.execute(uri: "/v1/models/breast/predict", method: .post, body: try fileBuffer(file)) {
                #expect($0.status == .ok)
            }
        }
        try await client.execute(uri: "/metrics", method: .get) { response in
            #expect(String(buffer: response.body).contains(#"medsynth_drift_active{model="breast@1"} 1"#))
            #expect(String(buffer: response.body).contains("medsynth_drift_events_total 1"))
        }
        // The job runs in the background; wait for it to be registered.
        var status = state.retrain?.status
        for _ in 0..<100 where status?.state == .running {
            try await Task.sleep(for: .milliseconds(100))
            status = state.retrain?.status
        }
        #expect(status?.state == .registered && status?.runID == retrainRun && status?.registeredVersion == 2)
        try await client.execute(uri: "/v1/monitor", method: .get) { response in
            let monitor = try JSONDecoder().decode(MonitorResponse.self, from: Data(buffer: response.body))
            #expect(monitor.drift?.drifting == true && monitor.drift?.samples == 60)
            #expect(monitor.retrain?.state == .registered)
        }
    }
    #expect(try String(contentsOf: log, encoding: .utf8) == "started\n")
    #expect(try store.aliases(name: "breast") == ["champion": 1, "challenger": 2])
    #expect(try store.events(model: "breast@1", kind: "drift").count == 1)
    #expect(try store.events(model: "breast", kind: "retrain").count == 1)
    #expect(try store.modelCard(name: "breast", version: 1).contains("drift: class PSI"))
}

@Test func failingRetrainCommandIsReportedNotRetried() async throws {
    let (store, _, _) = try makeStore()
    let launcher = RetrainLauncher(command: "echo no id here", store: store, modelName: "breast")
    let done = AsyncStream<RetrainStatus>.makeStream()
    #expect(launcher.launchOnce(reason: "test") { done.continuation.yield($0) })
    #expect(!launcher.launchOnce(reason: "again"))
    let status = await done.stream.first { _ in true }
    #expect(status?.state == .failed && status?.message == "last output line is not MEDSYNTH_RUN_ID=<id>")
}
