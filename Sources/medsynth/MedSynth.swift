import ArgumentParser

@main
struct MedSynth: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "medsynth",
        abstract: "GAN augmentation for imbalanced medical image datasets, on a plain CPU.",
        subcommands: [
            DataCommand.self, GANCommand.self, BalanceCommand.self, TrainCommand.self, EvaluateCommand.self,
            ExperimentCommand.self, ReproduceCommand.self, AuditCommand.self, PrivacyCommand.self, RunsCommand.self,
            ModelsCommand.self,
            ServeCommand.self, BenchCommand.self,
        ])

    static func main() async {
        OpenMPSettings.reexecIfNeeded()  // before any oneDNN work; see OpenMPSettings
        await main(nil)
    }
}
