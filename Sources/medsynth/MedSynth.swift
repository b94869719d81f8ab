import ArgumentParser

@main
struct MedSynth: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "medsynth",
        abstract: "GAN augmentation for imbalanced medical image datasets, on a plain CPU.",
        subcommands: [DataCommand.self, GANCommand.self, BenchCommand.self, RunsCommand.self, ModelsCommand.self,
                      ServeCommand.self])
}
