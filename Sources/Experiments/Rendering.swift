import Foundation

extension ExperimentReport {
    /// The paper's table layout (train accuracy, validation accuracy, precision and recall per
    /// class, number of training images) for every arm, then the balanced metrics.
    public func markdown() -> String {
        var s = "# MedSynth experiment: \(URL(fileURLWithPath: dataset).lastPathComponent)\n\n"
        s += "Classifier `\(arch)` at \(imageSize) px, seeds \(seeds.map(String.init).joined(separator: ", ")); "
        s += "test set: \(testSource). Values are mean ± standard deviation over seeds.\n\n"
        if !alarms.isEmpty {
            s += "## ALARMS\n\n" + alarms.map { "- **\($0)**" }.joined(separator: "\n") + "\n\n"
        }
        s += "## Paper layout (Tables I and II of Ismail et al. 2023)\n\n"
        let header = ["Arm", "Train acc", "Val acc"] + classNames.flatMap { ["Precision \($0)", "Recall \($0)"] } + ["Images (real + synthetic)"]
        s += "| " + header.joined(separator: " | ") + " |\n|" + String(repeating: "---|", count: header.count) + "\n"
        for arm in arms {
            let images = classNames.map { c in arm.trainImages[c].map { "\($0.real)+\($0.synthetic)" } ?? "0" }.joined(separator: ", ")
            let cells = [arm.name, arm.trainAccuracy.text, arm.valAccuracy.text]
                + classNames.flatMap { c in [arm.test.perClass[c]?.precision.text ?? "n/a", arm.test.perClass[c]?.recall.text ?? "n/a"] }
                + [images]
            s += "| " + cells.joined(separator: " | ") + " |\n"
        }
        s += "\n## Balanced metrics on the test set\n\n"
        s += "| Arm | Accuracy | Balanced accuracy | Macro-F1 | Macro AUC | Δ balanced acc. vs original [95% CI] |\n|---|---|---|---|---|---|\n"
        s += "| majority baseline | \(majorityBaseline.accuracy.text) | \(majorityBaseline.balancedAccuracy.text) | \(majorityBaseline.macroF1.text) | n/a | |\n"
        for arm in arms {
            s += "| \(arm.name) | \(arm.test.accuracy.text) | \(arm.test.balancedAccuracy.text) | \(arm.test.macroF1.text) | "
            s += "\(arm.test.macroAUC?.text ?? "n/a") | \(arm.balancedAccuracyVsOriginal?.text ?? "") |\n"
        }
        if !minorityClasses.isEmpty {
            s += "\n## Minority recall vs original [95% CI]\n\n| Arm | " + minorityClasses.joined(separator: " | ") + " |\n|---|"
            s += String(repeating: "---|", count: minorityClasses.count) + "\n"
            for arm in arms where arm.name != "original" {
                s += "| \(arm.name) | " + minorityClasses.map { arm.minorityRecallVsOriginal?[$0]?.text ?? "n/a" }.joined(separator: " | ") + " |\n"
            }
        }
        s += "\n## Verdict\n\n" + verdict().map { "- \($0)" }.joined(separator: "\n") + "\n"
        return s
    }

    /// Plain statements of what each arm gained or lost against `original` (honest: no gain is said as such).
    public func verdict() -> [String] {
        arms.filter { $0.name != "original" }.map { arm in
            guard let d = arm.balancedAccuracyVsOriginal else { return "\(arm.name): no comparison available" }
            let word = d.isSignificant ? (d.mean > 0 ? "improves" : "worsens") : "does not change (interval includes 0)"
            return "\(arm.name) \(word) balanced accuracy against original: \(d.text)"
        }
    }

