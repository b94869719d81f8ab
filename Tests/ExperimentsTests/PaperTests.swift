import Foundation
import TestSupport
import Testing

@testable import Experiments

/// Everything in a page that would make a browser fetch from outside it: src/href to http(s) or
/// `//`, CSS @import, url() pointing elsewhere than a data: URI. (An SVG xmlns attribute is a
/// name, not a load, and is not reported.)
func externalReferences(in html: String) -> [String] {
    let patterns = [
        #"(?i)\b(src|href|srcset|action|poster|data)\s*=\s*["']?\s*(https?:|//)"#, #"(?i)@import"#,
        #"(?i)url\(\s*["']?\s*(?!data:)"#, #"(?i)<(script|link|iframe|object|embed)\b"#,
    ]
    return patterns.flatMap { pattern -> [String] in
        let regex = try! NSRegularExpression(pattern: pattern)
        return regex.matches(in: html, range: NSRange(html.startIndex..., in: html)).map {
            String(html[Range($0.range, in: html)!])
        }
    }
}

@Test func theExternalReferenceCheckCatchesLoads() {
    #expect(
        externalReferences(
            in: "<svg xmlns='http://www.w3.org/2000/svg'></svg><img src='data:image/png;base64,AA'>"
                + "<a href='#what-helped'>x</a>"
        ).isEmpty)
    for page in [
        "<img src='http://x/a.png'>", "<img src=\"https://x/a.png\">", "<a href=//x.org>", "<style>@import 'x.css'</style>",
        "<div style='background:url(http://x/y.png)'>", "<script>1</script>", "<link rel=stylesheet href=a.css>",
        "<a href=\"//cdn/x\">", "<style>b{background:url(https://i)}</style>",
        // An SVG namespace beside a real load: the namespace is ignored, the load is not.
        "<svg xmlns='http://www.w3.org/2000/svg'><image href='https://x/y.png'/></svg>",
    ] {
        #expect(!externalReferences(in: page).isEmpty, "\(page)")
    }
}

func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

/// Counts by split and class as counts by class and split (zeros left out).
func byClass(_ counts: [String: [String: Int]]) -> [String: [String: Int]] {
    var out: [String: [String: Int]] = [:]
    for (split, perClass) in counts { for (name, n) in perClass where n > 0 { out[name, default: [:]][split] = n } }
    return out
}

/// The paper preset on both datasets with tiny settings (16 images per class, 2 GAN steps, 2
/// epochs; the fixes with two arms and two seeds), run once for the tests that read its outputs.
/// Its folder (about 70 MB: generators, classifiers) is removed when the test process exits.
struct TinyPaperReport: Sendable {
    static let folder = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-paper-\(UUID().uuidString)")
    var folder: URL { Self.folder }
    let report: PaperReport
    /// The stages the run reported, in order.
    let stages: [String]

    static let shared: Result<TinyPaperReport, any Error> = Result { try TinyPaperReport() }

    /// `shared`, waited for on a thread of its own: the first caller runs the replica (about 20 s on 2 cores), the others wait for it.
    static func get() async throws -> TinyPaperReport { try await onOwnThread { shared }.get() }

    private init() throws {
        let root = sharedData()
        atexit { try? FileManager.default.removeItem(at: TinyPaperReport.folder) }
        var settings = PaperSettings.reduced
        settings.ganSteps = 2; settings.ganWidth = 8; settings.epochs = 2; settings.batchSize = 8; settings.stages = 2
        settings.maxImagesPerClass = 16
        let replica = try PaperReplica(
            datasets: [.pneumonia(dataRoot: root, seed: 0), .skin(dataRoot: root, seed: 0)],
            settings: settings, output: Self.folder)
        var fixes = PaperFixes()
        fixes.arms = ["original", "cdcgan+filter"]; fixes.seeds = [0, 1]; fixes.epochs = 1; fixes.ganSteps = 2
        replica.fixes = fixes
        var stages: [String] = []
        report = try replica.run { if case .stage(let s) = $0 { stages.append(s) } }
        self.stages = stages
    }
}

