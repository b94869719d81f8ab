import ArgumentParser
import Datasets
import Foundation
import Tracking
import Workflows

// The option groups several commands share (`@OptionGroup`).

/// `--classes` and `--subsample`: the class selection every command that reads a dataset takes.
public struct ClassSelectionOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Classes to keep, in label order: NAME keeps a class, NAME=A+B merges classes A and B into NAME.",
            discussion: "E.g. \"benign=melanocytic_nevus,malignant=melanoma+basal_cell_carcinoma,vascular_lesion\". "
                + "Unlisted classes are dropped.",
            valueName: "selection"))
    public var classes: String?
    @Option(
        help: ArgumentHelp(
            "Keep at most N images of a class (after merging, before splitting; drawn with the split seed).",
            discussion: "E.g. \"benign=1800,normal=235\".", valueName: "CLASS=N,..."))
    public var subsample: String?

    public init() {}

    public func validate() throws {
        do { _ = try selection(seed: 0) } catch let error as DatasetError { throw ValidationError(error.description) }
    }

    /// The selection, or nil when neither option is given.
    public func selection(seed: UInt64) throws -> ClassSelection? {
        guard classes != nil || subsample != nil else { return nil }
        return try ClassSelection(classes: classes, subsample: subsample, seed: seed)
    }
}

/// `--split-seed` and `--ratio`: the split (`makeSplits`) of every command that reads a dataset.
/// Apart from `--seed` (weights, batches, noise), so runs with different seeds on one dataset
/// share one split and no classifier's test image reaches a generator.
public struct SplitOptions: ParsableArguments {
    @Option(
        help: "Seed of the train/val/test split and of --subsample (default 0; the same for every command on a dataset).")
    public var splitSeed: UInt64?
    @Option(help: "train:val:test ratio for data without its own splits (default 8:1:1).") public var ratio: String?

    public init() {}

    public func validate() throws { _ = try givenRatio() }

    /// The ratio given, nil when none was.
    public func givenRatio() throws -> SplitRatio? { try parsedRatio(ratio) }

    /// The split asked for, with the defaults for what was not given.
    public func choice() throws -> SplitChoice {
        SplitChoice(seed: splitSeed ?? 0, ratio: try givenRatio() ?? .standard)
    }
}

/// Where runs and models are stored; a command that records its run adds it with `@OptionGroup`
/// and hands `storeUnlessNoTrack()` to the library function, which records into it.
public struct TrackingOptions: ParsableArguments {
    @Option(help: "Run store (SQLite; default $MEDSYNTH_STORE or runs/medsynth.sqlite).")
    public var store: String = ProcessInfo.processInfo.environment["MEDSYNTH_STORE"] ?? "runs/medsynth.sqlite"
    @Flag(help: "Do not record this run in the store.") public var noTrack = false

    public init() {}

    public func open() throws -> RunStore { try RunStore(path: store) }

    /// Refuses to write `path` when it is the file behind a registered model version (the
    /// registry would then serve other weights under the old name and hash).
    public func refuseOverwritingRegistered(_ path: String) throws {
        guard FileManager.default.fileExists(atPath: store) else { return }
        try open().refuseOverwritingRegistered(path)
    }

    /// The run store, or nil with `--no-track` (the library functions record into a store when given one).
    public func storeUnlessNoTrack() throws -> RunStore? { noTrack ? nil : try open() }
}

/// How much a reader may read or inflate (one image file, one `.npz`).
public struct ReadLimits: ParsableArguments {
    @Option(help: Ranges.readBytes.help("Most bytes read from one image file or inflated from one .npz."))
    public var maxReadBytes = defaultMaxArchiveBytes

    public init() {}

    public func validate() throws { try Ranges.readBytes.check(maxReadBytes, "--max-read-bytes") }
}

/// Options shared by commands that load a dataset.
public struct LoadingOptions: ParsableArguments {
    @Option(help: Ranges.imageSize.help("Side length images are resized to.")) public var imageSize = 28
    @Option(help: "Output channels, 1 or 3 (default: as stored).") public var channels: Int?
    @OptionGroup public var selection: ClassSelectionOptions
    @Flag(help: "Fail on the first unreadable image instead of skipping it.") public var strict = false
    @OptionGroup public var limits: ReadLimits

    public init() {}

    public func validate() throws { try Ranges.imageSize.check(imageSize, "--image-size"); try checkChannels(channels) }

    public func loadOptions(seed: UInt64) throws -> LoadOptions {
        LoadOptions(
            preprocessing: Preprocessing(imageSize: imageSize, channels: channels), strict: strict,
            selection: try selection.selection(seed: seed), maxReadBytes: limits.maxReadBytes)
    }
}

extension RunKind: ExpressibleByArgument {}
extension ModelAlias: ExpressibleByArgument {}
