import AtomicIO
import Classification
import Datasets
import Foundation
import Hashing
import SwiftProtobuf
import Tracking

/// Errors of model export; each names the file, layer or value and the problem.
public enum ExportError: Error, CustomStringConvertible, Equatable, Sendable {
    case unknownFormat(String, known: [String])
    case unsupportedLayer(path: String, type: String)
    case unwritableOutput(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unknownFormat(name, known):
            return "unknown export format '\(name)' (known: \(known.joined(separator: ", ")))"
        case let .unsupportedLayer(path, type): return "cannot export layer \(path) (\(type))"
        case let .unwritableOutput(path, reason): return "cannot write the exported model to \(path): \(reason)"
        }
    }
}

/// The file formats a classifier exports to.
public enum ExportFormat: String, CaseIterable, Sendable {
    /// An ONNX ModelProto (opset `ONNXExport.opset`), for ONNX Runtime, Triton, PyTorch and the rest.
    case onnx

    /// The format called `name`; throws `unknownFormat` naming the known ones.
    public init(named name: String) throws(ExportError) {
        guard let format = Self(rawValue: name.lowercased()) else {
            throw .unknownFormat(name, known: Self.allCases.map(\.rawValue))
        }
        self = format
    }
}

/// What an export wrote.
public struct ExportSummary: Equatable, Sendable {
    public var path: String
    public var format: ExportFormat
    public var bytes: Int
    /// The source checkpoint's SHA-256 (lower-case hex), also in the model's metadata.
    public var sourceSHA256: String
    public var classNames: [String]
}

/// Classifiers as ONNX models.
///
/// - Opset 13 of the default domain (ai.onnx), IR version 7: ONNX Runtime 1.6 and later,
///   TensorRT and Triton read it. Nodes: Conv, BatchNormalization, Relu, MaxPool, Add,
///   GlobalAveragePool, Flatten, Gemm.
/// - Input `input`: float32 (N, C, S, S), NCHW, batch dimension symbolic (`N`), already
///   preprocessed as MedSynth does (`Preprocessing`: resized to S x S, gray or RGB, then
///   pixels / 255 in [0, 1] for scaling `unit`, the classifiers' default, or pixels / 127.5 - 1 for
///   `symmetric`; the metadata says which).
/// - Output `logits`: float32 (N, K), before softmax, classes in the order of `class_names`.
/// - Metadata (`metadata_props`): `class_names` (a JSON array), `image_size`, `channels`,
///   `scaling`, `preprocessing` (its JSON), `architecture`, `source_sha256` (the checkpoint's
///   SHA-256), and `source` (the registry's NAME@VERSION when exported from there).
public enum ONNXExport {
    /// The operator set version of the default domain.
    public static let opset: Int64 = 13
    /// The ONNX IR version (7: the one opset 13 shipped with).
    public static let irVersion: Int64 = 7
    public static let inputName = "input"
    public static let outputName = "logits"