/// The tiny paper preset end to end: the reports carry Tables I and II in the paper's layout
/// with the published values, both runs' curves, confusion matrices and a sample strip per
/// class, and the page references nothing outside it (the browser's check is PaperBrowserTests).
@Test func paperPresetRunsEndToEndAndTheReportIsComplete() async throws {
    let tiny = try await TinyPaperReport.get()
    let (report, stages, out) = (tiny.report, tiny.stages, tiny.folder)

    #expect(
        report.datasets.map(\.classNames) == [
            ["normal", "pneumonia"], ["benign", "malignant", "vascular_lesion", "dermatofibroma"],
        ])
    for r in report.datasets {
        #expect(r.realImages == 16 * r.classNames.count)
        #expect(r.syntheticPerClass == 16 && r.synthetic.trainImages == r.original.trainImages + 16 * r.classNames.count)
        #expect(r.original.curves.count == 2 && r.synthetic.curves.count == 2)  // no early stopping
        let tested: Int = r.original.test.confusionMatrix.flatMap { $0 }.reduce(0, +)
        #expect(tested == r.splitCounts["test"]!.values.reduce(0, +))
        #expect(r.strips.map(\.className) == r.classNames && r.strips.allSatisfy { $0.steps == [1, 2] })
    }
    #expect(stages.filter { $0.contains("DCGAN on") }.count == 6)  // a GAN for every class
    // The fixes: the experiment's arms on the replica's own images and split.
    #expect(report.fixes.keys.sorted() == ["pneumonia", "skin"])
    for (name, e) in report.fixes {
        let r = try #require(report.datasets.first { $0.dataset.name == name })
        #expect(e.arms.map(\.name) == ["original", "cdcgan+filter"] && e.seeds == [0, 1])
        #expect(e.classNames == r.classNames && e.testImages == r.splitCounts["test"]!.values.reduce(0, +))
        #expect(e.arms[1].balancedAccuracyVsOriginal != nil)
    }

    let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
    for text in [
        "## Table I: pneumonia chest X-ray", "## Table II: skin lesions",
        "|  | Original Images (paper) | Original Images (ours) | Synthetic Images (paper) | Synthetic Images (ours) |",
        "| Train accuracy | 0.955 |", "| Validation accuracy | 0.722 |", "| Precision normal | 0.69 |",
        "| Recall pneumonia | 0.00 |", "| Train accuracy | 0.048 |", "| Validation accuracy | 0.051 |",
        "| Precision benign | 0.51 |", "| Recall dermatofibroma | 0.00 |", "| Number of images | 362 |",
        "| Number of images | 3550 |",
        "What matches and what does not", "minority-recall collapse", "Where the paper is silent",
        "Beside the replica: the fixes",
        "### pneumonia (2 seeds", "| cdcgan+filter |", "Δ balanced acc. vs original [Holm CI]",
    ] {
        #expect(md.contains(text), "report.md lacks \(text)")
    }
    let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
    #expect(externalReferences(in: html).isEmpty, "\(externalReferences(in: html))")
    #expect(html.contains(PaperReport.contentSecurityPolicy))
    for tag in ["table", "svg", "div", "ul", "tr"] {
        #expect(count("<\(tag)", in: html) == count("</\(tag)>", in: html), "\(tag)")
    }
    #expect(html.contains("id='table-1'") && html.contains("id='table-2'"))
    #expect(count("<td class='paper'>0.955</td>", in: html) == 1 && count("<td class='paper'>0.732</td>", in: html) == 1)
    #expect(count("<polyline", in: html) == 2 * 2 * 2 * 2)  // 2 datasets x 2 runs x (accuracy, loss) x (train, val)
    #expect(count("<div class='card'><svg", in: html) == 2 * (4 + 2))  // curves and confusion matrices
    let strips = html.components(separatedBy: "src='data:image/png;base64,").dropFirst().map { String($0.prefix { $0 != "'" }) }
    #expect(strips.count == 6)
    for strip in strips { #expect(Data(base64Encoded: strip)?.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47])) }
    let json =
        try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("report.json"))) as! [String: Any]
    #expect((json["datasets"] as? [[String: Any]])?.count == 2 && json["settings"] != nil)
}

