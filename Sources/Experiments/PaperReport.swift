import AtomicIO
import Classification
import Datasets
import Evaluation
import Foundation

/// One classifier run of the replica ("Original Images" or "Synthetic Images").
public struct PaperRun: Codable, Sendable {
    /// Training images (real, or real + synthetic).
    public var trainImages: Int
    /// The last epoch's running training accuracy (dropout on, as Keras reports it).
    public var trainAccuracy: Double
    /// The last epoch's validation accuracy.
    public var valAccuracy: Double
    /// The last epoch's model on the held-out test part: precision, recall, confusion matrix.
    public var test: EvaluationReport
    /// Loss and accuracy per epoch.
    public var curves: [EpochRecord]
    public var seconds: Double
}

/// A Fig. 5-style strip: 8 fixed-noise samples of one class's generator at successive points of its training.
public struct SampleStrip: Codable, Sendable {
    public var className: String
    /// The GAN step of each row, top to bottom.
    public var steps: [Int]
    /// The strip as PNG, base64.
    public var pngBase64: String

    public init(className: String, steps: [Int], png: [UInt8]) {
        self.className = className; self.steps = steps; pngBase64 = Data(png).base64EncodedString()
    }
}

/// Everything the replica measured on one dataset.
public struct PaperResult: Codable, Sendable {
    public var dataset: PaperDataset
    public var classNames: [String]
    /// The class selection as applied (mapping, caps, seed).
    public var selection: String
    /// Images per split and class.
    public var splitCounts: [String: [String: Int]]
    public var syntheticPerClass: Int
    public var original: PaperRun
    public var synthetic: PaperRun
    public var strips: [SampleStrip]
    public var ganSeconds: [String: Double]
    public var seconds: Double
    public var warnings: [String]

    /// Selected real images in all.
    public var realImages: Int { splitCounts.values.flatMap(\.values).reduce(0, +) }
    /// The classes the paper found a recall of 0.00 for (all but the majority).
    public var minorityClasses: [String] { classNames.filter { (dataset.publishedOriginal.recall[$0] ?? 0) == 0 } }
}

/// The replica's report: Tables I and II in the paper's layout beside the published values,
/// curves, confusion matrices, sample strips, and what matches and what does not.
public struct PaperReport: Codable, Sendable {
    public var settings: PaperSettings
    public var datasets: [PaperResult]
    /// The experiment's arms on the same images, by dataset name (empty when not run).
    public var fixes: [String: ExperimentReport] = [:]
    public var seconds: Double

    /// The fixes of one dataset as table rows: arm, balanced accuracy, each minority recall, and the
    /// Holm-corrected difference in balanced accuracy against `original` with its verdict.
    static func fixesTable(_ e: ExperimentReport) -> (header: [String], rows: [[String]]) {
        let header =
            ["Arm", "Balanced accuracy", "Balanced acc., tuned decision"] + e.minorityClasses.map { "Recall \($0)" }
            + ["Δ balanced acc. vs original [Holm CI]", "Verdict"]
        let rows = e.arms.map { a in
            [a.name, a.test.balancedAccuracy.text, a.tunedTest.balancedAccuracy.text]
                + e.minorityClasses.map { a.test.perClass[$0]?.recall.text ?? "n/a" }
                + [a.balancedAccuracyVsOriginal?.text ?? "", a.balancedAccuracyVsOriginal?.verdict ?? ""]
        }
        return (header, rows)
    }

    static let fixesIntro =
        "The experiment's arms on the replica's own images and split: the same paper CNN, now with "
        + "early stopping on validation, every seed retraining its generators, differences by the paired two-level bootstrap "
        + "with Holm's correction. Each dataset's full experiment report (curves, audits, acceptance) is in NAME-fixes/report.html."

    static func f(_ x: Double) -> String { String(format: "%.3f", x) }
    /// A published value as printed in the paper: two decimals, or three where it has them.
    static func p(_ x: Double) -> String {
        let s = String(format: "%.3f", x)
        return s.hasSuffix("0") ? String(s.dropLast()) : s
    }

