import ArgumentParser
import Benchmarks
import Classification
import Diffusion
import Foundation
import Privacy
import Serving
import Workflows

/// `serve`'s options: the model, the address and the server's limits.
public struct ServeOptions: ParsableArguments {
    @OptionGroup public var tracking: TrackingOptions
    @Option(help: "NAME@ALIAS, NAME@VERSION or NAME (latest).") public var model: String
    @Option public var host = "127.0.0.1"
    @Option(help: Ranges.port.help("TCP port (0: any free port).")) public var port = 8080
    @Option(
        help: Ranges.port.help(
            "A second TCP port for /v2/health/* and /metrics alone, answered apart from --port's connections (0: any free port).")
    )
    public var healthPort: Int?
    @Option(help: "Bearer token for /admin routes (off without it).") public var adminToken: String?
    @Option(help: "Shell command run once on drift; its last line must be MEDSYNTH_RUN_ID=<id>.")
    public var retrainCommand: String?
    @Option(help: Ranges.maxBodyBytes.help("Largest request body in bytes.")) public var maxBodyBytes = 8 << 20
    @Option(help: Ranges.maxImagePixels.help("Largest image in pixels (checked before decoding)."))
    public var maxImagePixels = 1024 * 1024
    @Option(
        help: Ranges.maxConcurrent.help(
            "Inference requests admitted at once (receiving, queued or computing); more get 503 with Retry-After."))
    public var maxConcurrent = 16
    @Option(
        help: Ranges.inferenceThreads.help(
            "Threads that decode requests and run the model (default: one per core, at most 8)."))
    public var inferenceThreads = ServingLimits.defaultInferenceThreads
    @Option(
        help: Ranges.maxBatchImages.help(
            "Most images in one model run: requests waiting for the model run together up to this many (1: one at a time)."))
    public var maxBatchImages = ServingLimits().maxBatchImages
    @Option(
        help: Ranges.maxBatchDelay.help(
            "Microseconds a batch waits for more requests after a batch of several requests (0: never; a lone client never waits)."
        ))
    public var maxBatchDelayUs = 500
    @Option(help: Ranges.requestTimeout.help("Seconds to receive a request body (408 after).")) public var requestTimeout = 10
    @Option(
        help: Ranges.headerTimeout.help(
            "Seconds to receive a request's line and headers, from connect or the previous response (408 and close after)."))
    public var headerTimeout = 10
    @Option(help: Ranges.driftWindow.help("Predictions in the drift window.")) public var driftWindow = 200

    public init() {}

    public func validate() throws {
        try Ranges.port.check(port, "--port"); try Ranges.port.check(healthPort, "--health-port")
        if let healthPort, healthPort != 0, healthPort == port {
            throw ValidationError("--health-port must differ from --port (both \(port))")
        }
        try Ranges.maxBodyBytes.check(maxBodyBytes, "--max-body-bytes")
        try Ranges.maxImagePixels.check(maxImagePixels, "--max-image-pixels")
        try Ranges.maxConcurrent.check(maxConcurrent, "--max-concurrent")
        try Ranges.inferenceThreads.check(inferenceThreads, "--inference-threads")
        try Ranges.maxBatchImages.check(maxBatchImages, "--max-batch-images")
        try Ranges.maxBatchDelay.check(maxBatchDelayUs, "--max-batch-delay-us")
        try Ranges.requestTimeout.check(requestTimeout, "--request-timeout")
        try Ranges.headerTimeout.check(headerTimeout, "--header-timeout")
        try Ranges.driftWindow.check(driftWindow, "--drift-window")
    }

    /// The server's limits as the options set them.
    public var limits: ServingLimits {
        ServingLimits(
            maxBodyBytes: maxBodyBytes, maxImagePixels: maxImagePixels, requestTimeout: .seconds(requestTimeout),
            headerTimeout: .seconds(headerTimeout), maxConcurrentInferences: maxConcurrent,
            inferenceThreads: inferenceThreads, maxBatchImages: maxBatchImages, maxBatchDelay: .microseconds(maxBatchDelayUs))
    }

