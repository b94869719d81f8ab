import Autodiff
import Classification
import Datasets
import Foundation
import Hashing
import NN
import SeededRandom
import Serving
import TestSupport
import Testing
import Tracking

@testable import Export

// The independent check of the exporter: ONNX Runtime (from PyPI, installed by scripts/setup.sh)
// runs the exported file on real ultrasound images and must give MedSynth's own logits.

/// One classifier to export: architecture and input shape.
struct ExportCase: CustomStringConvertible, Sendable {
    let arch: Architecture, imageSize: Int, channels: Int
    var description: String { "\(arch.rawValue) \(imageSize)px x\(channels)" }
}

/// The paper CNN and the ResNet at 28 px gray (the experiment's shape), the ResNet's stride-2 stem
/// at 64 px RGB, and its stem max pool (padding 1) at 128 px; the paper CNN at 64 px (4 blocks).
let exportCases = [
    ExportCase(arch: .paperCNN, imageSize: 28, channels: 1), ExportCase(arch: .resnet, imageSize: 28, channels: 1),
    ExportCase(arch: .resnet, imageSize: 64, channels: 3), ExportCase(arch: .resnet, imageSize: 128, channels: 1),
    ExportCase(arch: .paperCNN, imageSize: 64, channels: 3),
]

/// A classifier of `shape` trained for 3 steps of 32 real images (so batch norm's running
/// statistics are far from their initial 0 and 1), saved as a checkpoint, and 40 held-out images.
struct TrainedCheckpoint {
    let checkpoint: URL
    let classNames: [String]
    /// Held-out images, NCHW in [0, 1].
    let pixels: [Float]
    let count: Int

    init(_ shape: ExportCase, in folder: String) throws {
        let preprocessing = Preprocessing(imageSize: shape.imageSize, channels: shape.channels, scaling: .unit)
        let images = try loadDataset(at: sharedData("breastmnist-png"), options: LoadOptions(preprocessing: preprocessing))
            .images
        // Even indices train, odd ones are held out; both classes among the held-out images.
        let odd = Array(stride(from: 1, to: images.count, by: 2))
        let held = odd.filter { images.labels[$0] == 0 }.prefix(15) + odd.filter { images.labels[$0] == 1 }.prefix(25)
        let config = try ClassifierConfig(
            arch: shape.arch, imageSize: shape.imageSize, channels: shape.channels, classes: images.classNames.count)
        var options = TrainingOptions()
        (options.epochs, options.batchSize, options.seed, options.learningRate) = (1, 32, 3, 3e-3)
        let trainer = try ClassifierTrainer(
            config: config, options: options,
            train: images.subset(Array(stride(from: 0, to: images.count, by: 2).prefix(96))),
            val: images.subset(Array(odd.suffix(32))))
        _ = try trainer.run()
        checkpoint = URL(fileURLWithPath: folder).appendingPathComponent("\(shape.arch.rawValue)-\(shape.imageSize).safetensors")
        try ClassifierCheckpoint.save(
            trainer.model,
            metadata: ClassifierMetadata(config: config, classNames: images.classNames, preprocessing: preprocessing),
            to: checkpoint)
        classNames = images.classNames
        pixels = images.gather(Array(held)).pixels
        count = held.count
    }
}

/// What the Python side reports about the exported file.
struct RuntimeReport: Decodable {
    let input: [String]
    let output: [String]
    let irVersion: Int
    let opsets: [[String]]
    let metadata: [String: String]
    let batchOneMaxDifference: Double
    /// Each BatchNormalization node's epsilon as ONNX reads it (the attribute, else its default).
    let batchNormEpsilons: [Double]
}

/// Fails (never skips) when python3 lacks onnx, onnxruntime or numpy: scripts/setup.sh installs them.
func requireONNXRuntime() throws {
    try #require(
        try pythonCanImport("numpy, onnx, onnxruntime"),
        "python3 with onnx, onnxruntime and numpy is not installed: run scripts/setup.sh")
}

