import Diffusion
import Foundation
import Kernels

// What `medsynth bench ...` prints: one line (or one JSON line) per benchmark.

extension DCGANBenchmarkResult {
    /// Step time, throughput, FLOP and the share of `peak` (GFLOP/s).
    public func summary(peak: Double) -> String {
        String(
            format:
                "%@ batch %d, %@ convolutions: %.1f ms/step (median of %d), %.1f images/s, %.2f GFLOP/step, %.1f GFLOP/s = %.0f%% of %.0f GFLOP/s %@ peak",
            model, batchSize, precision, stepMillisecondsMedian, stepMilliseconds.count, imagesPerSecond, gflopPerStep,
            gflops, 100 * gflops / peak, peak, precision)
    }

    /// The result as one JSON line with sorted keys, `peak_gflops` added.
    public func json(peak: Double) throws -> String {
        guard var object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(self)) as? [String: Any] else {
            return "{}"
        }
        object["peak_gflops"] = peak
        return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }
}

extension DiffusionBenchmarkResult {
    /// The model, step time, FLOP and sampling speed at 25 and 50 DDIM steps (and a distilled student's).
    public var summary: String {
        // "N distilled": N steps without guidance, the cost of a `gan distill` student.
        let distilled = samplingImagesPerSecond.sorted { $0.key < $1.key }.filter { $0.key.hasSuffix(" distilled") }.map {
            String(
                format: ", %.2f at %@ steps without guidance (a distilled student)", $0.value, String($0.key.prefix { $0 != " " })
            )
        }
        return String(
            format: "diffusion %dx%dx%d width %d%@ (%d parameters), batch %d: %.1f ms/step (median of %d), %.2f GFLOP/step; "
                + "sampling %.2f images/s at 25 DDIM steps, %.2f at 50", config.channels, config.imageSize, config.imageSize,
            config.baseWidth, config.attention ? " + attention" : "", parameters, batchSize, stepMillisecondsMedian,
            stepMilliseconds.count, gflopPerStep, samplingImagesPerSecond["25"] ?? 0, samplingImagesPerSecond["50"] ?? 0)
            + distilled.joined()
    }

    /// The result as one JSON line.
    public func json() throws -> String { String(decoding: try JSONEncoder().encode(self), as: UTF8.self) }
}

/// The pure-Swift loops beside the oneDNN kernels, in milliseconds (medians).
public struct SwiftLoopsResult: Sendable {
    public var adamMilliseconds: Double
    public var lossMilliseconds: Double

    public var summary: String {
        String(
            format:
                "Adam update of 6.4M parameters: %.2f ms; BCE-on-logits loss + backward over 1M values: %.2f ms (medians of 20)",
            adamMilliseconds, lossMilliseconds)
    }
}

/// This machine's FP32 peak: the widest FMA loop on every core, and the narrower loops beside it.
public struct PeakReport: Sendable {
    public var widest: PeakMeasurement
    public var narrower: [PeakMeasurement]
    /// The bf16 dot-product peak (VDPBF16PS) in GFLOP/s, where the CPU has AVX512_BF16: what
    /// "% of peak" divides by when the convolutions run in bf16.
    public var bf16: Double?

    /// Measures the widest loop the CPU runs, then each narrower one (not the generic loop), and
    /// the bf16 loop where the CPU has it.
    public static func measure() -> PeakReport {
        let widest = FMAPeak.widest()
        let narrower = VectorISA.allCases.filter { $0 < widest.isa && $0 != .generic }.compactMap { FMAPeak.measure($0) }
        return PeakReport(widest: widest, narrower: narrower, bf16: FMAPeak.bf16(threads: widest.threads))
    }

    /// `peak: ...`, then the narrower loops, narrowest last, then the bf16 loop.
    public var summary: String {
        let bf16Line = bf16.map {
            String(
                format: "bf16: %.1f GFLOP/s (avx512_bf16: VDPBF16PS, 32 products an instruction, %d chains, %d threads)", $0,
                widest.chains, widest.threads)
        }
        return (["peak: \(widest)"] + narrower.reversed().map { "      \($0)" } + (bf16Line.map { [$0] } ?? []))
            .joined(separator: "\n")
    }

    /// One JSON line: the widest loop's ISA, GFLOP/s and threads, each narrower loop's GFLOP/s,
    /// and `bf16_gflops` where the CPU has AVX512_BF16.
    public func json() throws -> String {
        struct Report: Encodable {
            var isa: String, gflops: Double, threads: Int, narrower: [String: Double]
            var bf16Gflops: Double?
            enum CodingKeys: String, CodingKey {
                case isa, gflops, threads, narrower
                case bf16Gflops = "bf16_gflops"
            }
        }
        let report = Report(
            isa: widest.isa.description, gflops: widest.gflops, threads: widest.threads,
            narrower: Dictionary(uniqueKeysWithValues: narrower.map { ($0.isa.description, $0.gflops) }), bf16Gflops: bf16)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(report), as: UTF8.self)
    }
}

extension PrivacyBenchmark.Result {
    /// Both step times (minimum and median) and the slowdown.
    public var summary: String {
        String(
            format: "batch %d, %d steps each: ordinary step %.1f ms min / %.1f ms median, DP-SGD step %.1f ms min / "
                + "%.1f ms median: %.1fx slower (minima)", batchSize, steps, ordinary.minimum, ordinary.median,
            privateStep.minimum, privateStep.median, slowdown)
    }
}