    /// The serialized ModelProto of `model` in inference mode (whatever its training flag).
    public static func modelBytes(
        _ model: Classifier, metadata: ClassifierMetadata, sourceSHA256: String, source: String? = nil
    ) throws -> Data {
        let config = model.config
        var builder = GraphBuilder()
        let logits = try builder.classifier(model, inputName)
        builder.rename(logits, to: outputName)

        var graph = Onnx_GraphProto()
        graph.name = "medsynth_\(config.arch.rawValue.replacingOccurrences(of: "-", with: "_"))"
        graph.node = builder.nodes
        graph.initializer = builder.initializers
        graph.input = [
            valueInfo(inputName, dims: [.batch, .fixed(config.channels), .fixed(config.imageSize), .fixed(config.imageSize)])
        ]
        graph.output = [valueInfo(outputName, dims: [.batch, .fixed(config.classes)])]

        var proto = Onnx_ModelProto()
        proto.irVersion = irVersion
        var opsetID = Onnx_OperatorSetIdProto()
        (opsetID.domain, opsetID.version) = ("", opset)
        proto.opsetImport = [opsetID]
        proto.producerName = "medsynth"
        proto.docString =
            "MedSynth \(config.arch.rawValue) classifier: input (N, \(config.channels), \(config.imageSize), "
            + "\(config.imageSize)) float32 scaled '\(metadata.preprocessing.scaling.rawValue)', output logits (N, "
            + "\(config.classes)) in the order of metadata class_names."
        proto.graph = graph
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let entries: [(String, String)] = [
            ("class_names", String(decoding: try encoder.encode(metadata.classNames), as: UTF8.self)),
            ("image_size", "\(config.imageSize)"),
            ("channels", "\(config.channels)"),
            ("scaling", scalingNote(metadata.preprocessing.scaling)),
            ("preprocessing", String(decoding: try encoder.encode(metadata.preprocessing), as: UTF8.self)),
            ("architecture", config.arch.rawValue),
            ("source_sha256", sourceSHA256),
        ]
        proto.metadataProps = (entries + (source.map { [("source", $0)] } ?? [])).map { key, value in
            var entry = Onnx_StringStringEntryProto()
            (entry.key, entry.value) = (key, value)
            return entry
        }
        return try proto.serializedData()
    }

    /// Exports the classifier checkpoint at `checkpoint` (its bytes hashed for the metadata) to
    /// `out`, written atomically.
    public static func export(checkpoint: URL, to out: URL, source: String? = nil) throws -> ExportSummary {
        let (model, metadata) = try ClassifierCheckpoint.load(checkpoint)  // typed errors for a missing or foreign file
        let sha = sha256Hex(try Data(contentsOf: checkpoint, options: .mappedIfSafe))
        let bytes = try modelBytes(model, metadata: metadata, sourceSHA256: sha, source: source)
        do { try AtomicFile.write(bytes, to: out.path) } catch {
            throw ExportError.unwritableOutput(path: out.path, reason: error.reason)
        }
        return ExportSummary(
            path: out.path, format: .onnx, bytes: bytes.count, sourceSHA256: sha, classNames: metadata.classNames)
    }

    private static func scalingNote(_ scaling: PixelScaling) -> String {
        switch scaling {
        case .unit: "unit: pixels / 255, in [0, 1]"
        case .symmetric: "symmetric: pixels / 127.5 - 1, in [-1, 1]"
        }
    }

    private enum Dim {
        case batch
        case fixed(Int)
    }

    private static func valueInfo(_ name: String, dims: [Dim]) -> Onnx_ValueInfoProto {
        var shape = Onnx_TensorShapeProto()
        shape.dim = dims.map { dim in
            var d = Onnx_TensorShapeProto.Dimension()
            switch dim {
            case .batch: d.dimParam = "N"
            case .fixed(let n): d.dimValue = Int64(n)
            }
            return d
        }
        var tensor = Onnx_TypeProto.Tensor()
        tensor.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        tensor.shape = shape
        var info = Onnx_ValueInfoProto()
        info.name = name
        info.type.tensorType = tensor
        return info
    }
}

/// Exports a registered model version (`NAME@ALIAS`, `NAME@VERSION` or `NAME`, the latest) after
/// checking that its file still has the hash recorded at registration.
public func exportRegisteredModel(
    _ reference: String, store: RunStore, format: ExportFormat, to out: URL
) throws -> ExportSummary {
    let version = try store.resolve(reference)
    try store.verifyArtifact(version)
    let summary: ExportSummary
    switch format {
    case .onnx:
        summary = try ONNXExport.export(checkpoint: URL(fileURLWithPath: version.artifactPath), to: out, source: version.label)
    }
    // The file was hashed again as it was exported: it must still be the registered one.
    guard summary.sourceSHA256 == version.artifactSHA256 else {
        try? FileManager.default.removeItem(at: out)
        throw TrackingError.artifactChanged(
            model: version.label, path: version.artifactPath, expected: version.artifactSHA256, actual: summary.sourceSHA256)
    }
    return summary
}
