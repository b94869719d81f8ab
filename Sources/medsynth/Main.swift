import ArgumentParser

/// Minimal root command for this branch; the real `medsynth` main lists `DataCommand` too.
@main
struct Medsynth: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "medsynth", abstract: "Medical-image GAN augmentation.",
        subcommands: [DataCommand.self])
}