    /// The paper's table for one dataset: rows as in the paper, columns paper | ours for each run.
    public static func table(_ r: PaperResult) -> (header: [String], rows: [[String]]) {
        let a = r.dataset.publishedOriginal, b = r.dataset.publishedSynthetic
        var rows = [
            [
                "Train accuracy", p(a.trainAccuracy), f(r.original.trainAccuracy), p(b.trainAccuracy),
                f(r.synthetic.trainAccuracy),
            ],
            ["Validation accuracy", p(a.valAccuracy), f(r.original.valAccuracy), p(b.valAccuracy), f(r.synthetic.valAccuracy)],
        ]
        for c in r.classNames {
            rows.append([
                "Precision \(c)", p(a.precision[c] ?? 0), f(r.original.test.perClass[c]?.precision ?? 0),
                p(b.precision[c] ?? 0), f(r.synthetic.test.perClass[c]?.precision ?? 0),
            ])
            rows.append([
                "Recall \(c)", p(a.recall[c] ?? 0), f(r.original.test.perClass[c]?.recall ?? 0),
                p(b.recall[c] ?? 0), f(r.synthetic.test.perClass[c]?.recall ?? 0),
            ])
        }
        let synthetic = r.syntheticPerClass * r.classNames.count
        rows.append([
            "Number of images", "\(a.images)", "\(r.realImages)", "\(b.images)",
            "\(synthetic) (+ \(r.original.trainImages) real train)",
        ])
        return (
            ["", "Original Images (paper)", "Original Images (ours)", "Synthetic Images (paper)", "Synthetic Images (ours)"], rows
        )
    }

    /// Plain statements of what matches the paper and what does not, from the numbers.
    public static func findings(_ r: PaperResult) -> [String] {
        var s: [String] = []
        let minority = r.minorityClasses
        func recalls(_ run: PaperRun) -> String {
            minority.map { "\($0) \(p(run.test.perClass[$0]?.recall ?? 0))" }.joined(separator: ", ")
        }
        func predicted(_ run: PaperRun) -> Int {
            run.test.confusionMatrix.indices.filter { j in run.test.confusionMatrix.contains { $0[j] > 0 } }.count
        }
        let collapsedOriginal = minority.allSatisfy { (r.original.test.perClass[$0]?.recall ?? 0) == 0 }
        let collapsedSynthetic = minority.allSatisfy { (r.synthetic.test.perClass[$0]?.recall ?? 0) == 0 }
        s.append(
            collapsedOriginal
                ? "Original Images: the minority-recall collapse is reproduced: recall 0.00 for \(minority.joined(separator: ", ")), as in the paper."
                : "Original Images: the minority-recall collapse is NOT reproduced: minority recall \(recalls(r.original)) (paper: all 0.00); "
                    + "the CNN predicts \(predicted(r.original)) of \(r.classNames.count) classes on the test part.")
        s.append(
            collapsedSynthetic
                ? "Synthetic Images: minority recall stays 0.00, as in the paper."
                : "Synthetic Images: minority recall \(recalls(r.synthetic)) (paper: all 0.00).")
        let dOriginal = r.original.valAccuracy - r.dataset.publishedOriginal.valAccuracy
        let dSynthetic = r.synthetic.valAccuracy - r.dataset.publishedSynthetic.valAccuracy
        s.append(
            String(
                format: "Validation accuracy: ours %.3f (original) and %.3f (synthetic) against the paper's %.3f and %.3f "
                    + "(differences %+.3f, %+.3f).", r.original.valAccuracy, r.synthetic.valAccuracy,
                r.dataset.publishedOriginal.valAccuracy, r.dataset.publishedSynthetic.valAccuracy, dOriginal, dSynthetic))
        let majority = r.classNames.first { !minority.contains($0) } ?? r.classNames[0]
        let share =
            Double(r.splitCounts["test"]?[majority] ?? 0) / Double(max(1, r.splitCounts["test"]?.values.reduce(0, +) ?? 1))
        let published = (
            p(r.dataset.publishedOriginal.precision[majority] ?? 0), p(r.dataset.publishedSynthetic.precision[majority] ?? 0)
        )
        s.append(
            "The paper's \(majority) precision with recall 1.00 (\(published.0) original, \(published.1) synthetic) is what a "
                + "classifier that predicts only \(majority) scores: the share of \(majority) in the set it was measured on. Our "
                + "real test part holds \(p(share)) \(majority); the paper's Synthetic Images column reports \(published.1), so its "
                + "validation and test parts held other images than the original run's (synthetic ones, by our reading); ours are real only."
        )
        if r.dataset.publishedOriginal.trainAccuracy < 1 / Double(r.classNames.count),  // below chance
            (r.dataset.publishedOriginal.recall[majority] ?? 0) == 1
        {
            s.append(
                String(
                    format: "The paper's train and validation accuracies (%.3f, %.3f) cannot come from the classifier its "
                        + "precision and recall describe (everything predicted %@, accuracy about %.2f): the published "
                        + "table is inconsistent with itself.", r.dataset.publishedOriginal.trainAccuracy,
                    r.dataset.publishedOriginal.valAccuracy, majority, r.dataset.publishedOriginal.precision[majority] ?? 0))
        }
        return s
    }

