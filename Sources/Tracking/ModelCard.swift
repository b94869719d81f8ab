import Foundation

/// Markdown model cards, written from what the run recorded (nothing is typed in by hand).
extension RunStore {
    /// The model card of one registered version: lineage, data and class balance, metrics with
    /// their spread over the run, alarms and drift events, privacy, intended use and limits.
    ///
    /// Reads the run's configuration keys `data` (dataset path) and `privacyEpsilon` (a number),
    /// or the metric `privacy.epsilon`, when present.
    public func modelCard(name: String, version: Int) throws -> String {
        let model = try model(name: name, version: version)
        try verifyArtifact(model)
        let run = try run(model.runID)
        let config = (try? JSONSerialization.jsonObject(with: Data(run.config.utf8))) as? [String: Any] ?? [:]
        let reference = try model.reference.map { try JSONDecoder().decode(ReferenceStats.self, from: Data($0.utf8)) }
        let aliases = try aliases(name: name).filter { $0.value == version }.keys.sorted()
        var lines = ["# Model card: \(model.label)" + (aliases.isEmpty ? "" : " (\(aliases.joined(separator: ", ")))"), ""]

        lines += [
            "## Lineage", "",
            "- Run: `\(run.id)` (\(run.kind.rawValue), \(run.status.rawValue)), started \(iso(run.started))"
                + (run.ended.map { ", ended \(iso($0))" } ?? ""),
            "- Command: `\(run.commandLine)`",
            "- Code: "
                + (run.codeCommit.map { "`\($0)`" + (run.codeDirty == true ? " with uncommitted changes" : "") }
                    ?? "unknown (not a git work tree)"),
            "- Seed: " + (run.seed.map { "\(UInt64(bitPattern: $0))" } ?? "not recorded"),
            "- Weights: `\(model.artifactPath)` (sha256 `\(model.artifactSHA256)`)", "",
        ]

        lines += [
            "## Data", "",
            "- Dataset: " + ((config["data"] as? String).map { "`\($0)`" } ?? "not recorded"),
            "- Data manifest sha256: " + (model.dataManifestHash.map { "`\($0)`" } ?? "not recorded"),
        ]
        if let reference {
            lines += ["- Training images: \(reference.count)", "", "| Class | Share |", "|---|---|"]
            for (className, share) in zip(reference.classNames, reference.classFrequencies) {
                lines.append("| \(className) | \(String(format: "%.1f%%", share * 100)) |")
            }
        } else {
            lines.append("- Class balance: not recorded (no `reference-stats` artifact); drift monitoring is off")
        }
        lines.append("")

        lines += ["## Metrics", ""]
        let points = Dictionary(grouping: try metrics(of: run.id), by: \.name)
        if points.isEmpty {
            lines += ["No metrics recorded.", ""]
        } else {
            lines += [
                "Spread is over the steps the run logged (last value first).", "",
                "| Metric | Last | Mean ± SD | Min | Max | Points |", "|---|---|---|---|---|---|",
            ]
            for (metric, series) in points.sorted(by: { $0.key < $1.key }) {
                let values = series.map(\.value)
                let mean = values.reduce(0, +) / Double(values.count)
                // NOTE: sample standard deviation (n - 1); zero for a single point.
                let sd =
                    values.count > 1
                    ? (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)).squareRoot() : 0
                lines.append(
                    "| \(metric) | \(fmt(values.last!)) | \(fmt(mean)) ± \(fmt(sd)) | \(fmt(values.min()!)) "
                        + "| \(fmt(values.max()!)) | \(values.count) |")
            }
            lines.append("")
        }

        lines += ["## Alarms and drift", ""]
        let events = try events(runID: run.id) + events(model: model.label)
        lines +=
            events.isEmpty
            ? ["None recorded."]
            : events.map { "- \(iso($0.time)) \($0.kind): \($0.message)" }
        lines.append("")

        lines += ["## Privacy", ""]
        let epsilon = (config["privacyEpsilon"] as? Double) ?? points["privacy.epsilon"]?.last?.value
        lines.append(
            epsilon.map { "Trained with differential privacy, epsilon = \(fmt($0))." }
                ?? "No differential privacy: the weights may memorise individual training images.")
        lines.append("")

        lines += [
            "## Intended use and limits", "",
            "- Research and teaching on MedMNIST-style images: not a medical device, not for diagnosis.",
            "- Inputs must look like the training data (same modality, size after resizing, channels);"
                + " anything else is classified anyway, with no warning beyond the drift monitor.",
            "- Probabilities are not calibrated; small test sets make every metric above uncertain.",
            "- Class balance in use may differ from the shares above; watch `/v1/monitor`.", "",
        ]
        return lines.joined(separator: "\n")
    }
}

func fmt(_ value: Double) -> String { String(format: "%.4g", value) }

func iso(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    return formatter.string(from: date)
}
