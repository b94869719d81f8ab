import Evaluation
import Foundation

extension ExperimentReport {
    /// One line on what every difference in the report rests on.
    var restsOn: String {
        "Every difference rests on \(seeds.count) seed(s) and \(testImages) test images. \(statistics)"
    }

    /// The report as Markdown: what helped, the paper's table layout, balanced metrics with the
    /// tuned decisions beside the default, differences against `original`, the synthetic-share curve.
    public func markdown() -> String {
        var s = "# MedSynth experiment: \(URL(fileURLWithPath: dataset).lastPathComponent)\n\n"
        let precision = settings["conv_precision"].map { ", convolutions in \($0) (MEDSYNTH_CONV_PRECISION)" } ?? ""
        s += "Classifier `\(arch)` at \(imageSize) px\(precision), seeds \(seeds.map(String.init).joined(separator: ", ")); "
        s += "test set: \(testSource). Values are mean ± standard deviation over seeds. \(restsOn)\n\n"
        if !alarms.isEmpty {
            s += "## ALARMS\n\n" + alarms.map { "- **\($0)**" }.joined(separator: "\n") + "\n\n"
        }
        if let w = whatHelped {
            s += "## What helped\n\n\(w.summary)\n\nChosen by \(w.selection).\n\n"
            s +=
                "| Statistic | \(w.bestGenerative) − \(w.bestBaseline) [Holm-corrected CI] | Level | Verdict |\n|---|---|---|---|\n"
            s +=
                "| balanced accuracy | \(w.balancedAccuracy.text) | \(pct(w.balancedAccuracy.level)) | \(w.balancedAccuracy.verdict) |\n"
            for name in minorityClasses {
                if let c = w.minorityRecall[name] { s += "| recall \(name) | \(c.text) | \(pct(c.level)) | \(c.verdict) |\n" }
            }
            if let a = w.acceptance, !a.isEmpty {
                s += "\nFilter acceptance of \(w.bestGenerative) (all seeds): "
                s +=
                    a.keys.sorted().map {
                        String(format: "%@ %.0f%% (%d of %d kept)", $0, a[$0]!.rate * 100, a[$0]!.kept, a[$0]!.candidates)
                    }
                    .joined(separator: ", ") + "\n"
            }
            s += "\n"
        }
        if !generatorAudits.isEmpty {
            s += "## Generators (seed \(seeds[0]), 200 images per class, random-CNN features)\n\n"
            s += "| Generator | Class | KID | FD | Precision | Recall | Density | Coverage | Diversity | Flagged copies |\n"
            s += "|---|---|---|---|---|---|---|---|---|---|\n"
            for a in generatorAudits {
                s += String(
                    format: "| %@ | %@ | %.4f ± %.4f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %d |\n", a.generator,
                    a.className,
                    a.kid, a.kidStd, a.frechetDistance, a.precision, a.recall, a.density, a.coverage, a.diversity,
                    a.flaggedCopies)
            }
            s += "\n"
        }
        s += "## Paper layout (Tables I and II of Ismail et al. 2023)\n\n"
        let header =
            ["Arm", "Train acc", "Val acc"] + classNames.flatMap { ["Precision \($0)", "Recall \($0)"] } + [
                "Images (real + synthetic)"
            ]
        s += "| " + header.joined(separator: " | ") + " |\n|" + String(repeating: "---|", count: header.count) + "\n"
        for arm in arms {
            let cells =
                [arm.name, arm.trainAccuracy.text, arm.valAccuracy.text]
                + classNames.flatMap { c in
                    [arm.test.perClass[c]?.precision.text ?? "n/a", arm.test.perClass[c]?.recall.text ?? "n/a"]
                }
                + [imageCounts(arm)]
            s += "| " + cells.joined(separator: " | ") + " |\n"
        }
        s += "\n## Balanced metrics on the test set\n\n"
        s +=
            "| Arm | Accuracy | Balanced accuracy | Macro-F1 | Macro AUC | Balanced acc., tuned decision | Δ balanced acc. vs original [Holm CI] | Verdict |\n"
        s += "|---|---|---|---|---|---|---|---|\n"
        s +=
            "| majority baseline | \(majorityBaseline.accuracy.text) | \(majorityBaseline.balancedAccuracy.text) | \(majorityBaseline.macroF1.text) | n/a | | | |\n"
        for arm in arms {
            s += "| \(arm.name) | \(arm.test.accuracy.text) | \(arm.test.balancedAccuracy.text) | \(arm.test.macroF1.text) | "
            s += "\(arm.test.macroAUC?.text ?? "n/a") | \(arm.tunedTest.balancedAccuracy.text) | "
            s += "\(arm.balancedAccuracyVsOriginal?.text ?? "") | \(arm.balancedAccuracyVsOriginal?.verdict ?? "") |\n"
        }
        if !minorityClasses.isEmpty {
            for tuned in [false, true] {
                s +=
                    "\n## Minority recall vs original, \(tuned ? "tuned decision (chosen on validation)" : "default decision") [Holm CI]\n\n"
                s += "| Arm | " + minorityClasses.joined(separator: " | ") + " |\n|---|"
                s += String(repeating: "---|", count: minorityClasses.count) + "\n"
                for arm in arms where arm.name != "original" {
                    let d = tuned ? arm.tunedMinorityRecallVsOriginal : arm.minorityRecallVsOriginal
                    s +=
                        "| \(arm.name) | "
                        + minorityClasses.map { d?[$0].map { "\($0.text) \($0.verdict)" } ?? "n/a" }.joined(separator: " | ")
                        + " |\n"
                }
            }
        }
        if !ratioCurve.isEmpty {
            s +=
                "\n## Synthetic share\n\n| Arm | Max synthetic per real | Balanced accuracy | "
                + minorityClasses.map { "Recall \($0)" }.joined(separator: " | ")
            s += " |\n|---|---|---|" + String(repeating: "---|", count: minorityClasses.count) + "\n"
            for p in ratioCurve {
                s += "| \(p.arm) | \(formatRatio(p.ratio)) | \(p.balancedAccuracy.text) | "
                s += minorityClasses.map { p.minorityRecall[$0]?.text ?? "n/a" }.joined(separator: " | ") + " |\n"
            }
        }
        let filtered = arms.filter { $0.acceptance != nil }
        if !filtered.isEmpty {
            s +=
                "\n## Filter acceptance (all seeds)\n\n| Arm | Class | Candidates | Confident | Near-copies | Kept | Acceptance |\n|---|---|---|---|---|---|---|\n"
            for arm in filtered {
                for (name, a) in arm.acceptance!.sorted(by: { $0.key < $1.key }) {
                    s += String(
                        format: "| %@ | %@ | %d | %d | %d | %d | %.0f%% |\n", arm.name, name, a.candidates, a.confident,
                        a.nearCopies, a.kept, a.rate * 100)
                }
            }
        }
        s += "\n## Verdict\n\n" + verdict().map { "- \($0)" }.joined(separator: "\n") + "\n"
        return s
    }