    /// Why the replica differs where it does; fixed text, the same for both datasets.
    public static let reading = [
        "What the paper's \"Synthetic Images\" run trained on is not stated beyond \"the synthetic training sets held 2,500 and 3,800 images\". We read it as the real training part plus the generated images (GAN augmentation of an imbalanced set), with validation and test on real images only, so the two columns are tested on the same images.",
        "A CNN that predicts only the majority class is a training failure, not an inevitable effect of a 1:1.9 (pneumonia) or 1:16 (skin) imbalance: with pixels / 255, Adam 1e-3 and enough epochs the same small CNN separates the classes. The paper's below-chance skin accuracies (0.048, 0.051) point to a defect in its pipeline (e.g. labels and loss or metric that do not match) rather than to imbalance; synthetic images cannot fix that.",
        "The shared data are 28 px MedMNIST images (the paper's were full-size), and the skin set has 890 melanoma images where the paper had 1,497 malignant ones.",
    ]

    public func markdown() -> String {
        var s = "# The source paper's experiment, reproduced (Ismail et al. 2023)\n\n"
        s += "Setting **\(settings.name)**: \(settings.ganSteps) GAN steps per class, \(settings.epochs) classifier epochs, "
        s += String(format: "%.0f s in all.\n\n", seconds)
        for r in datasets {
            let (header, rows) = Self.table(r)
            s += "## \(r.dataset.table)\n\n"
            s += "| " + header.joined(separator: " | ") + " |\n|" + String(repeating: "---|", count: header.count) + "\n"
            for row in rows { s += "| " + row.joined(separator: " | ") + " |\n" }
            s += "\nClasses: \(r.selection). Images per split: "
            s += ["train", "val", "test"].map { split in
                "\(split) " + r.classNames.map { "\($0) \(r.splitCounts[split]?[$0] ?? 0)" }.joined(separator: ", ")
            }.joined(separator: "; ")
            s += ". Paper: " + r.classNames.map { "\($0) \(r.dataset.paperCounts[$0] ?? 0)" }.joined(separator: ", ")
            s += ". Synthetic images: \(r.syntheticPerClass) per class.\n\n"
            s += "What matches and what does not:\n\n" + Self.findings(r).map { "- \($0)" }.joined(separator: "\n") + "\n\n"
            for (name, run) in [("Original Images", r.original), ("Synthetic Images", r.synthetic)] {
                s += "Confusion matrix, \(name) (rows true, columns predicted; \(r.classNames.joined(separator: ", "))): "
                s += "\(run.test.confusionMatrix)\n\n"
            }
            s += "Curves (epoch: train loss / acc, val loss / acc):\n\n"
            for (name, run) in [("Original", r.original), ("Synthetic", r.synthetic)] {
                s +=
                    "- \(name): "
                    + run.curves.map {
                        String(
                            format: "%d: %.3f / %.3f, %.3f / %.3f", $0.epoch + 1, $0.trainLoss, $0.trainAccuracy, $0.valLoss,
                            $0.valAccuracy)
                    }.joined(separator: "; ") + "\n"
            }
            s += "\nSample strips (Fig. 5): see report.html; rows at GAN steps "
            s +=
                r.strips.map { "\($0.className) \($0.steps.map(String.init).joined(separator: ", "))" }.joined(separator: "; ")
                + ".\n\n"
        }
        s += "## Our reading of the paper\n\n" + Self.reading.map { "- \($0)" }.joined(separator: "\n") + "\n\n"
        s += "## Where the paper is silent: our choices\n\n" + settings.choices.map { "- \($0)" }.joined(separator: "\n") + "\n\n"
        s += "## Beside the replica: the fixes\n\n"
        if fixes.isEmpty { s += "Not run (`--no-fixes`).\n"; return s }
        s += Self.fixesIntro + "\n\n"
        for name in fixes.keys.sorted() {
            let e = fixes[name]!, t = Self.fixesTable(e)
            s += "### \(name) (\(e.seeds.count) seeds, \(e.testImages) test images)\n\n"
            s += "| " + t.header.joined(separator: " | ") + " |\n|" + String(repeating: "---|", count: t.header.count) + "\n"
            for row in t.rows { s += "| " + row.joined(separator: " | ") + " |\n" }
            if let w = e.whatHelped { s += "\n\(w.summary)\n" }
            s += "\n"
        }
        return s
    }