    /// One self-contained page: tables, training curves, confusion heat maps, per-class recall
    /// bars per arm, GAN sample grids (embedded as base64 PNG; no network needed).
    public func html() -> String {
        func esc(_ s: String) -> String { SVGChart.escape(s) }
        var b = """
        <!doctype html><html><head><meta charset="utf-8"><title>MedSynth experiment</title>
        <style>body{font-family:sans-serif;max-width:1200px;margin:20px auto;color:#222}table{border-collapse:collapse;margin:8px 0}
        td,th{border:1px solid #ccc;padding:3px 7px;font-size:13px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
        .alarm{background:#fdd;border:2px solid #c00;padding:8px;font-weight:bold}.row{display:flex;flex-wrap:wrap;gap:12px}
        .card{border:1px solid #ddd;padding:6px}img.grid{image-rendering:pixelated;width:240px}</style></head><body>
        <h1>MedSynth experiment: \(esc(URL(fileURLWithPath: dataset).lastPathComponent))</h1>
        <p>Classifier <b>\(esc(arch))</b> at \(imageSize) px; seeds \(seeds.map(String.init).joined(separator: ", ")); test set: \(esc(testSource)).
        Mean ± standard deviation over seeds. Run time \(String(format: "%.0f", seconds)) s.</p>
        """
        for a in alarms { b += "<div class='alarm'>ALARM: \(esc(a))</div>" }
        b += "<h2>Verdict</h2><ul>" + verdict().map { "<li>\(esc($0))</li>" }.joined() + "</ul>"
        b += markdownTables()
        b += "<h2>Per-class recall by arm</h2>"
        b += SVGChart.groupedBars(title: "Test recall per class (mean over seeds, bars = ±1 sd)", categories: classNames,
                                  series: arms.map { arm in (arm.name, classNames.map { arm.test.perClass[$0]?.recall.mean ?? 0 },
                                                             classNames.map { arm.test.perClass[$0]?.recall.std ?? 0 }) })
        b += "<h2>Confusion matrices (test, summed over seeds)</h2><div class='row'>"
        for arm in arms { b += "<div class='card'>" + SVGChart.heatmap(title: arm.name, matrix: arm.confusionMatrix, labels: classNames) + "</div>" }
        b += "</div><h2>Training curves (validation macro-F1 and training loss, each seed)</h2><div class='row'>"
        for arm in arms {
            let f1 = arm.curves.enumerated().map { ("seed \($0.offset) val F1", $0.element.map { (Double($0.epoch), $0.valMacroF1) }) }
            let loss = arm.curves.enumerated().map { ("seed \($0.offset) train loss", $0.element.map { (Double($0.epoch), $0.trainLoss) }) }
            b += "<div class='card'>" + SVGChart.lines(title: "\(arm.name): val macro-F1", series: f1, xLabel: "epoch", yLabel: "macro-F1",
                                                      yRange: 0...1) + SVGChart.lines(title: "\(arm.name): train loss", series: loss,
                                                                                       xLabel: "epoch", yLabel: "loss") + "</div>"
        }
        b += "</div>"
        let grids = arms.flatMap { arm in arm.gridPaths.map { (arm.name, $0) } }
        if !grids.isEmpty {
            b += "<h2>GAN sample grids</h2><div class='row'>"
            for (name, path) in grids {
                guard let data = FileManager.default.contents(atPath: path) else { continue }
                b += "<div class='card'><div>\(esc(name)): \(esc(URL(fileURLWithPath: path).deletingLastPathComponent().lastPathComponent))</div>"
                b += "<img class='grid' src='data:image/png;base64,\(data.base64EncodedString())'></div>"
            }
            b += "</div>"
        }
        return b + "</body></html>"
    }

    func markdownTables() -> String {
        var t = "<h2>Paper layout</h2><table><tr><th>Arm</th><th>Train acc</th><th>Val acc</th>"
        t += classNames.map { "<th>Precision \(SVGChart.escape($0))</th><th>Recall \(SVGChart.escape($0))</th>" }.joined()
        t += "<th>Images (real+synthetic)</th></tr>"
        for arm in arms {
            t += "<tr><td>\(arm.name)</td><td>\(arm.trainAccuracy.text)</td><td>\(arm.valAccuracy.text)</td>"
            t += classNames.map { c in "<td>\(arm.test.perClass[c]?.precision.text ?? "n/a")</td><td>\(arm.test.perClass[c]?.recall.text ?? "n/a")</td>" }.joined()
            t += "<td>" + classNames.map { c in arm.trainImages[c].map { "\($0.real)+\($0.synthetic)" } ?? "0" }.joined(separator: ", ") + "</td></tr>"
        }
        t += "</table><h2>Balanced metrics</h2><table><tr><th>Arm</th><th>Accuracy</th><th>Balanced acc.</th><th>Macro-F1</th><th>Macro AUC</th><th>Δ bal. acc. vs original [95% CI]</th>"
        t += minorityClasses.map { "<th>Δ recall \(SVGChart.escape($0))</th>" }.joined() + "<th>Train s/seed</th></tr>"
        t += "<tr><td>majority baseline</td><td>\(majorityBaseline.accuracy.text)</td><td>\(majorityBaseline.balancedAccuracy.text)</td><td>\(majorityBaseline.macroF1.text)</td><td>n/a</td><td></td>"
        t += minorityClasses.map { _ in "<td></td>" }.joined() + "<td></td></tr>"
        for arm in arms {
            t += "<tr><td>\(arm.name)</td><td>\(arm.test.accuracy.text)</td><td>\(arm.test.balancedAccuracy.text)</td><td>\(arm.test.macroF1.text)</td>"
            t += "<td>\(arm.test.macroAUC?.text ?? "n/a")</td><td>\(arm.balancedAccuracyVsOriginal?.text ?? "")</td>"
            t += minorityClasses.map { "<td>\(arm.minorityRecallVsOriginal?[$0]?.text ?? "")</td>" }.joined()
            t += "<td>\(String(format: "%.1f", arm.trainSeconds.mean))</td></tr>"
        }
        return t + "</table>"
    }
}
