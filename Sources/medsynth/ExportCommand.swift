import ArgumentParser
import CommandOptions
import Export
import Foundation

extension ExportFormat: ExpressibleByArgument {}

extension ModelsCommand {
    /// `medsynth models export`: a registered model (or a checkpoint file) as an ONNX model.
    struct ExportModel: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Export a registered classifier (or a checkpoint) to ONNX (opset 13).",
            discussion: """
                Input `input` float32 (N, C, S, S), preprocessed as MedSynth does (see the metadata \
                `scaling`); output `logits` (N, K) in the order of the metadata `class_names`.
                """)
        @OptionGroup var tracking: TrackingOptions
        @Argument(help: "NAME@ALIAS, NAME@VERSION or NAME (latest); the file's hash is checked.") var model: String?
        @Option(help: "A classifier checkpoint (.safetensors) instead of a registered model.") var checkpoint: String?
        @Option(help: "Output format (onnx).") var format: ExportFormat = .onnx
        @Option(help: "Output file.") var out: String

        func validate() throws {
            guard (model == nil) != (checkpoint == nil) else {
                throw ValidationError("give one of a registered model (NAME@ALIAS) and --checkpoint FILE, not both or neither")
            }
        }

        func run() throws {
            let target = URL(fileURLWithPath: out)
            let summary =
                if let model {
                    try exportRegisteredModel(model, store: tracking.open(), format: format, to: target)
                } else {
                    try ONNXExport.export(checkpoint: URL(fileURLWithPath: checkpoint!), to: target)
                }
            print(
                "wrote \(summary.path) (\(summary.format.rawValue), opset \(ONNXExport.opset), \(summary.bytes) bytes, "
                    + "classes \(summary.classNames.joined(separator: ", ")), source sha256 \(summary.sourceSHA256))")
        }
    }
}