    /// The page's Content-Security-Policy: a browser refuses every load beyond the page's own
    /// `data:` images and inline style, so the self-contained report cannot reach outside even
    /// if a later change adds a link to a server.
    public static let contentSecurityPolicy = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

    public func html() -> String {
        func esc(_ s: String) -> String { escapeHTML(s) }
        var b = """
            <!doctype html><html><head><meta charset="utf-8"><title>Ismail et al. 2023, reproduced</title>
            <meta http-equiv="Content-Security-Policy" content="\(Self.contentSecurityPolicy)">
            <style>body{font-family:sans-serif;max-width:1200px;margin:20px auto;color:#222}table{border-collapse:collapse;margin:8px 0}
            td,th{border:1px solid #ccc;padding:3px 7px;font-size:13px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
            td.paper,th.paper{color:#666;background:#fafafa}.row{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #ddd;padding:6px}
            img.strip{image-rendering:pixelated;width:320px}</style></head><body>
            <h1>The source paper's experiment, reproduced (Ismail et al. 2023)</h1>

            """
        b += "<p>Setting <b>\(esc(settings.name))</b>: \(settings.ganSteps) GAN steps per class, \(settings.epochs) classifier "
        b += String(format: "epochs; %.0f s in all. Grey columns are the paper's published values.</p>\n", seconds)
        for (k, r) in datasets.enumerated() {
            let (header, rows) = Self.table(r)
            b += "<h2>\(esc(r.dataset.table))</h2>\n<table class='paper-table' id='table-\(k + 1)'><tr>"
            for (i, h) in header.enumerated() { b += "<th\(i == 1 || i == 3 ? " class='paper'" : "")>\(esc(h))</th>" }
            b += "</tr>\n"
            for row in rows {
                b +=
                    "<tr>" + row.enumerated().map { "<td\($0 == 1 || $0 == 3 ? " class='paper'" : "")>\(esc($1))</td>" }.joined()
                    + "</tr>\n"
            }
            b += "</table>\n<p>Classes: \(esc(r.selection)); synthetic images: \(r.syntheticPerClass) per class.</p>\n"
            b +=
                "<h3>What matches and what does not</h3><ul>" + Self.findings(r).map { "<li>\(esc($0))</li>" }.joined()
                + "</ul>\n"
            b += "<h3>Training curves</h3><div class='row curves'>"
            for (name, run) in [("Original Images", r.original), ("Synthetic Images", r.synthetic)] {
                let acc: [(name: String, points: [(Double, Double)])] = [
                    ("train", run.curves.map { (Double($0.epoch + 1), $0.trainAccuracy) }),
                    ("validation", run.curves.map { (Double($0.epoch + 1), $0.valAccuracy) }),
                ]
                let loss: [(name: String, points: [(Double, Double)])] = [
                    ("train", run.curves.map { (Double($0.epoch + 1), $0.trainLoss) }),
                    ("validation", run.curves.map { (Double($0.epoch + 1), $0.valLoss) }),
                ]
                b +=
                    "<div class='card'>"
                    + SVGChart.lines(
                        title: "\(name): accuracy", series: acc, xLabel: "epoch",
                        yLabel: "accuracy", yRange: 0...1) + "</div>"
                b +=
                    "<div class='card'>" + SVGChart.lines(title: "\(name): loss", series: loss, xLabel: "epoch", yLabel: "loss")
                    + "</div>"
            }
            b += "</div>\n<h3>Confusion matrices (test part, last epoch)</h3><div class='row confusion'>"
            for (name, run) in [("Original Images", r.original), ("Synthetic Images", r.synthetic)] {
                b +=
                    "<div class='card'>" + SVGChart.heatmap(title: name, matrix: run.test.confusionMatrix, labels: r.classNames)
                    + "</div>"
            }
            b += "</div>\n<h3>Generated samples during GAN training (Fig. 5)</h3><div class='row strips'>"
            for strip in r.strips {
                b +=
                    "<div class='card strip'><b>\(esc(strip.className))</b><br><img class='strip' alt='\(esc(strip.className)) samples' "
                b += "src='data:image/png;base64,\(strip.pngBase64)'><br><small>rows: steps "
                b += strip.steps.map(String.init).joined(separator: ", ") + "</small></div>"
            }
            b += "</div>\n"
        }
        b += "<h2>Our reading of the paper</h2><ul>" + Self.reading.map { "<li>\(esc($0))</li>" }.joined() + "</ul>\n"
        b +=
            "<h2>Where the paper is silent: our choices</h2><ul>" + settings.choices.map { "<li>\(esc($0))</li>" }.joined()
            + "</ul>\n"
        b += "<h2 id='fixes'>Beside the replica: the fixes</h2>"
        if fixes.isEmpty { b += "<p>Not run (<code>--no-fixes</code>).</p>" } else { b += "<p>\(esc(Self.fixesIntro))</p>" }
        for name in fixes.keys.sorted() {
            let e = fixes[name]!, t = Self.fixesTable(e)
            b += "<h3>\(esc(name)) (\(e.seeds.count) seeds, \(e.testImages) test images)</h3><table><tr>"
            b += t.header.map { "<th>\(esc($0))</th>" }.joined() + "</tr>"
            for row in t.rows { b += "<tr>" + row.map { "<td>\(esc($0))</td>" }.joined() + "</tr>" }
            b += "</table>"
            let compared = e.arms.filter { $0.balancedAccuracyVsOriginal != nil }
            b += SVGChart.intervals(
                title: "\(name): Δ balanced accuracy against original (Holm-corrected)",
                rows: compared.map {
                    (
                        $0.name, $0.balancedAccuracyVsOriginal!.mean, $0.balancedAccuracyVsOriginal!.ci[0],
                        $0.balancedAccuracyVsOriginal!.ci[1]
                    )
                }, xLabel: "difference")
            if let w = e.whatHelped { b += "<p>\(esc(w.summary))</p>" }
        }
        b += "\n</body></html>\n"
        return b
    }

    /// Writes report.json, report.md and report.html into `folder`.
    public func write(to folder: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(Array(try encoder.encode(self)), to: folder.appendingPathComponent("report.json").path)
        try AtomicFile.write(Array(markdown().utf8), to: folder.appendingPathComponent("report.md").path)
        try AtomicFile.write(Array(html().utf8), to: folder.appendingPathComponent("report.html").path)
    }
}
