import AtomicIO
import Autodiff
import Classification
import Datasets
import Evaluation
import Foundation
import GAN
import SeededRandom

// The source paper's experiment (Ismail et al. 2023, "Deep Convolutional Generative Adversarial
// Networks for Imbalance Medical Image Classification", IJPCC 9(2)), rebuilt on the shared data:
// two datasets, a plain DCGAN per class, one CNN trained on the original and on the
// synthetic-augmented images, metrics at the last epoch. The report lives in PaperReport.swift.

/// One column of the paper's Table I or II, as published.
public struct PublishedColumn: Codable, Equatable, Sendable {
    public var trainAccuracy: Double
    public var valAccuracy: Double
    /// Per class name.
    public var precision: [String: Double]
    public var recall: [String: Double]
    /// The table's "number of images".
    public var images: Int
}

/// One of the paper's two datasets, approximated from the shared data (`../shared/data/README.md`).
///
/// HOOK (issue #12, "beside the replica, the fixes"): `path`, `loadOptions()`, `splitRatio`,
/// `resplit` and `splitSeed` are everything an `Experiment` needs to run its arms on exactly
/// these images and this split; the lead wires that in. Nothing here runs an arm.
public struct PaperDataset: Codable, Equatable, Sendable {
    /// `pneumonia` or `skin`.
    public var name: String
    /// `Table I: ...`.
    public var table: String
    /// A class-folder tree or npz.
    public var path: String
    /// The paper's classes, names and counts, as a class selection (caps seeded by the split seed).
    public var selection: ClassSelection
    /// Channels the images are read with (1 for X-ray, 3 for dermoscopy).
    public var channels: Int
    /// Images per class in the paper's dataset, for the report.
    public var paperCounts: [String: Int]
    /// Synthetic images the paper generated for this dataset, in all.
    public var syntheticTotal: Int
    public var publishedOriginal: PublishedColumn
    public var publishedSynthetic: PublishedColumn
    /// The paper's 8:1:1.
    public var splitRatio: SplitRatio = .standard
    /// True: one stratified split over all selected images (an npz's own train/val arrays are ignored).
    public var resplit = true
    public var splitSeed: UInt64

    /// Load options (pixels / 255, 28 px, this dataset's class selection) for the replica and for an `Experiment`.
    public func loadOptions(imageSize: Int = 28) -> LoadOptions {
        LoadOptions(preprocessing: Preprocessing(imageSize: imageSize, channels: channels, scaling: .unit), selection: selection)
    }

    /// Classes in label order.
    public var classNames: [String] { selection.classes?.map(\.name) ?? [] }

    /// The paper's chest X-ray set: 235 normal and 127 pneumonia images (pneumonia is the minority),
    /// subsampled from PneumoniaMNIST.
    public static func pneumonia(dataRoot: String, seed: UInt64) -> PaperDataset {
        let counts = ["normal": 235, "pneumonia": 127]
        return PaperDataset(
            name: "pneumonia", table: "Table I: pneumonia chest X-ray",
            path: dataRoot + "/pneumoniamnist/pneumoniamnist-trainval.npz",
            selection: ClassSelection(
                classes: [.init(name: "normal", sources: ["normal"]), .init(name: "pneumonia", sources: ["pneumonia"])],
                caps: [.init(className: "normal", count: 235), .init(className: "pneumonia", count: 127)], seed: seed),
            channels: 1, paperCounts: counts, syntheticTotal: 2500,
            publishedOriginal: PublishedColumn(
                trainAccuracy: 0.955, valAccuracy: 0.722, precision: ["normal": 0.69, "pneumonia": 0],
                recall: ["normal": 1, "pneumonia": 0], images: 362),
            publishedSynthetic: PublishedColumn(
                trainAccuracy: 1, valAccuracy: 1, precision: ["normal": 0.60, "pneumonia": 0],
                recall: ["normal": 1, "pneumonia": 0], images: 2500),
            splitSeed: seed)
    }

