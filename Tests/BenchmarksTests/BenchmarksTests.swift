import Benchmarks
import Classification
import Diffusion
import Foundation
import Kernels
import TestSupport
import Testing

// The benchmarks on tiny settings: each runs the work it names, and its line reads as
// `medsynth bench` has always printed it (scripts and the README quote these lines).

@Test func dcganBenchmarkTimesEveryStepAndCountsItsFLOP() throws {
    let r = try Benchmark.dcgan(imageSize: 28, channels: 1, batchSize: 2, steps: 3, warmup: 0)
    #expect(r.model == "dcgan28" && r.batchSize == 2 && r.stepMilliseconds.count == 3)
    #expect(r.gflopPerStep > 0 && r.stepMillisecondsMedian > 0)
    // The line names the convolutions' number format and the peak it divides by (f32 unless
    // MEDSYNTH_CONV_PRECISION=bf16 on a CPU with AVX512_BF16).
    let precision = ConvPrecision.processDefault.rawValue
    #expect(r.precision == precision)
    let line = r.summary(peak: 100)
    #expect(line.hasPrefix("dcgan28 batch 2, \(precision) convolutions: ") && line.contains("(median of 3)"), "\(line)")
    #expect(line.hasSuffix("of 100 GFLOP/s \(precision) peak"), "\(line)")
    let json = try r.json(peak: 100)
    #expect(json.contains(#""peak_gflops":100"#) && json.contains(#""step_ms_median":"#), "\(json)")
    #expect(json.contains(#""precision":"\#(precision)""#), "\(json)")
    #expect(try Benchmark.dcgan(imageSize: 32, channels: 1, batchSize: 2, steps: 1, warmup: 0).model == "dcgan32x1")
}

@Test func classifierBenchmarkTimesStepsAndInferenceAndCountsItsFLOP() throws {
    let config = try ClassifierConfig(arch: .paperCNN, imageSize: 28, channels: 1, classes: 3)
    let r = try Benchmark.classifier(config: config, batchSize: 4, steps: 3, warmup: 0)
    #expect(r.model == "paper-cnn28x1" && r.batchSize == 4 && r.classes == 3)
    #expect(r.stepMilliseconds.count == 3 && r.inferenceMilliseconds.count == 3 && r.gflopPerStep > 0)
    #expect(r.summary.hasPrefix("paper-cnn28x1 batch 4, 3 classes, "), "\(r.summary)")
    #expect(r.summary.contains("\(ConvPrecision.processDefault.rawValue) convolutions: training step"), "\(r.summary)")
    #expect(try r.json().contains(#""infer_ms_median":"#))
}

@Test func diffusionBenchmarkTimesStepsAndSampling() throws {
    let config = try UNetConfig(imageSize: 28, channels: 1, baseWidth: 8, attention: false, classes: 2)
    let r = try DiffusionBenchmark.run(
        config: config, batchSize: 2, steps: 2, warmup: 0, samplingSteps: [25, 50], sampleCount: 1)
    #expect(r.stepMilliseconds.count == 2 && r.gflopPerStep > 0 && r.parameters > 0)
    #expect(Set(r.samplingImagesPerSecond.keys) == ["25", "50"])
    #expect(r.summary.hasPrefix("diffusion 1x28x28 width 8 (\(r.parameters) parameters), batch 2: "), "\(r.summary)")
    #expect(try r.json().contains(#""batchSize":2"#))
}

@Test func privacyBenchmarkTimesBothSteps() throws {
    let r = try PrivacyBenchmark.run(batchSize: 4, steps: 2, warmup: 0)
    #expect(r.steps == 2 && r.ordinary.minimum > 0 && r.privateStep.minimum > 0)
    #expect(r.summary.hasPrefix("batch 4, 2 steps each: ordinary step "), "\(r.summary)")
}

@Test func decodeBenchmarkReadsEveryImageOfEveryClass() throws {
    let root = try makeTemporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: root) }
    for (name, n) in [("malignant", 2), ("normal_or_benign", 3)] {
        try FileManager.default.createDirectory(atPath: root + "/" + name, withIntermediateDirectories: true)
        let source = sharedData("breastmnist-png/" + name)
        for file in try FileManager.default.contentsOfDirectory(atPath: source).sorted().prefix(n) {
            try FileManager.default.copyItem(atPath: source + "/" + file, toPath: root + "/" + name + "/" + file)
        }
    }
    let r = try DecodeBenchmark.run(classFolders: root, imageSize: 8, repeats: 3)
    #expect(r.images == 5 && r.repeats == 3 && r.checksum > 0)
    #expect(r.summary.hasPrefix("5 images x 3 runs: median "), "\(r.summary)")
}

@Test func peakReportListsTheWidestLoopFirst() throws {
    let report = PeakReport.measure()
    #expect(report.widest.gflops > 0 && report.narrower.allSatisfy { $0.isa < report.widest.isa })
    #expect(report.summary.hasPrefix("peak: "))
    #expect(try report.json().contains(#""isa":"\#(report.widest.isa.description)""#))
}

@Test func diffusionBenchmarkTimesADistilledStudentsSampling() throws {
    let config = try UNetConfig(imageSize: 28, channels: 1, baseWidth: 8, attention: false, classes: 2)
    let r = try DiffusionBenchmark.run(
        config: config, batchSize: 2, steps: 1, warmup: 0, samplingSteps: [2], distilledSteps: 1, sampleCount: 1)
    #expect(Set(r.samplingImagesPerSecond.keys) == ["2", "1 distilled"])
    #expect(r.summary.hasSuffix(" at 1 steps without guidance (a distilled student)"), "\(r.summary)")
}
