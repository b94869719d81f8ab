import ArgumentParser
import Datasets
import GAN
import Workflows

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
        var spec = BalanceSpec(data: data, checkpoints: checkpoints)
        spec.selection = try selection.selection(seed: seed); spec.generator = generator; spec.seed = seed
        spec.options.target = target; spec.options.maxSyntheticRatio = maxSyntheticRatio
        spec.options.selection = select; spec.options.candidatesFactor = candidatesFactor
        var progress = ProgressLine()
        try refusedAsInvalid { try spec.write(to: out) { progress.show($0) } }
    }
}

extension SyntheticSelection: ExpressibleByArgument {}

extension BalanceTarget: ExpressibleByArgument {
    /// `majority` or a positive number.
    public init?(argument: String) { self.init(argument) }
}
