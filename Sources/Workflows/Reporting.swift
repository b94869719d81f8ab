import Classification
import Datasets
import Evaluation
import Foundation
import Tracking

extension ClassifierRun {
    /// Trains as `run(store:progress:)` does, reporting as text: what was loaded and split, each
    /// batch and epoch, early stopping. The run is recorded (the spec, code version, data
    /// manifest, metrics, artifacts) so that `models register RUN` can version it.
    public func runShowingProgress(
        store: RunStore?, commandLine: [String] = CommandLine.arguments, report observe: (WorkflowEvent) -> Void
    ) throws -> ClassifierRunResult {
        (dataset.problemNotes + (testSet?.problemNotes ?? [])).forEach { observe(.note($0)) }
        let options = spec.training
        let counts = Split.allCases.map { "\($0.rawValue) \(split.indices(of: $0).count)" }.joined(separator: ", ")
        observe(
            .note(
                "\(spec.arch.rawValue) on \(spec.data): \(split.images.classNames.count) classes, \(counts), "
                    + "\(split.images.channels)x\(spec.imageSize)x\(spec.imageSize)"))
        split.warnings.prefix(5).forEach { observe(.note("warning: \($0)")) }
        let result = try run(store: store, commandLine: commandLine) { event in
            switch event {
            case let .batch(epoch, batch, batches, loss):
                observe(
                    .progress(
                        (Double(epoch) + Double(batch) / Double(batches)) / Double(options.epochs),
                        String(format: "epoch %d/%d batch %d/%d loss %.4f", epoch + 1, options.epochs, batch, batches, loss)))
            case let .epoch(r, improved):
                observe(
                    .note(
                        String(
                            format:
                                "epoch %2d  train loss %.4f acc %.3f | val loss %.4f acc %.3f macro-F1 %.3f bal-acc %.3f  %.1fs%@",
                            r.epoch + 1, r.trainLoss, r.trainAccuracy, r.valLoss, r.valAccuracy, r.valMacroF1,
                            r.valBalancedAccuracy, r.seconds, improved ? "  *" : "")))
            case let .earlyStop(epoch, best):
                observe(
                    .note(
                        "early stop after epoch \(epoch + 1): no better \(options.monitor.rawValue) since epoch \(best + 1)"))
            }
        }
        observe(.endProgress)
        return result
    }

    /// The report's title: the split, the best epoch and the training time.
    public func title(of result: ClassifierRunResult) -> String {
        "test split, best epoch \(result.training.history.bestEpoch + 1), trained in \(formatDuration(result.summary.seconds))"
    }

    /// What was written, and the privacy spent (DP-SGD runs).
    public func closingNotes(of result: ClassifierRunResult) -> [String] {
        var notes = ["wrote \(output.path)/model.safetensors, history.json, metrics.json, manifest.jsonl, reference.json"]
        let history = result.training.history
        if let epsilon = history.privacyEpsilon, let delta = history.privacyDelta {
            notes.append(
                String(
                    format: "differential privacy: epsilon %.3f at delta %.3g (noise multiplier %.4g, clip %.3g)",
                    epsilon, delta, history.noiseMultiplier ?? 0, spec.training.privacy?.maxGradNorm ?? 1))
        }
        return notes
    }
}

extension EvaluationReport {
    /// A per-class table under `title` (precision, recall, F1, AUC, support), the overall scores,
    /// the majority baseline's when given, and the confusion matrix.
    public func table(title: String, baseline: EvaluationReport? = nil) -> String {
        func f(_ x: Double?) -> String { x.map { String(format: "%.3f", $0) } ?? "  -  " }
        let width = max(10, (classNames.map(\.count).max() ?? 0) + 2)
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
        var lines = [title, pad("class", width) + "precision  recall      f1     auc  support"]
        for name in classNames {
            guard let c = perClass[name] else { continue }
            lines.append(
                pad(name, width) + "    \(f(c.precision))   \(f(c.recall))   \(f(c.f1))   \(f(c.auc))  "
                    + String(format: "%7d", c.support))
        }
        lines.append(
            "accuracy \(f(accuracy))  balanced accuracy \(f(balancedAccuracy))  macro-F1 \(f(macroF1))  "
                + "macro AUC \(f(macroAUC))  loss \(f(loss))  min recall \(f(minimumRecall))")
        if let b = baseline {
            lines.append(
                "majority baseline: accuracy \(f(b.accuracy))  balanced accuracy \(f(b.balancedAccuracy))  "
                    + "macro-F1 \(f(b.macroF1))")
        }
        lines.append("confusion matrix (rows true, columns predicted): \(confusionMatrix)")
        return lines.joined(separator: "\n")
    }
}

/// `medsynth evaluate`: a trained classifier scored on the test split of `data` (rebuilt from the
/// split the model records, with its class selection, caps off) or on an explicit `test` set.
public enum ClassifierEvaluation {
    /// The report and its title (the images, the architecture, the model).
    public static func run(model: String, data: String?, test: String?) throws -> (report: EvaluationReport, title: String) {
        let predictor = try Predictor(checkpoint: URL(fileURLWithPath: model))
        let m = predictor.metadata
        // The model's own class selection when it was trained with one (caps only on its training data).
        let selection = m.data?.selection
        var testSelection = selection
        testSelection?.caps = []
        let options =
            selection == nil
            ? LoadOptions(preprocessing: m.preprocessing, classes: m.classNames)
            : LoadOptions(preprocessing: m.preprocessing, selection: selection)
        let testOptions = selection == nil ? options : LoadOptions(preprocessing: m.preprocessing, selection: testSelection)
        let set: LabeledImages
        if let test {
            set = try loadDataset(at: test, options: testOptions).images
        } else {
            guard let provenance = m.data, let data else { throw OptionRefusal("\(model) does not record its split; use --test") }
            let explicitTest = try provenance.testPath.map { try loadDataset(at: $0, options: testOptions) }
            let split = try makeSplits(
                loadDataset(at: data, options: options), ratio: provenance.splitRatio,
                seed: provenance.splitSeed, explicitTest: explicitTest)
            set = split.subset(.test)
        }
        return (try predictor.evaluate(set), "\(set.count) test images, \(m.config.arch.rawValue) \(model)")
    }
}