    /// Serves until the server stops; `log` gets the server's log lines.
    public func serve(log: @escaping @Sendable (String) -> Void) async throws {
        try await Serving.serve(
            model: model, store: tracking.open(), host: host, port: port, healthPort: healthPort, limits: limits,
            adminToken: adminToken,
            retrainCommand: retrainCommand, driftWindow: driftWindow, log: log)
    }
}

/// `bench dcgan`'s options.
public struct DCGANBenchOptions: ParsableArguments {
    @Option(help: "Image size: 28, 32, 64 or 128.") public var imageSize = 64
    @Option(help: "Channels: 1 or 3.") public var channels = 3
    @Option(help: Ranges.ganBatchSize.help("Images per step.")) public var batchSize = 64
    @Option(help: Ranges.benchSteps.help("Timed steps.")) public var steps = 10
    @Option(help: Ranges.warmup.help("Untimed steps first.")) public var warmup = 3
    @Option(help: Ranges.gflops.help("FP32 peak in GFLOP/s to compare against (default: measured).")) public var peak: Double?
    @Flag(help: "Print one JSON line.") public var json = false

    public init() {}

    public func validate() throws {
        try checkGANImageSize(imageSize); try checkChannels(channels)
        try Ranges.ganBatchSize.check(batchSize, "--batch-size")
        try Ranges.benchSteps.check(steps, "--steps"); try Ranges.warmup.check(warmup, "--warmup")
        try Ranges.gflops.check(peak, "--peak")
    }

    /// Times the steps; returns the summary (or JSON line) to print.
    public func run() throws -> String {
        let r = try Benchmark.dcgan(imageSize: imageSize, channels: channels, batchSize: batchSize, steps: steps, warmup: warmup)
        let peak = self.peak ?? Benchmark.peakGFLOPS()
        return json ? try r.json(peak: peak) : r.summary(peak: peak)
    }
}

/// `bench classifier`'s options.
public struct ClassifierBenchOptions: ParsableArguments {
    @Option(help: "Architecture: resnet or paper-cnn.") public var arch: Architecture = .resnet
    @Option(help: Ranges.classifierImageSize.help("Image size (side of the square input).")) public var imageSize = 28
    @Option(help: "Channels: 1 or 3.") public var channels = 3
    @Option(help: Ranges.classes.help("Classes (7: DermaMNIST).")) public var classes = 7
    @Option(help: Ranges.ganBatchSize.help("Images per step.")) public var batchSize = 64
    @Option(help: Ranges.benchSteps.help("Timed steps (and as many timed inference batches).")) public var steps = 20
    @Option(help: Ranges.warmup.help("Untimed steps first.")) public var warmup = 3
    @Flag(help: "Print one JSON line.") public var json = false

    public init() {}

    public func validate() throws {
        try Ranges.classifierImageSize.check(imageSize, "--image-size"); try checkChannels(channels)
        try Ranges.classes.check(classes, "--classes"); try Ranges.ganBatchSize.check(batchSize, "--batch-size")
        try Ranges.benchSteps.check(steps, "--steps"); try Ranges.warmup.check(warmup, "--warmup")
    }

    /// Times the steps and the inference batches; returns the summary (or JSON line) to print.
    public func run() throws -> String {
        let config = try ClassifierConfig(arch: arch, imageSize: imageSize, channels: channels, classes: classes)
        let r = try Benchmark.classifier(config: config, batchSize: batchSize, steps: steps, warmup: warmup)
        return json ? try r.json() : r.summary
    }
}

/// `bench diffusion`'s options.
public struct DiffusionBenchOptions: ParsableArguments {
    @Option(help: "Image size: 28, 32 or 64.") public var imageSize = 28
    @Option(help: "Channels: 1 or 3.") public var channels = 1
    @Option(help: Ranges.diffusionWidth.help("U-Net base width, a multiple of 8.")) public var width = 32
    @Flag(help: "Self-attention at the lowest resolution.") public var attention = false
    @Option(help: Ranges.diffusionBatchSize.help("Images per training step.")) public var batchSize = 32
    @Option(help: Ranges.benchSteps.help("Timed steps.")) public var steps = 10
    @Option(help: Ranges.warmup.help("Untimed steps first.")) public var warmup = 2
    @Option(help: Ranges.sampleCount.help("Images sampled per timing.")) public var samples = 64
    @Option(help: Ranges.distilledSteps.help("Also time sampling at a distilled student's cost: N steps, guidance 1."))
    public var distilledSteps = 4
    @Flag(help: "Print one JSON line.") public var json = false