    func pct(_ level: Double) -> String { String(format: "%.1f%%", level * 100) }

    func imageCounts(_ arm: ArmReport) -> String {
        classNames.map { c in arm.trainImages[c].map { "\($0.real)+\($0.synthetic)" } ?? "0" }.joined(separator: ", ")
    }

    /// Plain statements of what each arm gained or lost against `original`, from the corrected
    /// intervals only (no gain is said as such).
    public func verdict() -> [String] {
        arms.filter { $0.name != "original" }.map { arm in
            guard let d = arm.balancedAccuracyVsOriginal else { return "\(arm.name): no comparison available" }
            let word =
                d.verdict == "helps" ? "improves" : (d.verdict == "hurts" ? "worsens" : "shows no detectable difference in")
            var line =
                "\(arm.name) \(word) balanced accuracy against original: \(d.text) (Holm-corrected \(pct(d.level)) interval)"
            let recall = minorityClasses.compactMap { c in
                arm.minorityRecallVsOriginal?[c].map { "\(c) recall \($0.verdict) (\($0.text))" }
            }
            if !recall.isEmpty { line += "; " + recall.joined(separator: ", ") }
            return line
        }
    }

    /// One self-contained page: what helped (table and chart), tables, forest plots of the
    /// corrected differences, training curves, confusion heat maps, per-class recall bars,
    /// generator sample grids (embedded as base64 PNG; nothing is loaded from elsewhere).
    public func html() -> String {
        func esc(_ s: String) -> String { escapeHTML(s) }
        var b = """
            <!doctype html><html><head><meta charset="utf-8"><title>MedSynth experiment</title>
            <meta http-equiv="Content-Security-Policy" content="\(PaperReport.contentSecurityPolicy)">
            <style>body{font-family:sans-serif;max-width:1200px;margin:20px auto;color:#222}table{border-collapse:collapse;margin:8px 0}
            td,th{border:1px solid #ccc;padding:3px 7px;font-size:13px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
            .alarm{background:#fdd;border:2px solid #c00;padding:8px;font-weight:bold}.row{display:flex;flex-wrap:wrap;gap:12px}
            .card{border:1px solid #ddd;padding:6px}img.grid{image-rendering:pixelated;width:240px}.helped{background:#eef6ee;padding:8px}</style></head><body>
            <h1>MedSynth experiment: \(esc(URL(fileURLWithPath: dataset).lastPathComponent))</h1>
            <p>Classifier <b>\(esc(arch))</b> at \(imageSize) px; seeds \(seeds.map(String.init).joined(separator: ", ")); test set: \(esc(testSource)).
            Mean ± standard deviation over seeds. Run time \(String(format: "%.0f", seconds)) s. \(esc(restsOn))</p>
            """
        for a in alarms { b += "<div class='alarm'>ALARM: \(esc(a))</div>" }
        if let w = whatHelped {
            b +=
                "<h2 id='what-helped'>What helped</h2><div class='helped'><p>\(esc(w.summary))</p><p>Chosen by \(esc(w.selection)).</p>"
            b +=
                "<table><tr><th>Statistic</th><th>\(esc(w.bestGenerative)) − \(esc(w.bestBaseline)) [Holm CI]</th><th>Level</th><th>Verdict</th></tr>"
            var rows = [("balanced accuracy", w.balancedAccuracy)]
            for name in minorityClasses { if let c = w.minorityRecall[name] { rows.append(("recall \(name)", c)) } }
            for (name, c) in rows {
                b += "<tr><td>\(esc(name))</td><td>\(c.text)</td><td>\(pct(c.level))</td><td>\(esc(c.verdict))</td></tr>"
            }
            b += "</table>"
            b += SVGChart.intervals(
                title: "\(w.bestGenerative) minus \(w.bestBaseline) (Holm-corrected intervals)",
                rows: rows.map { ($0.0, $0.1.mean, $0.1.ci[0], $0.1.ci[1]) }, xLabel: "difference")
            b += "</div>"
        }
        if !generatorAudits.isEmpty {
            b +=
                "<h2>Generators (seed \(seeds[0]))</h2><table><tr><th>Generator</th><th>Class</th><th>KID</th><th>FD</th><th>Precision</th>"
            b += "<th>Recall</th><th>Density</th><th>Coverage</th><th>Diversity</th><th>Flagged copies</th></tr>"
            for a in generatorAudits {
                b += String(
                    format:
                        "<tr><td>%@</td><td>%@</td><td>%.4f ± %.4f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%d</td></tr>",
                    esc(a.generator), esc(a.className), a.kid, a.kidStd, a.frechetDistance, a.precision, a.recall, a.density,
                    a.coverage, a.diversity, a.flaggedCopies)
            }
            b += "</table>"
        }
        b += "<h2>Verdict</h2><ul>" + verdict().map { "<li>\(esc($0))</li>" }.joined() + "</ul>"
        let compared = arms.filter { $0.balancedAccuracyVsOriginal != nil }
        if !compared.isEmpty {
            b += "<h2>Differences against original (Holm-corrected intervals)</h2><div class='row'>"
            b +=
                "<div class='card'>"
                + SVGChart.intervals(
                    title: "Δ balanced accuracy, default decision",
                    rows: compared.map {
                        (
                            $0.name, $0.balancedAccuracyVsOriginal!.mean,
                            $0.balancedAccuracyVsOriginal!.ci[0], $0.balancedAccuracyVsOriginal!.ci[1]
                        )
                    },
                    xLabel: "difference from original") + "</div>"
            for name in minorityClasses {
                let rows = compared.compactMap { a in
                    a.minorityRecallVsOriginal?[name].map { (a.name, $0.mean, $0.ci[0], $0.ci[1]) }
                }
                b +=
                    "<div class='card'>"
                    + SVGChart.intervals(
                        title: "Δ recall \(name), default decision", rows: rows,
                        xLabel: "difference from original") + "</div>"
            }
            b += "</div>"
        }
        b += tables()
        if !ratioCurve.isEmpty {
            var series = [("balanced accuracy", ratioCurve.map { ($0.ratio, $0.balancedAccuracy.mean) })]
            for name in minorityClasses {
                series.append(("recall \(name)", ratioCurve.map { ($0.ratio, $0.minorityRecall[name]?.mean ?? 0) }))
            }
            b +=
                "<h2>Synthetic share</h2>"
                + SVGChart.lines(
                    title: "Test metrics by synthetic images per real image (cap)", series: series,
                    xLabel: "max synthetic per real", yLabel: "mean over seeds", yRange: 0...1)
        }
        b += "<h2>Per-class recall by arm</h2>"
        b += SVGChart.groupedBars(
            title: "Test recall per class (mean over seeds, bars = ±1 sd)", categories: classNames,
            series: arms.map { arm in
                (
                    arm.name, classNames.map { arm.test.perClass[$0]?.recall.mean ?? 0 },
                    classNames.map { arm.test.perClass[$0]?.recall.std ?? 0 }
                )
            })
        b += "<h2>Confusion matrices (test, summed over seeds)</h2><div class='row'>"
        for arm in arms {
            b +=
                "<div class='card'>" + SVGChart.heatmap(title: arm.name, matrix: arm.confusionMatrix, labels: classNames)
                + "</div>"
        }
        b += "</div><h2>Training curves (validation macro-F1 and training loss, each seed)</h2><div class='row'>"
        for arm in arms {
            let f1 = arm.curves.enumerated().map {
                ("seed \($0.offset) val F1", $0.element.map { (Double($0.epoch), $0.valMacroF1) })
            }
            let loss = arm.curves.enumerated().map {
                ("seed \($0.offset) train loss", $0.element.map { (Double($0.epoch), $0.trainLoss) })
            }
            b +=
                "<div class='card'>"
                + SVGChart.lines(
                    title: "\(arm.name): val macro-F1", series: f1, xLabel: "epoch", yLabel: "macro-F1",
                    yRange: 0...1)
                + SVGChart.lines(
                    title: "\(arm.name): train loss", series: loss,
                    xLabel: "epoch", yLabel: "loss") + "</div>"
        }
        b += "</div>"
        var seen = Set<String>()
        let grids = arms.flatMap { arm in arm.gridPaths.map { (arm.name, $0) } }.filter { seen.insert($0.1).inserted }
        if !grids.isEmpty {
            b += "<h2>Generator sample grids (seed \(seeds[0]))</h2><div class='row'>"
            for (_, path) in grids {
                guard let data = FileManager.default.contents(atPath: path) else { continue }
                b +=
                    "<div class='card'><div>\(esc(URL(fileURLWithPath: path).deletingLastPathComponent().lastPathComponent))</div>"
                b += "<img class='grid' alt='generated samples' src='data:image/png;base64,\(data.base64EncodedString())'></div>"
            }
            b += "</div>"
        }
        return b + "</body></html>"
    }