/// `reproduce paper` records each dataset's split as `train` does: `DIR/NAME/manifest.jsonl`
/// naming every image's split, class and source class, and `DIR/NAME/selection.json` with the
/// class mapping and the subsample (the paper's caps, lowered to the tiny run's 16 per class).
@Test func paperRecordsEachDatasetsClassSelectionBesideItsManifest() async throws {
    let tiny = try await TinyPaperReport.get()
    struct Row: Decodable {
        let split: String
        let `class`: String
        let source_class: String?
    }
    for (name, summary, sources) in [
        (
            "pneumonia", "normal,pneumonia; subsample normal=16,pneumonia=16 (seed 0)",
            ["normal": ["normal"], "pneumonia": ["pneumonia"]]
        ),
        (
            "skin",
            "benign=melanocytic_nevus,malignant=melanoma,vascular_lesion,dermatofibroma; "
                + "subsample benign=16,malignant=16,vascular_lesion=16,dermatofibroma=16 (seed 0)",
            [
                "benign": ["melanocytic_nevus"], "malignant": ["melanoma"], "vascular_lesion": ["vascular_lesion"],
                "dermatofibroma": ["dermatofibroma"],
            ]
        ),
    ] {
        let folder = tiny.folder.appendingPathComponent(name)
        let rows = try String(contentsOf: folder.appendingPathComponent("manifest.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONDecoder().decode(Row.self, from: Data($0.utf8)) }
        let result = try #require(tiny.report.datasets.first { $0.dataset.name == name })
        #expect(rows.count == result.realImages, "\(name)")
        var mapping: [String: Set<String>] = [:]
        for row in rows { mapping[row.class, default: []].insert(row.source_class ?? "none") }
        #expect(mapping == sources.mapValues(Set.init), "\(name)")
        let record =
            try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("selection.json")))
            as? [String: Any] ?? [:]
        #expect(record["summary"] as? String == summary)
        #expect(record["counts"] as? [String: [String: Int]] == byClass(result.splitCounts), "\(name)")
    }
}

/// `reproduce paper --jobs`: a worker's `work` trains every piece (the replica, the fixes'
/// generators and cells) and writes it; `run` then reads them back and trains nothing, with the
/// numbers of a run that trained everything itself; a folder holding a replica of other settings
/// is refused.
@Test func paperWorkersTrainEveryPieceAndRunReadsThemBack() throws {
    let root = sharedData()
    func replica(_ out: URL, ganSteps: Int = 2) throws -> PaperReplica {
        var settings = PaperSettings.reduced
        settings.ganSteps = ganSteps; settings.ganWidth = 8; settings.epochs = 2; settings.batchSize = 8; settings.stages = 2
        settings.maxImagesPerClass = 16
        let r = try PaperReplica(datasets: [.pneumonia(dataRoot: root, seed: 0)], settings: settings, output: out)
        var fixes = PaperFixes()
        fixes.arms = ["original", "cdcgan"]; fixes.seeds = [0]; fixes.epochs = 1; fixes.ganSteps = 2
        r.fixes = fixes
        return r
    }
    let direct = URL(fileURLWithPath: try makeTemporaryFolder()), pieces = URL(fileURLWithPath: try makeTemporaryFolder())
    defer { for f in [direct, pieces] { try? FileManager.default.removeItem(at: f) } }
    let alone = try replica(direct).run()

    var worked: [String] = []
    try replica(pieces).work { if case .stage(let s) = $0 { worked.append(s) } }
    #expect(worked.contains { $0.contains("DCGAN on") } && worked.contains { $0.contains("training the classifier") })
    var stages: [String] = []
    let reading = try replica(pieces)
    reading.startedAt = Date(timeIntervalSinceNow: -100)  // as `--jobs` sets it before its workers
    let read = try reading.run { if case .stage(let s) = $0 { stages.append(s) } }
    #expect(read.seconds >= 100, "the report's time leaves out the workers' time")
    let trained = stages.filter {
        $0.contains("DCGAN on") || $0.contains("training the classifier") || $0.contains("paper CNN on")
    }
    #expect(trained.isEmpty, "run trained again: \(trained)")
    #expect(stages.contains { $0.contains("the replica finished earlier") })

    let (a, b) = (alone.datasets[0], read.datasets[0])
    for (x, y) in [(a.original, b.original), (a.synthetic, b.synthetic)] {
        #expect(x.test.confusionMatrix == y.test.confusionMatrix)
        #expect(x.curves.map(\.trainLoss) == y.curves.map(\.trainLoss))
    }
    #expect(a.strips.map(\.pngBase64) == b.strips.map(\.pngBase64))
    let (fa, fb) = (try #require(alone.fixes["pneumonia"]), try #require(read.fixes["pneumonia"]))
    #expect(fa.arms.map(\.confusionMatrix) == fb.arms.map(\.confusionMatrix))

    #expect(throws: PaperError.self) { try replica(pieces, ganSteps: 3).run() }
}
