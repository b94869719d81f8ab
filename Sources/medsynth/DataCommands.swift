import ArgumentParser
import Benchmarks
import CommandOptions
import Foundation
import Workflows

/// `medsynth data ...`: look at and fetch datasets.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Inspect and fetch datasets.",
        subcommands: [Inspect.self, Fetch.self, Bench.self])

    struct Inspect: ParsableCommand, OptionsCommand {
        static let configuration = CommandConfiguration(
            abstract: "Counts per class and split, imbalance, image shapes and unreadable files.")
        @OptionGroup var options: InspectOptions

        func run() throws {
            let report = try options.report()
            print(options.json ? try prettyJSON(report) : report.text)
            // The report is printed whole first; a tree with problems then fails, for scripts and CI.
            if !report.problems.isEmpty {
                FileHandle.standardError.write(Data("\(options.path): \(report.problems.count) problem(s) found\n".utf8))
                throw ExitCode.failure
            }
        }
    }

    struct Fetch: AsyncParsableCommand, OptionsCommand {
        static let configuration = CommandConfiguration(abstract: "Download a MedMNIST .npz (MD5-checked) into the cache.")
        @OptionGroup var options: FetchOptions

        func run() async throws { print(try await options.fetch()) }
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

        func run() throws { print(try DecodeBenchmark.run(classFolders: path, imageSize: imageSize, repeats: repeats).summary) }
    }
}

/// `medsynth audit`: quality (KID, FD, precision/recall/density/coverage, diversity) and
/// memorization of synthetic images, per class, against the real data's training split.
struct AuditCommand: ParsableCommand, OptionsCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Audit synthetic images: quality metrics and nearest-training-image memorization checks, per class.")
    @OptionGroup var options: AuditCommandOptions

    func run() throws {
        let progress = ProgressLine()
        try options.run { progress.note($0) }
        progress.note("wrote \(options.out)/audit.json and \(options.out)/audit.html")
    }
}

/// `medsynth balance`: top up minority classes with synthetic images.
struct BalanceCommand: ParsableCommand, OptionsCommand {
    static let configuration = CommandConfiguration(
        commandName: "balance",
        abstract:
            "Top up the minority classes of a training split with synthetic images (GAN or diffusion); write a class-folder tree and a manifest."
    )
    @OptionGroup var options: BalanceCommandOptions

    func run() throws {
        var progress = ProgressLine()
        try options.write { progress.show($0) }
    }
}