    /// The paper's four skin classes from DermaMNIST: benign (1,800 melanocytic nevi), malignant
    /// (melanoma; 890 here against the paper's 1,497), vascular lesion, dermatofibroma.
    public static func skin(dataRoot: String, seed: UInt64) -> PaperDataset {
        let names = ["benign", "malignant", "vascular_lesion", "dermatofibroma"]
        func zeros() -> [String: Double] { Dictionary(uniqueKeysWithValues: names.map { ($0, 0.0) }) }
        var originalP = zeros(), originalR = zeros(), syntheticP = zeros(), syntheticR = zeros()
        originalP["benign"] = 0.51; originalR["benign"] = 1
        syntheticP["benign"] = 0.39; syntheticR["benign"] = 1
        return PaperDataset(
            name: "skin", table: "Table II: skin lesions",
            path: dataRoot + "/dermamnist-jpeg",
            selection: ClassSelection(
                classes: [
                    .init(name: "benign", sources: ["melanocytic_nevus"]),
                    .init(name: "malignant", sources: ["melanoma"]),
                    .init(name: "vascular_lesion", sources: ["vascular_lesion"]),
                    .init(name: "dermatofibroma", sources: ["dermatofibroma"]),
                ],
                caps: [.init(className: "benign", count: 1800)], seed: seed),
            channels: 3, paperCounts: ["benign": 1800, "malignant": 1497, "vascular_lesion": 142, "dermatofibroma": 111],
            syntheticTotal: 3800,
            publishedOriginal: PublishedColumn(
                trainAccuracy: 0.048, valAccuracy: 0.051, precision: originalP, recall: originalR,
                images: 3550),
            publishedSynthetic: PublishedColumn(
                trainAccuracy: 0.132, valAccuracy: 0.732, precision: syntheticP, recall: syntheticR,
                images: 3800),
            splitSeed: seed)
    }
}

/// How long the replica trains. The paper is silent on the CNN's layers, learning rate, batch
/// size and epochs; `PaperSettings` says what we chose (see `choices`).
public struct PaperSettings: Codable, Equatable, Sendable {
    /// `reduced` (the default, about 10 minutes on 2 cores) or `full`.
    public var name: String
    /// GAN steps (one D and one G update) per class.
    public var ganSteps: Int
    public var ganBatchSize = 64
    /// DCGAN width (ngf = ndf), as pytorch/examples dcgan.
    public var ganWidth = 64
    /// Classifier epochs; metrics are the last epoch's.
    public var epochs: Int
    /// Keras' default batch size.
    public var batchSize = 32
    /// Adam's default rate in Keras, which the paper's Keras-tutorial CNN used.
    public var learningRate: Float = 1e-3
    /// Rows of the Fig. 5 strip (sample grids at evenly spaced points of GAN training).
    public var stages = 5
    /// Tests only: every class capped at this many images, and the synthetic totals scaled to match.
    public var maxImagesPerClass: Int? = nil

    /// The default: 300 GAN steps per class, 15 classifier epochs.
    public static let reduced = PaperSettings(name: "reduced", ganSteps: 300, epochs: 15)
    /// `--full`: 3,000 GAN steps per class (still short of the paper's "up to 7,000 epochs"), 50 epochs.
    public static let full = PaperSettings(name: "full", ganSteps: 3000, epochs: 50)

    /// What the paper leaves open and what we chose, one line each, for the report and README.
    public var choices: [String] {
        [
            "CNN: the Keras small-convnet tutorial the paper follows (`paper-cnn`: 3 x [conv 3x3, ReLU, max-pool 2] with 32/64/128 filters, dense 128, dropout 0.5, softmax), 28 px; the paper gives no layers.",
            "Optimizer: Adam, learning rate \(learningRate) (Keras' default), batch \(batchSize) (Keras' default), cross-entropy; the paper names none of them.",
            "Epochs: \(epochs), no early stopping; train and validation accuracy are the last epoch's (Keras' history), precision and recall the last epoch's model on the held-out test part.",
            "GAN: DCGAN (pytorch/examples), width \(ganWidth), BCE, Adam 2e-4 beta1 0.5, batch \(ganBatchSize) (or the class size if smaller), no DiffAugment, no EMA; \(ganSteps) steps per class (the paper: up to 7,000 epochs).",
            "Synthetic images: the paper's total (2,500 pneumonia, 3,800 skin) split equally over the classes (1,250 and 950 per class), added to the real training part; validation and test stay real.",
        ]
    }
}