    func tables() -> String {
        func esc(_ s: String) -> String { escapeHTML(s) }
        var t = "<h2>Paper layout</h2><table><tr><th>Arm</th><th>Train acc</th><th>Val acc</th>"
        t += classNames.map { "<th>Precision \(esc($0))</th><th>Recall \(esc($0))</th>" }.joined()
        t += "<th>Images (real+synthetic)</th></tr>"
        for arm in arms {
            t += "<tr><td>\(esc(arm.name))</td><td>\(arm.trainAccuracy.text)</td><td>\(arm.valAccuracy.text)</td>"
            t += classNames.map { c in
                "<td>\(arm.test.perClass[c]?.precision.text ?? "n/a")</td><td>\(arm.test.perClass[c]?.recall.text ?? "n/a")</td>"
            }.joined()
            t += "<td>\(esc(imageCounts(arm)))</td></tr>"
        }
        t +=
            "</table><h2>Balanced metrics</h2><table><tr><th>Arm</th><th>Accuracy</th><th>Balanced acc.</th><th>Macro-F1</th><th>Macro AUC</th>"
        t += "<th>Balanced acc., tuned</th><th>Δ bal. acc. vs original [Holm CI]</th>"
        t +=
            minorityClasses.map { "<th>Δ recall \(esc($0))</th>" }.joined()
            + "<th>Δ bal. acc., tuned</th><th>Train s/seed</th><th>Synthesis s/seed</th></tr>"
        t +=
            "<tr><td>majority baseline</td><td>\(majorityBaseline.accuracy.text)</td><td>\(majorityBaseline.balancedAccuracy.text)</td>"
        t +=
            "<td>\(majorityBaseline.macroF1.text)</td><td>n/a</td><td></td><td></td>"
            + minorityClasses.map { _ in "<td></td>" }.joined() + "<td></td><td></td><td></td></tr>"
        for arm in arms {
            t +=
                "<tr><td>\(esc(arm.name))</td><td>\(arm.test.accuracy.text)</td><td>\(arm.test.balancedAccuracy.text)</td><td>\(arm.test.macroF1.text)</td>"
            t += "<td>\(arm.test.macroAUC?.text ?? "n/a")</td><td>\(arm.tunedTest.balancedAccuracy.text)</td>"
            t += "<td>\(arm.balancedAccuracyVsOriginal.map { "\($0.text) \($0.verdict)" } ?? "")</td>"
            t += minorityClasses.map { "<td>\(arm.minorityRecallVsOriginal?[$0].map { "\($0.text) \($0.verdict)" } ?? "")</td>" }
                .joined()
            t += "<td>\(arm.tunedBalancedAccuracyVsOriginal.map { "\($0.text) \($0.verdict)" } ?? "")</td>"
            t +=
                "<td>\(String(format: "%.1f", arm.trainSeconds.mean))</td><td>\(arm.synthesisSeconds.map { String(format: "%.1f", $0.mean) } ?? "")</td></tr>"
        }
        t += "</table>"
        let filtered = arms.filter { $0.acceptance != nil }
        if !filtered.isEmpty {
            t +=
                "<h2>Filter acceptance (all seeds)</h2><table><tr><th>Arm</th><th>Class</th><th>Candidates</th><th>Confident</th>"
            t += "<th>Near-copies</th><th>Kept</th><th>Acceptance</th></tr>"
            for arm in filtered {
                for (name, a) in arm.acceptance!.sorted(by: { $0.key < $1.key }) {
                    t += String(
                        format: "<tr><td>%@</td><td>%@</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%.0f%%</td></tr>",
                        esc(arm.name), esc(name), a.candidates, a.confident, a.nearCopies, a.kept, a.rate * 100)
                }
            }
            t += "</table>"
        }
        return t
    }
}