/// Checks `model` with onnx's checker, runs it in ONNX Runtime on `count` images from the raw
/// float32 file `inputs`, writes the logits as raw float32 to `outputs`, and reports the file's
/// declared names, shapes, versions and metadata (as JSON on standard output).
let runtimeScript = """
    import json, sys
    import numpy as np, onnx, onnxruntime as ort
    path, inputs, outputs, n, c, s = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:7])
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = np.fromfile(inputs, dtype="<f4").reshape(n, c, s, s)
    y = session.run(["logits"], {"input": x})[0]
    y.astype("<f4").tofile(outputs)
    one = session.run(["logits"], {"input": x[:1]})[0]  # the batch dimension is symbolic
    i, o = session.get_inputs()[0], session.get_outputs()[0]
    print(json.dumps({
        "input": [i.name, i.type] + [str(d) for d in i.shape], "output": [o.name, o.type] + [str(d) for d in o.shape],
        "irVersion": model.ir_version, "opsets": [[op.domain, str(op.version)] for op in model.opset_import],
        "metadata": {p.key: p.value for p in model.metadata_props},
        "batchNormEpsilons": [next((a.f for a in n.attribute if a.name == "epsilon"), 1e-5)
                              for n in model.graph.node if n.op_type == "BatchNormalization"],
        "batchOneMaxDifference": float(np.nan_to_num(np.abs(one - y[:1]).max(), nan=1e30, posinf=1e30))}))
    """

/// Runs the exported `onnx` file in ONNX Runtime on `pixels`: the logits (N, K) and the report.
func runInONNXRuntime(_ onnx: URL, pixels: [Float], count: Int, shape: ExportCase, classes: Int) async throws -> (
    logits: [Float], report: RuntimeReport
) {
    let folder = onnx.deletingLastPathComponent()
    let inputs = folder.appendingPathComponent("inputs.f32"), outputs = folder.appendingPathComponent("logits.f32")
    try pixels.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: inputs)
    let p = Process(), stdout = Pipe()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments =
        ["python3", "-c", runtimeScript, onnx.path, inputs.path, outputs.path]
        + ["\(count)", "\(shape.channels)", "\(shape.imageSize)"]
    p.standardOutput = stdout
    try p.run()
    let json = await exited(p, reading: stdout)
    try #require(p.terminationStatus == 0, "ONNX Runtime refused or failed on the exported file (its error is above)")
    let raw = try Data(contentsOf: outputs)
    let logits = raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    try #require(logits.count == count * classes)
    return (logits, try JSONDecoder().decode(RuntimeReport.self, from: json))
}

/// Every BatchNorm2d of `module`, depth first (the order the exporter emits them in).
func batchNorms(in module: any Module) -> [BatchNorm2d] {
    ((module as? BatchNorm2d).map { [$0] } ?? []) + module.children.flatMap { batchNorms(in: $0.1) }
}

func argmaxRows(_ values: [Float], columns k: Int) -> [Int] {
    stride(from: 0, to: values.count, by: k).map { start in
        (0..<k).max { values[start + $0] < values[start + $1] }!
    }
}

/// The exported file, run by ONNX Runtime on 40 real images, gives MedSynth's own logits within
/// 1e-4; the served model (`ServedClassifier`) predicts the same classes; the file declares
/// opset 13, `input` (N, C, S, S), `logits` (N, K), and carries the class names and the
/// checkpoint's hash.
@Test("ONNX Runtime matches MedSynth's logits", .serialized, arguments: exportCases)
func onnxRuntimeMatchesOurLogits(_ shape: ExportCase) async throws {
    try requireONNXRuntime()
    let folder = try makeTemporaryFolder()
    defer { removeTemporary(folder) }
    let trained = try TrainedCheckpoint(shape, in: folder)
    let (model, metadata) = try ClassifierCheckpoint.load(trained.checkpoint)
    // Batch norm's running statistics moved away from (0, 1): the export must carry them.
    let stats = model.buffers.filter { $0.0.hasSuffix("running_mean") }.flatMap { $0.1.value.scalars }
    #expect(shape.arch == .paperCNN || stats.contains { abs($0) > 1e-3 })

    let onnx = URL(fileURLWithPath: folder).appendingPathComponent("model.onnx")
    let summary = try ONNXExport.export(checkpoint: trained.checkpoint, to: onnx)
    let sha = sha256Hex(try Data(contentsOf: trained.checkpoint))
    #expect(summary.sourceSHA256 == sha && summary.classNames == trained.classNames)

    let k = trained.classNames.count
    let x = try Tensor(shape: [trained.count, shape.channels, shape.imageSize, shape.imageSize], scalars: trained.pixels)
    let ours = try noGrad { try model(x) }.scalars  // (N, K)
    let (theirs, report) = try await runInONNXRuntime(
        onnx, pixels: trained.pixels, count: trained.count, shape: shape, classes: k)
    // NOTE: a NaN compares false with everything, so `max` would pass over it: count it as infinite.
    let difference = zip(ours, theirs).map { abs($0 - $1) }.map { $0.isNaN ? .infinity : $0 }.max() ?? .infinity
    print("onnx export \(shape): max |logit difference| \(difference) over \(trained.count) images")
    #expect(difference < 1e-4, "max |logit difference| \(difference)")
    #expect(report.batchOneMaxDifference < 1e-4)
    // NOTE: a wrong epsilon moves these logits by only ~1e-4 (variances are far above 1e-5), so
    // the file's epsilons are also checked against the layers' own, one per BatchNorm2d.
    #expect(report.batchNormEpsilons == batchNorms(in: model).map { Double($0.epsilon) })

    #expect(report.input == ["input", "tensor(float)", "N", "\(shape.channels)", "\(shape.imageSize)", "\(shape.imageSize)"])
    #expect(report.output == ["logits", "tensor(float)", "N", "\(k)"])
    #expect(report.irVersion == 7 && report.opsets == [["", "13"]])
    #expect(report.metadata["class_names"] == #"["malignant","normal_or_benign"]"#)
    #expect(report.metadata["source_sha256"] == sha)
    #expect(report.metadata["image_size"] == "\(shape.imageSize)" && report.metadata["channels"] == "\(shape.channels)")
    #expect(report.metadata["architecture"] == shape.arch.rawValue)
    #expect(report.metadata["scaling"]?.hasPrefix("unit") == true)
    #expect(metadata.classNames == trained.classNames)

    // The served model: its probabilities rank the classes as the exported logits do.
    let served = try ServedClassifier(name: "breast", version: 1, checkpoint: trained.checkpoint)
    let probabilities = try served.predict(trained.pixels, count: trained.count).flatMap { $0 }
    #expect(argmaxRows(probabilities, columns: k) == argmaxRows(theirs, columns: k))
}

