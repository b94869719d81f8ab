import ArgumentParser

@main
struct MedSynth: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "medsynth",
        abstract: "GAN augmentation for imbalanced medical image datasets, on a plain CPU.",
        subcommands: [BenchCommand.self])
}
