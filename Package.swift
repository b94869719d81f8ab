// swift-tools-version: 6.0
import PackageDescription
import Foundation

// NOTE: Swift's own SIMD loops (losses, Adam, elementwise ops) compile to SSE2 code unless the
// target CPU allows AVX2 and FMA; oneDNN picks AVX2/AVX-512 kernels at run time either way.
// `MEDSYNTH_NATIVE=1 swift build -c release` enables AVX2, FMA and F16C for our targets. It is an
// explicit opt-in because it needs `unsafeFlags`, which SwiftPM refuses in a package used as a
// version-based dependency, and the binary then runs only on CPUs with those instructions;
// scripts/setup.sh opts in for the tool it builds and runs on the same machine. Measured on two
// release builds side by side (2026-12-03, this 2-core AVX-512 machine idle, medians of 3 runs):
// `medsynth bench loops`: the Adam update of 6.4M parameters 11.0 ms native vs 34.6 ms portable
// (VectorKernels.adam's SIMD8 loop: 8 lanes with FMA vs 2 x 4 without), the BCE loss 28.6 vs 29.6
// ms (libm's scalar exp/log); `medsynth bench dcgan --image-size 28 --channels 1`: 105.8-111.5 vs
// 113.0-113.7 ms per step (oneDNN, which dispatches at run time, dominates): a few percent.
let simdFlags: [SwiftSetting] = ProcessInfo.processInfo.environment["MEDSYNTH_NATIVE"] == "1"
    ? [.unsafeFlags(["-Xcc", "-mavx2", "-Xcc", "-mfma", "-Xcc", "-mf16c"])] : []

// MPI (Debian: libopenmpi-dev) for `mpirun -np N medsynth experiment`: built in when Open MPI's
// header is found, or forced with MEDSYNTH_MPI=1 / MEDSYNTH_MPI=0. Without it the binary still
// runs plainly and refuses to run as one of several ranks (Sources/Cluster).
let mpiHeaders = ["/usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h", "/usr/lib/aarch64-linux-gnu/openmpi/include/mpi.h",
                  "/usr/include/openmpi-x86_64/mpi.h", "/usr/local/include/mpi.h", "/opt/homebrew/include/mpi.h"]
let withMPI = ProcessInfo.processInfo.environment["MEDSYNTH_MPI"].map { $0 == "1" }
    ?? mpiHeaders.contains { FileManager.default.fileExists(atPath: $0) }