@Test func unknownFormatsAreRefusedByName() throws {
    #expect(try ExportFormat(named: "ONNX") == .onnx)
    #expect(throws: ExportError.unknownFormat("tflite", known: ["onnx"])) { try ExportFormat(named: "tflite") }
    #expect(ExportError.unknownFormat("tflite", known: ["onnx"]).description.contains("known: onnx"))
}

/// A registered model exports by NAME@ALIAS with its registry label in the metadata; a missing
/// model, a file changed since registration and an unwritable output are refused.
@Test func registeredModelsExportAfterTheirHashIsChecked() throws {
    let folder = try makeTemporaryFolder()
    defer { removeTemporary(folder) }
    let checkpoint = URL(fileURLWithPath: folder).appendingPathComponent("model.safetensors")
    let config = try ClassifierConfig(arch: .resnet, classes: 2)
    var g = SeededGenerator(seed: 1)
    try ClassifierCheckpoint.save(
        Classifier(config, generator: &g),
        metadata: ClassifierMetadata(config: config, classNames: ["a", "b"], preprocessing: Preprocessing()), to: checkpoint)
    let store = try RunStore(path: "\(folder)/store.sqlite")
    let recorder = try RunRecorder.start(store: store, kind: .train, config: ["data": "none"])
    try recorder.artifact(path: checkpoint.path, kind: "model")
    try recorder.finish(status: .finished)
    let version = try store.register(runID: recorder.runID, name: "breast")
    try store.setAlias(.champion, name: "breast", version: version.version)

    let out = URL(fileURLWithPath: folder).appendingPathComponent("breast.onnx")
    let summary = try exportRegisteredModel("breast@champion", store: store, format: .onnx, to: out)
    let written = try Data(contentsOf: out)
    #expect(summary.sourceSHA256 == version.artifactSHA256 && summary.bytes == written.count)
    let proto = try Onnx_ModelProto(serializedBytes: written)
    #expect(proto.metadataProps.first { $0.key == "source" }?.value == "breast@1")
    #expect(proto.opsetImport.map(\.version) == [13] && proto.graph.output.map(\.name) == ["logits"])

    #expect(throws: TrackingError.self) { try exportRegisteredModel("lung@champion", store: store, format: .onnx, to: out) }
    #expect(throws: CheckpointError.self) {
        try ONNXExport.export(checkpoint: URL(fileURLWithPath: "\(folder)/missing.safetensors"), to: out)
    }
    let unwritable = URL(fileURLWithPath: "\(folder)/no/such/folder/x.onnx")
    #expect {
        try exportRegisteredModel("breast", store: store, format: .onnx, to: unwritable)
    } throws: { error in
        guard case .unwritableOutput(let path, _) = error as? ExportError else { return false }
        return path == unwritable.path
    }
    var bytes = try Data(contentsOf: checkpoint)
    bytes[bytes.count - 1] ^= 1
    try bytes.write(to: checkpoint)
    #expect {
        try exportRegisteredModel("breast@champion", store: store, format: .onnx, to: out)
    } throws: { error in
        guard case .artifactChanged = error as? TrackingError else { return false }
        return true
    }
}