/// Progress of the replica, for the command line to draw.
public enum PaperEvent: Sendable {
    case stage(String)
    case ganStep(name: String, step: Int, total: Int, etaSeconds: Double)
    case epoch(run: String, epoch: Int, epochs: Int, trainAccuracy: Double, valAccuracy: Double)
}

/// The experiment's arms on the paper's own datasets and split: what changes the paper's result.
/// Same paper CNN, with early stopping on validation, every seed retraining its generators.
public struct PaperFixes: Codable, Equatable, Sendable {
    public var arms: [Arm] = ["original", "weighted", "oversample", "cdcgan", "cdcgan+filter"]
    public var seeds: [UInt64] = [0, 1, 2]
    public var epochs = 10
    public var patience = 4
    public var ganSteps = 300
    public init() {}

    /// The options of an `Experiment` on exactly the replica's images and split of `dataset`.
    public func experimentOptions(_ dataset: PaperDataset, selection: ClassSelection, output: URL) -> ExperimentOptions {
        var o = ExperimentOptions(data: dataset.path, output: output)
        o.selection = selection
        o.channels = dataset.channels
        o.splitRatio = dataset.splitRatio; o.resplit = dataset.resplit; o.splitSeed = dataset.splitSeed
        o.arms = arms; o.seeds = seeds; o.arch = .paperCNN
        o.classifier.epochs = epochs; o.classifier.patience = patience
        o.ganSteps = ganSteps
        return o
    }
}

/// Runs the paper's experiment on each requested dataset and writes `report.html`, `report.md`
/// and `report.json` to `output`, each dataset's split as `DIR/NAME/manifest.jsonl` with its class
/// mapping and subsample in `DIR/NAME/selection.json`; with `fixes`, the experiment's arms beside
/// it (`DIR/NAME-fixes/`).
public final class PaperReplica {
    public let datasets: [PaperDataset]
    public let settings: PaperSettings
    public let output: URL
    public var fixes: PaperFixes? = PaperFixes()
    /// When the run began, if before `run` (worker processes trained the pieces first): the
    /// report's time counts from here.
    public var startedAt: Date?

    /// `datasets` defaults to both of the paper's, built from `dataRoot` with `seed`.
    public init(datasets: [PaperDataset], settings: PaperSettings, output: URL) throws {
        guard !datasets.isEmpty else { throw PaperError.invalid("no dataset to run") }
        guard settings.ganSteps > 0, settings.epochs > 0, settings.batchSize > 1, settings.stages > 0 else {
            throw PaperError.invalid("settings \(settings): GAN steps, epochs and stages must be positive, batch size above 1")
        }
        (self.datasets, self.settings, self.output) = (datasets, settings, output)
    }

    /// Both datasets, one after the other; the report is written when both are done.
    public func run(_ observe: (PaperEvent) -> Void = { _ in }) throws -> PaperReport {
        let start = startedAt ?? Date()
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        var results: [PaperResult] = []
        var fixed: [String: ExperimentReport] = [:]
        for dataset in datasets {
            results.append(try replica(dataset, wait: true, observe)!)
            if let fixes {
                observe(
                    .stage(
                        "\(dataset.name): the experiment's arms on the same images (\(fixes.arms.map(\.name).joined(separator: ", ")))"
                    ))
                fixed[dataset.name] = try fixesExperiment(dataset, fixes).run { Self.forward($0, of: dataset, to: observe) }
            }
        }
        let report = PaperReport(settings: settings, datasets: results, fixes: fixed, seconds: Date().timeIntervalSince(start))
        try report.write(to: output)
        return report
    }

    /// The experiment of `dataset`'s fixes (its folder `DIR/NAME-fixes/`).
    func fixesExperiment(_ dataset: PaperDataset, _ fixes: PaperFixes) throws -> Experiment {
        try Experiment(
            options: fixes.experimentOptions(
                dataset, selection: selection(dataset), output: output.appendingPathComponent("\(dataset.name)-fixes")))
    }

