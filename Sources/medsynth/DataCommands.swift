import ArgumentParser
import Datasets

/// `medsynth data ...`: look at and fetch datasets.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "data", abstract: "Inspect and fetch datasets.")
}
