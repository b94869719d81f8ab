import ArgumentParser
import Datasets
import Foundation
import GAN

struct BalanceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "balance",
        abstract:
            "Top up the minority classes of a training split with synthetic images (GAN or diffusion); write a class-folder tree and a manifest."
    )
    @Option(help: "Class-folder tree or MedMNIST .npz.") var data: String
    @OptionGroup var selection: ClassSelectionOptions
    @Option(
        name: .customLong("gan"),
        help: "A checkpoint from gan train, GAN or diffusion (repeat: per-class or conditional models).")
    var checkpoints: [String]
    @Option(help: "Images per class: majority or a number (1...10000000).") var target: BalanceTarget = .majority
    @Option(help: Ranges.ratio.help("At most this many synthetic images per real image of a class (default unlimited)."))
    var maxSyntheticRatio: Double?
    @Option(help: "none, or discriminator (keep the candidates D scores highest; GAN checkpoints only).")
    var select: SyntheticSelection = .none
    @Option(help: "dcgan, cdcgan or diffusion: refuse checkpoints of another family (default: whatever each holds).")
    var generator: GeneratorFamily?
    @Option(help: Ranges.candidatesFactor.help("With --select discriminator: candidates generated per image kept."))
    var candidatesFactor = 4
    @Option(help: "Split seed (as for gan train) and base seed of generation.") var seed: UInt64 = 0
    @Option(help: "Output folder (must not hold a balanced set yet).") var out: String

    func validate() throws {
        if checkpoints.isEmpty { throw ValidationError("give at least one --gan checkpoint") }
        if case .count(let n) = target, n > 10_000_000 {
            throw ValidationError("--target \(n) is out of range: it must be in 1...10000000")
        }
        try Ranges.candidatesFactor.check(candidatesFactor, "--candidates-factor")
        try Ranges.ratio.check(maxSyntheticRatio, "--max-synthetic-ratio")
    }

    func run() throws {
        let sources = try checkpoints.map { try openGenerator(checkpoint: $0, expected: generator) }
        let first = sources[0]
        let progress = ProgressLine()
        for s in sources where s.trainingSeed != seed {
            progress.note(
                "warning: \(s.url.path) was trained on the split of seed \(s.trainingSeed), not \(seed): "
                    + "its training images may lie in this split's validation or test set")
        }
        let options = LoadOptions(
            preprocessing: Preprocessing(
                imageSize: first.imageSize, channels: first.channels,
                scaling: .symmetric),
            selection: try selection.selection(seed: seed))
        let train = try makeSplits(loadDataset(at: data, options: options), seed: seed).subset(.train)
        var balance = BalanceOptions()
        balance.target = target
        balance.maxSyntheticRatio = maxSyntheticRatio
        balance.selection = select; balance.candidatesFactor = candidatesFactor; balance.seed = seed
        let set = try balanceTrainingSet(train, scaling: .symmetric, sources: sources, options: balance)
        set.warnings.forEach { progress.note("warning: \($0)") }
        try writeBalancedSet(set, scaling: .symmetric, to: out)
        for c in set.perClass {
            progress.note(
                "\(c.className): \(c.real) real + \(c.synthetic) synthetic"
                    + (c.checkpoint.map { " (\($0))" } ?? ""))
        }
        progress.note("\(set.count) images -> \(out) (manifest.jsonl)")
    }
}

extension SyntheticSelection: ExpressibleByArgument {}

extension BalanceTarget: ExpressibleByArgument {
    /// `majority` or a positive number.
    public init?(argument: String) { self.init(argument) }
}