    /// A fixes' event as the replica's, named by dataset.
    static func forward(_ event: ExperimentEvent, of dataset: PaperDataset, to observe: (PaperEvent) -> Void) {
        switch event {
        case .stage(let s): observe(.stage("\(dataset.name) fixes: \(s)"))
        case .resumed(let s): observe(.stage("\(dataset.name) fixes: finished earlier: \(s)"))
        case let .ganStep(name, step, total, eta):
            observe(.ganStep(name: name, step: step, total: total, etaSeconds: eta))
        case let .classifierEpoch(arm, seed, epoch, epochs, _):
            observe(
                .epoch(
                    run: "\(dataset.name) \(arm) seed \(seed)", epoch: epoch, epochs: epochs, trainAccuracy: .nan,
                    valAccuracy: .nan))
        default: break
        }
    }

    /// A dataset's replica as it is kept on disk (`DIR/NAME/replica.json`), with what made it.
    struct ReplicaRecord: Codable {
        var settings: PaperSettings
        var dataset: PaperDataset
        var result: PaperResult
    }

    /// `dataset`'s replica: read back from `DIR/NAME/replica.json` when an earlier run or another
    /// worker finished it with these settings, else trained now under the claim
    /// `DIR/NAME/replica.claim` and written there. When another live worker holds the claim,
    /// waits for it, or returns nil at once when `wait` is false. A record of other settings is
    /// refused, naming the folder.
    func replica(_ dataset: PaperDataset, wait: Bool, _ observe: (PaperEvent) -> Void) throws -> PaperResult? {
        let folder = output.appendingPathComponent(dataset.name)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("replica.json")
        return try claimPiece(
            folder.path + "/replica.claim", wait: wait,
            waiting: { observe(.stage("\(dataset.name): waiting for the replica, which another worker trains")) }
        ) { firstLook in
            guard let data = FileManager.default.contents(atPath: file.path) else { return nil }
            guard let record = try? JSONDecoder().decode(ReplicaRecord.self, from: data) else {
                throw PaperError.invalid("\(file.path) is unreadable: remove it to train the replica again")
            }
            guard record.settings == settings, record.dataset == dataset else {
                throw PaperError.invalid(
                    "\(folder.path) holds a replica made with other settings or data: use another --out, or remove it")
            }
            if firstLook { observe(.stage("\(dataset.name): the replica finished earlier (\(file.path))")) }
            return record.result
        } make: {
            let result = try run(dataset, observe)
            let record = ReplicaRecord(settings: settings, dataset: dataset, result: result)
            try AtomicFile.write(Array(try JSONEncoder().encode(record)), to: file.path)
            return result
        }
    }

    /// One worker of `reproduce paper --jobs N`: takes every dataset's replica that no other live
    /// worker holds, then the pieces of every dataset's fixes (`Experiment.work`). The parent's
    /// `run` then reads everything back and writes the report; a worker's numbers are those of a
    /// single process with the same thread count.
    public func work(_ observe: (PaperEvent) -> Void = { _ in }) throws {
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        for dataset in datasets { _ = try replica(dataset, wait: false, observe) }
        guard let fixes else { return }
        for dataset in datasets { try fixesExperiment(dataset, fixes).work { Self.forward($0, of: dataset, to: observe) } }
    }

    /// Runs `count` workers (`runWorkerProcesses`, logs in `DIR/workers/`), calling `poll` with
    /// the pieces finished and their total about once a second.
    public func runWorkers(
        executable: String, arguments: [String], count: Int, threadsPerWorker: Int,
        poll: (_ finished: Int, _ total: Int) -> Void
    ) throws {
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let experiments = try fixes.map { fixes in try datasets.map { try fixesExperiment($0, fixes) } } ?? []
        try runWorkerProcesses(
            executable: executable, arguments: arguments, count: count, threadsPerWorker: threadsPerWorker,
            logs: output.appendingPathComponent("workers")
        ) {
            var finished = datasets.filter {
                FileManager.default.fileExists(atPath: output.appendingPathComponent("\($0.name)/replica.json").path)
            }.count
            var total = datasets.count
            for e in experiments {
                let (f, t) = e.gridProgress()
                finished += f; total += t
            }
            poll(finished, total)
        }
    }

