import ArgumentParser
import Benchmarks
import Datasets
import Foundation
import Workflows

/// `medsynth data ...`: look at and fetch datasets. Self-contained: list `DataCommand.self`
/// among the root command's subcommands (the root must be an `AsyncParsableCommand`, as
/// `fetch` is async).
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Inspect and fetch datasets.",
        subcommands: [Inspect.self, Fetch.self, Bench.self])

    /// Options shared by commands that load a dataset.
    struct LoadingOptions: ParsableArguments {
        @Option(help: Ranges.imageSize.help("Side length images are resized to.")) var imageSize = 28
        @Option(help: "Output channels, 1 or 3 (default: as stored).") var channels: Int?
        @OptionGroup var selection: ClassSelectionOptions
        @Flag(help: "Fail on the first unreadable image instead of skipping it.") var strict = false
        @OptionGroup var limits: ReadLimits

        func validate() throws { try Ranges.imageSize.check(imageSize, "--image-size"); try checkChannels(channels) }

        func loadOptions(seed: UInt64) throws -> LoadOptions {
            LoadOptions(
                preprocessing: Preprocessing(imageSize: imageSize, channels: channels), strict: strict,
                selection: try selection.selection(seed: seed), maxReadBytes: limits.maxReadBytes)
        }
    }

    /// How much a reader may read or inflate (one image file, one `.npz`).
    struct ReadLimits: ParsableArguments {
        @Option(help: Ranges.readBytes.help("Most bytes read from one image file or inflated from one .npz."))
        var maxReadBytes = defaultMaxArchiveBytes

        func validate() throws { try Ranges.readBytes.check(maxReadBytes, "--max-read-bytes") }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Counts per class and split, imbalance, image shapes and unreadable files.")

        @Argument(help: "A class-folder tree or a MedMNIST .npz.") var path: String
        @OptionGroup var loading: LoadingOptions
        @Option(help: "train:val:test ratio for data without its own splits.") var ratio = "8:1:1"
        @Option(help: "Seed of the stratified split and of --subsample.") var seed: UInt64 = 0
        @Flag(help: "Print the report as JSON.") var json = false

        func run() throws {
            let report = try inspectDataset(
                at: path, options: loading.loadOptions(seed: seed),
                ratio: SplitRatio(parsing: ratio), seed: seed)
            print(json ? try prettyJSON(report) : report.text)
            // The report is printed whole first; a tree with problems then fails, for scripts and CI.
            if !report.problems.isEmpty {
                FileHandle.standardError.write(Data("\(path): \(report.problems.count) problem(s) found\n".utf8))
                throw ExitCode.failure
            }
        }
    }

    struct Fetch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download a MedMNIST .npz (MD5-checked) into the cache.")

        @Argument(help: "Dataset name, e.g. pneumoniamnist.") var name: String
        @Option(help: "Image size: 28, 64, 128 or 224.") var size = 28

        func validate() throws {
            if ![28, 64, 128, 224].contains(size) {
                throw ValidationError("--size \(size) is not published: use 28, 64, 128 or 224")
            }
        }
        @Option(help: "Cache folder (default ~/.cache/medsynth).") var cache: String?
        @Option(help: "Download from this URL instead of Zenodo.") var url: String?
        @Option(help: "Expected MD5 (default: the published one).") var md5: String?

        func run() async throws {
            let result = try await fetchMedMNIST(
                name: name, size: size, cacheDirectory: cache ?? defaultCacheDirectory,
                url: url, md5: md5)
            let state = result.downloaded ? "downloaded" : "already cached"
            print("\(result.path) (\(state); md5 \(result.md5)\(result.verified ? " verified" : ", NOT verified"))")
        }
    }

    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time decoding + resizing every image of a class folder.", shouldDisplay: false)

        @Argument(help: "A class-folder tree.") var path: String
        @Option(help: Ranges.imageSize.help("Side length images are resized to.")) var imageSize = 28
        @Option(help: Ranges.repeats.help("Timed passes.")) var repeats = 5

        func validate() throws {
            try Ranges.imageSize.check(imageSize, "--image-size"); try Ranges.repeats.check(repeats, "--repeats")
        }

        func run() throws {
            print(try DecodeBenchmark.run(classFolders: path, imageSize: imageSize, repeats: repeats).summary)
        }
    }
}
