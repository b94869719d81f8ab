// swift-tools-version: 6.0
import PackageDescription
import Foundation

// NOTE: Swift's own SIMD loops (losses, Adam, elementwise ops) compile to scalar SSE2 code unless
// the target CPU allows AVX2 and FMA. oneDNN dispatches at run time by itself; for our Swift code
// we enable AVX2+FMA only when the machine that builds has them (as `-march=native` would), so a
// build on an older CPU still runs there. Set MEDSYNTH_PORTABLE=1 to build a baseline binary.
let cpuHasAVX2FMA: Bool = {
    if ProcessInfo.processInfo.environment["MEDSYNTH_PORTABLE"] == "1" { return false }
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
    else { return false }
    let set = Set(flags.split(separator: " ").map(String.init))
    return set.contains("avx2") && set.contains("fma")
}()
let simdFlags: [SwiftSetting] = cpuHasAVX2FMA
    ? [.unsafeFlags(["-Xcc", "-mavx2", "-Xcc", "-mfma", "-Xcc", "-mf16c"])] : []

let package = Package(
    name: "MedSynth",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "medsynth", targets: ["medsynth"]),
        .library(name: "Datasets", targets: ["Datasets"]),
        .library(name: "NN", targets: ["NN"]),
        .library(name: "GAN", targets: ["GAN"]),
        .library(name: "Diffusion", targets: ["Diffusion"]),
        .library(name: "Evaluation", targets: ["Evaluation"]),
        .library(name: "Classification", targets: ["Classification"]),
        .library(name: "Privacy", targets: ["Privacy"]),
        .library(name: "Quality", targets: ["Quality"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        // System libraries (Debian: libdnnl-dev, libpng-dev, libturbojpeg0-dev).
        .systemLibrary(name: "CDNNL"),
        .systemLibrary(name: "CPNG"),
        .systemLibrary(name: "CTurboJPEG"),
        // Seedable, checkpointable randomness shared by every layer above.
        .target(name: "SeededRandom", swiftSettings: simdFlags),
        // Crash-safe file replacement (temporary file, fsync, rename), shared by checkpoints and data.
        .target(name: "AtomicIO"),
        // oneDNN wrappers and naive reference kernels; the only place oneDNN's C types live.
        .target(name: "Kernels", dependencies: ["CDNNL"], swiftSettings: simdFlags),
        // Tensor, reverse-mode autodiff; each op = forward kernel + backward closure.
        .target(name: "Autodiff", dependencies: ["Kernels", "SeededRandom"], swiftSettings: simdFlags),
        // Layers, losses, initialisers, optimizers, schedules, safetensors checkpoints.
        .target(name: "NN", dependencies: ["Autodiff", "AtomicIO", .product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: simdFlags),
        // Image decoding, MedMNIST npz, class folders, stratified splits, batching, augmentation.
        // Produces plain Float arrays (NCHW); no tensor type lives here.
        .target(
            name: "Datasets",
            dependencies: [
                "CPNG", "CTurboJPEG", "SeededRandom", "AtomicIO",
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: simdFlags),
        // Differential privacy: DP-SGD with per-example clipping, the Renyi-DP accountant.
        .target(name: "Privacy", dependencies: ["NN"], swiftSettings: simdFlags),
        // DCGAN and conditional DCGAN models, training, sampling, grids.
        .target(name: "GAN", dependencies: ["NN", "Datasets", "Privacy"], swiftSettings: simdFlags),
        // Class-conditional denoising diffusion: U-Net, DDPM training, EMA, guidance, DDIM sampling.
        .target(name: "Diffusion", dependencies: ["NN", "Datasets"], swiftSettings: simdFlags),
        // Synthetic-image quality (KID, FD, precision/recall/density/coverage) and memorization audit.
        .target(name: "Quality", dependencies: ["NN", "Datasets"], swiftSettings: simdFlags),
        // Evaluation metrics (named so as not to clash with swift-metrics): confusion matrices, per-class scores, AUC, baselines, bootstrap intervals; Foundation only.
        .target(name: "Evaluation", swiftSettings: simdFlags),
        // CNN classifiers (paper CNN, small ResNet), trainer with early stopping, predictor.
        .target(name: "Classification", dependencies: ["NN", "Datasets", "Evaluation", "Privacy"], swiftSettings: simdFlags),
        // The experiment: arms, seeds, reports (JSON, Markdown, HTML with SVG charts).
        .target(name: "Experiments", dependencies: ["GAN", "Diffusion", "Classification", "Evaluation", "Datasets", "Quality"], swiftSettings: simdFlags),
        // Run store and model registry (SQLite through GRDB; Debian: libsqlite3-dev).
        .target(
            name: "Tracking",
            dependencies: ["Datasets", .product(name: "GRDB", package: "GRDB.swift")]),
        // HTTP inference server (Open Inference Protocol v2), monitoring and drift.
        .target(
            name: "Serving",
            dependencies: [
                "Tracking", "Datasets", "NN", "Autodiff", "SeededRandom",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: simdFlags),
        // The command-line tool: thin commands over the libraries.
        .executableTarget(
            name: "medsynth",
            dependencies: ["GAN", "Diffusion", "Datasets", "Classification", "Evaluation", "Experiments", "Quality", "Privacy",
                           "Tracking", "Serving",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Hummingbird", package: "hummingbird")],
            swiftSettings: simdFlags),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "SeededRandom"]),
        .testTarget(name: "AutodiffTests", dependencies: ["Autodiff"]),
        .testTarget(name: "NNTests", dependencies: ["NN", "Datasets"]),
        .testTarget(
            name: "DatasetsTests",
            dependencies: ["Datasets", "SeededRandom", "CTurboJPEG",
                           .product(name: "ZIPFoundation", package: "ZIPFoundation")]),
        .testTarget(
            name: "GANTests",
            dependencies: ["GAN", "Datasets", .product(name: "ZIPFoundation", package: "ZIPFoundation")]),
        .testTarget(name: "DiffusionTests", dependencies: ["Diffusion", "Datasets", "NN"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation"]),
        .testTarget(name: "ClassificationTests", dependencies: ["Classification", "Datasets", "Evaluation", "NN"]),
        .testTarget(name: "ExperimentsTests", dependencies: ["Experiments"]),
        .testTarget(name: "PrivacyTests", dependencies: ["Privacy", "NN", "GAN"]),
        .testTarget(name: "QualityTests", dependencies: ["Quality", "NN", "Datasets"]),
        .testTarget(name: "TrackingTests", dependencies: ["Tracking"]),
        // The command line's parsing and validation (no work is run).
        .testTarget(name: "CLITests", dependencies: ["medsynth", "SeededRandom", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .testTarget(
            name: "ServingTests",
            dependencies: [
                "Serving", "Tracking", "NN", "Datasets",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]),
    ]
)