let mpiTargets: [Target] = withMPI
    ? [.systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"]), .brew(["open-mpi"])])] : []

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
        .library(name: "Export", targets: ["Export"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        // Already in the graph through Hummingbird; named for the server's connection guard.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.34.1"),
        // The protobuf runtime for ONNX export (the generated code is committed, no plugin runs).
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // System libraries (Debian: libdnnl-dev, libpng-dev, libturbojpeg0-dev).
        .systemLibrary(name: "CDNNL"),
        .systemLibrary(name: "CPNG"),
        .systemLibrary(name: "CTurboJPEG"),
        // Seedable, checkpointable randomness shared by every layer above.
        .target(name: "SeededRandom", swiftSettings: simdFlags),
        // SHA-256 fingerprints as hex (files, images, manifests, checkpoints).
        .target(name: "Hashing", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        // MPI ranks (rank, size, barriers that sleep, allreduce); the only place MPI's C types live.
        .target(name: "Cluster", dependencies: withMPI ? ["CMPI"] : [], swiftSettings: withMPI ? [.define("MEDSYNTH_MPI")] : []),
        // Crash-safe file replacement (temporary file, fsync, rename), shared by checkpoints and data.
        .target(name: "AtomicIO"),
        // The FP32 FMA peak loops (AVX-512, AVX2+FMA, SSE2), chosen at run time; no build flags.
        .target(name: "CPeak"),
        // DCMTK (Debian: libdcmtk-dev) behind a plain C API: DICOM parsing, RLE/JPEG/JPEG-LS
        // decoding, and a test-file writer; the only place DCMTK's C++ types live.
        .target(
            name: "CDICOM",
            linkerSettings: ["dcmdata", "dcmjpeg", "dcmjpls", "dcmimgle", "dcmimage", "oflog", "ofstd", "z"].map { .linkedLibrary($0) }),
        // oneDNN wrappers and naive reference kernels; the only place oneDNN's C types live.
        .target(name: "Kernels", dependencies: ["CDNNL", "CPeak"], swiftSettings: simdFlags),
        // Tensor, reverse-mode autodiff; each op = forward kernel + backward closure.
        .target(name: "Autodiff", dependencies: ["Kernels", "SeededRandom"], swiftSettings: simdFlags),
        // Layers, losses, initialisers, optimizers, schedules, safetensors checkpoints.
        .target(name: "NN", dependencies: ["Autodiff", "AtomicIO", "Hashing", .product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: simdFlags),
        // Image decoding, MedMNIST npz, class folders, stratified splits, batching, augmentation.
        // Produces plain Float arrays (NCHW); no tensor type lives here.
        .target(
            name: "Datasets",
            dependencies: [
                "CPNG", "CTurboJPEG", "SeededRandom", "AtomicIO", "Hashing",
                "CDICOM",
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: simdFlags),
        // Differential privacy: DP-SGD with per-example clipping, the Renyi-DP accountant.
        .target(name: "Privacy", dependencies: ["NN"], swiftSettings: simdFlags),
        // DCGAN and conditional DCGAN models, training, sampling, grids.
        .target(name: "GAN", dependencies: ["NN", "Datasets", "Hashing", "Privacy", "AtomicIO"], swiftSettings: simdFlags),
        // Class-conditional denoising diffusion: U-Net, DDPM training, EMA, guidance, DDIM sampling.
        .target(name: "Diffusion", dependencies: ["NN", "Datasets", "Hashing"], swiftSettings: simdFlags),
        // Synthetic-image quality (KID, FD, precision/recall/density/coverage) and memorization audit.
        .target(name: "Quality", dependencies: ["NN", "Datasets", "Evaluation"], swiftSettings: simdFlags),
        // Evaluation metrics (named so as not to clash with swift-metrics): confusion matrices, per-class scores, AUC, baselines, bootstrap intervals; Foundation only.
        .target(name: "Evaluation", dependencies: ["SeededRandom"], swiftSettings: simdFlags),
        // CNN classifiers (paper CNN, small ResNet), trainer with early stopping, predictor.
        .target(name: "Classification", dependencies: ["NN", "Datasets", "Evaluation", "Privacy"], swiftSettings: simdFlags),
        // The experiment: arms, seeds, reports (JSON, Markdown, HTML with SVG charts).
        .target(name: "Experiments", dependencies: ["AtomicIO", "Kernels", "GAN", "Diffusion", "Classification", "Evaluation", "Datasets", "Quality"], swiftSettings: simdFlags),
        // Run store and model registry (SQLite through GRDB; Debian: libsqlite3-dev).
        .target(
            name: "Tracking",
            dependencies: ["Hashing", .product(name: "GRDB", package: "GRDB.swift")]),
        // What each command does, as library functions: load, split, train or audit, write the
        // outputs, record the run. The command line parses options into these and prints.
        .target(
            name: "Workflows",
            dependencies: [
                "Autodiff", "Classification", "Datasets", "Diffusion", "Evaluation", "Experiments", "GAN", "NN", "Quality",
                "SeededRandom", "Tracking", "Cluster", "AtomicIO",
            ],
            swiftSettings: simdFlags),
        // Benchmarks (not tests): DCGAN and diffusion training steps, DP-SGD against an ordinary
        // step, the pure-Swift loops, the FP32 peak, image decoding; what `medsynth bench` prints.
        .target(
            name: "Benchmarks",
            dependencies: [
                "GAN", "Diffusion", "Privacy", "NN", "Autodiff", "Kernels", "Datasets", "SeededRandom", "Classification",
            ],
            swiftSettings: simdFlags),
        // HTTP inference server (Open Inference Protocol v2), monitoring and drift.
        .target(
            name: "Serving",
            dependencies: [
                "Tracking", "Datasets", "Classification", "Kernels",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ],
            swiftSettings: simdFlags),
        // Trained classifiers as ONNX models (opset 13); Generated/onnx.pb.swift comes from
        // Generated/onnx.proto through scripts/generate-onnx-proto.sh, run once and committed.
        .target(
            name: "Export",
            dependencies: [
                "AtomicIO", "Classification", "Datasets", "Hashing", "NN", "Tracking",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            exclude: ["Generated/onnx.proto"],
            swiftSettings: simdFlags),
        // Seeded mutation fuzzing of the readers (PNG, JPEG, DICOM, npz, npy), and its driver
        // `medsynth-fuzz` (not in CI; the command and a run's counts are in the README).
        .target(name: "Fuzzing", dependencies: ["Datasets", "SeededRandom"], swiftSettings: simdFlags),
        .executableTarget(name: "medsynth-fuzz", dependencies: ["Fuzzing"], path: "bench/fuzz", swiftSettings: simdFlags),
        // The command line's options as `ParsableArguments` (ranges checked in `validate()`), what
        // turns them into the libraries' specs, and the progress line; tested without the tool.
        .target(
            name: "CommandOptions",
            dependencies: [
                "Benchmarks", "Classification", "Cluster", "Datasets", "Diffusion", "Evaluation", "Experiments", "GAN", "NN",
                "Privacy", "Quality", "Serving", "Tracking", "Workflows",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // The command-line tool: thin commands over the libraries.
        .executableTarget(
            name: "medsynth",
            dependencies: ["AtomicIO", "Datasets", "Experiments", "Privacy", "Tracking", "Serving", "Workflows", "Benchmarks", "Export",
                           "Cluster", "CommandOptions", "Kernels", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: simdFlags),
        // Helpers shared by the test targets (the real data's folder, temporary folders, the built tool).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "CPeak", "SeededRandom"]),
        .testTarget(name: "AutodiffTests", dependencies: ["Autodiff"]),
        .testTarget(name: "NNTests", dependencies: ["TestSupport", "NN", "Datasets"]),
        .testTarget(
            name: "DatasetsTests",
            dependencies: ["TestSupport", "Datasets", "SeededRandom", "CTurboJPEG", "Fuzzing",
                           "CDICOM",
                           .product(name: "ZIPFoundation", package: "ZIPFoundation")]),
        .testTarget(
            name: "GANTests",
            dependencies: ["TestSupport", "GAN", "Datasets", "Hashing", .product(name: "ZIPFoundation", package: "ZIPFoundation")]),
        .testTarget(name: "DiffusionTests", dependencies: ["TestSupport", "Diffusion", "Datasets", "NN"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "SeededRandom"]),
        .testTarget(name: "ClassificationTests", dependencies: ["TestSupport", "Classification", "Datasets", "Evaluation", "NN", "Privacy"]),
        .testTarget(
            name: "ExperimentsTests",
            dependencies: ["TestSupport", "Experiments", "AtomicIO", "Autodiff", "NN", "GAN", "Classification", "Datasets", "SeededRandom"]),
        .testTarget(name: "PrivacyTests", dependencies: ["Privacy", "NN", "GAN"]),
        .testTarget(name: "QualityTests", dependencies: ["TestSupport", "Quality", "NN", "Datasets"]),
        .testTarget(name: "TrackingTests", dependencies: ["TestSupport", "Tracking"]),
        .testTarget(name: "BenchmarksTests", dependencies: ["Benchmarks", "Diffusion", "Kernels", "TestSupport"]),
        .testTarget(name: "WorkflowsTests", dependencies: ["TestSupport", "Workflows", "GAN", "Datasets", "Tracking", "Experiments"]),
        // The command line's parsing and validation (no work is run).
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "medsynth", "CommandOptions", "SeededRandom", "Kernels", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .testTarget(
            name: "ExportTests",
            dependencies: ["TestSupport", "Export", "Classification", "Datasets", "NN", "Autodiff", "SeededRandom", "Serving", "Tracking"]),
        .testTarget(
            name: "ServingTests",
            dependencies: [
                "Serving", "Tracking", "NN", "Datasets", "Autodiff", "SeededRandom", "Classification",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOPosix", package: "swift-nio"),
                "TestSupport",
            ]),
    ] + mpiTargets
)