    /// The selection of `dataset` with the test-only cap applied.
    func selection(_ dataset: PaperDataset) -> ClassSelection {
        var selection = dataset.selection
        guard let cap = settings.maxImagesPerClass else { return selection }
        selection.caps = dataset.classNames.map { name in
            .init(className: name, count: min(cap, dataset.selection.caps.first { $0.className == name }?.count ?? cap))
        }
        return selection
    }

    func run(_ dataset: PaperDataset, _ observe: (PaperEvent) -> Void) throws -> PaperResult {
        let start = Date()
        observe(.stage("\(dataset.name): loading \(dataset.path)"))
        var load = dataset.loadOptions()
        load.selection = selection(dataset)
        let split = try makeSplits(
            try loadDataset(at: dataset.path, options: load), ratio: dataset.splitRatio,
            seed: dataset.splitSeed, resplit: dataset.resplit)
        let folder = output.appendingPathComponent(dataset.name)
        try writeSplitManifest(
            split.manifest(), selection: split.selection, to: folder.appendingPathComponent("manifest.jsonl").path)
        let train = split.subset(.train), val = split.subset(.val), test = split.subset(.test)
        let classNames = train.classNames
        var synthesisTotal = dataset.syntheticTotal
        if let cap = settings.maxImagesPerClass { synthesisTotal = min(synthesisTotal, cap * classNames.count) }
        let perClass = synthesisTotal / classNames.count

        // One plain DCGAN per class, on that class's training images only.
        var strips: [SampleStrip] = [], synthetic: [Float] = [], syntheticLabels: [Int] = [], ganSeconds: [String: Double] = [:]
        for (label, name) in classNames.enumerated() {
            let images = train.subset(train.labels.indices.filter { train.labels[$0] == label })
            let t0 = Date()
            let (pixels, strip) = try trainGAN(dataset: dataset.name, className: name, images: images, count: perClass, observe)
            ganSeconds[name] = Date().timeIntervalSince(t0)
            synthetic += pixels; syntheticLabels += Array(repeating: label, count: perClass)
            strips.append(strip)
        }
        let augmented = LabeledImages(
            classNames: classNames, channels: train.channels, height: train.height, width: train.width,
            pixels: train.pixels + synthetic, labels: train.labels + syntheticLabels,
            sources: train.sources + syntheticLabels.indices.map { SampleSource(location: "synthetic #\($0)", sha256: "") })

        let original = try trainClassifier(run: "\(dataset.name) original", train: train, val: val, test: test, observe)
        let withSynthetic = try trainClassifier(run: "\(dataset.name) synthetic", train: augmented, val: val, test: test, observe)
        let counts = { (set: LabeledImages) in Dictionary(uniqueKeysWithValues: zip(set.classNames, set.classCounts)) }
        return PaperResult(
            dataset: dataset, classNames: classNames, selection: split.selection?.description ?? "",
            splitCounts: ["train": counts(train), "val": counts(val), "test": counts(test)],
            syntheticPerClass: perClass, original: original, synthetic: withSynthetic, strips: strips,
            ganSeconds: ganSeconds, seconds: Date().timeIntervalSince(start), warnings: split.warnings)
    }