    public init() {}

    public func validate() throws {
        try Ranges.distilledSteps.check(distilledSteps, "--distilled-steps")
        guard [28, 32, 64].contains(imageSize) else { throw ValidationError("--image-size \(imageSize): use 28, 32 or 64") }
        try checkChannels(channels); try Ranges.diffusionWidth.check(width, "--width")
        if width % 8 != 0 { throw ValidationError("--width \(width) is not a multiple of 8") }
        try Ranges.diffusionBatchSize.check(batchSize, "--batch-size"); try Ranges.benchSteps.check(steps, "--steps")
        try Ranges.warmup.check(warmup, "--warmup"); try Ranges.sampleCount.check(samples, "--samples")
    }

    /// Times the steps and the sampling; returns the summary (or JSON line) to print.
    public func run() throws -> String {
        let config = try UNetConfig(imageSize: imageSize, channels: channels, baseWidth: width, attention: attention, classes: 2)
        let r = try DiffusionBenchmark.run(
            config: config, batchSize: batchSize, steps: steps, warmup: warmup, distilledSteps: distilledSteps,
            sampleCount: samples)
        return json ? try r.json() : r.summary
    }
}

/// `privacy epsilon`'s options.
public struct EpsilonOptions: ParsableArguments {
    @Option(help: Ranges.datasetSize.help("Training set size.")) public var n: Int
    @Option(help: "Expected batch size, 1...n.") public var batchSize: Int
    @Option(help: Ranges.privacyEpochs.help("Passes over the data (epochs x n / batch size steps, at most 1e12)."))
    public var epochs: Double
    @Option(help: Ranges.delta.help("DP delta.")) public var delta = 1e-5
    @Option(help: Ranges.noiseMultiplier.help("Noise multiplier (omit with --target-epsilon).")) public var noiseMultiplier:
        Double?
    @Option(help: Ranges.epsilon.help("Solve for the noise multiplier that reaches this epsilon.")) public var targetEpsilon:
        Double?
    @Flag(help: "Classic conversion eps = rdp - log(delta)/(alpha-1) instead of Balle et al. 2020's.") public var classic =
        false

    public init() {}

    public func validate() throws {
        if (noiseMultiplier == nil) == (targetEpsilon == nil) {
            throw ValidationError("give --noise-multiplier or --target-epsilon")
        }
        try Ranges.datasetSize.check(n, "--n")
        if batchSize < 1 || batchSize > n {
            throw ValidationError("--batch-size \(batchSize) is out of range: it must be in 1...\(n) (--n)")
        }
        try Ranges.privacyEpochs.check(epochs, "--epochs"); try Ranges.delta.check(delta, "--delta")
        try Ranges.noiseMultiplier.check(noiseMultiplier, "--noise-multiplier")
        try Ranges.epsilon.check(targetEpsilon, "--target-epsilon")
        let planned = epochs / (Double(batchSize) / Double(n))
        if !Ranges.privacySteps.contains(planned) {
            throw ValidationError(
                "--epochs \(epochs) x --n \(n) / --batch-size \(batchSize) = \(planned) steps, above the 1e12 the accountant takes"
            )
        }
    }

    /// DP-SGD steps of the plan: epochs / sampling rate (at most 1e12 after `validate()`).
    public var steps: Int { Int((epochs / (Double(batchSize) / Double(n))).rounded(.up)) }

    /// The accountant's summary of the plan.
    public func summary() throws -> String {
        try RDPAccountant.summary(
            noiseMultiplier: noiseMultiplier, targetEpsilon: targetEpsilon, delta: delta,
            samplingRate: Double(batchSize) / Double(n), steps: steps, conversion: classic ? .classic : .improved)
    }
}