    /// Trains one class's DCGAN the paper's way and returns `count` images in [0, 1] (NCHW) and
    /// its Fig. 5 strip (8 fixed-noise samples at each grid point of training).
    func trainGAN(
        dataset: String, className: String, images: LabeledImages, count: Int,
        _ observe: (PaperEvent) -> Void
    ) throws -> ([Float], SampleStrip) {
        let name = "\(dataset) \(className)"
        observe(.stage("\(name): DCGAN on \(images.count) training images, \(settings.ganSteps) steps"))
        let config = try DCGANConfig(
            imageSize: images.height, channels: images.channels, generatorWidth: settings.ganWidth,
            discriminatorWidth: settings.ganWidth)
        var options = GANTrainingOptions()
        options.batchSize = min(settings.ganBatchSize, images.count)
        options.diffAugment = nil  // the paper's recipe: a plain DCGAN
        options.emaDecay = nil
        var plan = GANTrainingPlan()
        let stepsPerEpoch = max(1, images.count / options.batchSize)
        plan.maxSteps = settings.ganSteps
        plan.epochs = (settings.ganSteps + stepsPerEpoch - 1) / stepsPerEpoch
        plan.gridEvery = max(1, plan.epochs / settings.stages)
        plan.checkpointEvery = settings.ganSteps
        let data = GANTrainingData(
            pixels: images.pixels.map { $0 * 2 - 1 }, count: images.count, channels: images.channels,
            size: images.height, labels: nil, classNames: [className])
        let directory = output.appendingPathComponent(dataset).appendingPathComponent("gan").appendingPathComponent(className)
        let model = GANModel(config: config, options: options, seed: 0)
        let trainer = try GANTrainer(model: model, data: data, plan: plan, outputDirectory: directory)
        // Fixed noise for the strip, drawn apart from the model's own streams.
        var g = SeededGenerator(seed: 0xF165)
        let latent = Tensor.randomNormal([8, config.latent, 1, 1], generator: &g)
        var rows: [Tensor] = [], steps: [Int] = [], failure: Error?
        try trainer.run { event in
            switch event {
            case let .step(_, _, _, global, total, _, _, eta):
                observe(.ganStep(name: name, step: global, total: total, etaSeconds: eta))
            case .grid:
                guard steps.last != trainer.globalStep else { return }
                do { rows.append(try model.sample(latent: latent)); steps.append(trainer.globalStep) } catch { failure = error }
            default: break
            }
        }
        if let failure { throw failure }
        let grid = ImageGrid.compose(try Tensor.concat(rows, axis: 0), columns: 8, scale: images.height < 64 ? 2 : 1)
        let png = try encodePNG(pixels: grid.pixels, width: grid.width, height: grid.height, channels: grid.channels)
        var pixels: [Float] = []
        pixels.reserveCapacity(count * images.channels * images.height * images.width)
        for start in stride(from: 0, to: count, by: 64) {
            let n = min(64, count - start)
            pixels += try model.sample(latent: model.sampleLatent(max(n, 2))).scalars
                .prefix(n * images.channels * images.height * images.width).map { min(1, max(0, ($0 + 1) / 2)) }
        }
        return (pixels, SampleStrip(className: className, steps: steps, png: png))
    }

    /// The paper CNN on `train`, every epoch to the end; the last epoch's curves and test scores.
    func trainClassifier(
        run: String, train: LabeledImages, val: LabeledImages, test: LabeledImages,
        _ observe: (PaperEvent) -> Void
    ) throws -> PaperRun {
        observe(.stage("\(run): paper CNN on \(train.count) training images, \(settings.epochs) epochs"))
        let config = try ClassifierConfig(
            arch: .paperCNN, imageSize: train.height, channels: train.channels,
            classes: train.classNames.count)
        var options = TrainingOptions()
        options.epochs = settings.epochs; options.batchSize = settings.batchSize; options.learningRate = settings.learningRate
        options.patience = settings.epochs  // no early stopping
        options.seed = 0
        let start = Date()
        let trainer = try ClassifierTrainer(config: config, options: options, train: train, val: val)
        let history = try trainer.run(
            keepLastEpoch: true,
            progress: { event in
                if case let .epoch(r, _) = event {
                    observe(
                        .epoch(
                            run: run, epoch: r.epoch, epochs: options.epochs, trainAccuracy: r.trainAccuracy,
                            valAccuracy: r.valAccuracy))
                }
            })
        let last = history.epochs.last!
        return PaperRun(
            trainImages: train.count, trainAccuracy: last.trainAccuracy, valAccuracy: last.valAccuracy,
            test: try evaluate(trainer.model, on: test), curves: history.epochs,
            seconds: Date().timeIntervalSince(start))
    }
}

/// Errors of the replica, each naming what is wrong.
public enum PaperError: Error, CustomStringConvertible, Equatable {
    case invalid(String)

    public var description: String {
        switch self {
        case .invalid(let s): return "paper replica: \(s)"
        }
    }
}
