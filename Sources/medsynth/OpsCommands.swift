import ArgumentParser
import AtomicIO
import CommandOptions
import Datasets
import Foundation
import Serving
import Tracking
import Workflows

/// `medsynth runs ...`: the run history.
struct RunsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs", abstract: "List, show and compare recorded runs.", subcommands: [List.self, Show.self, Compare.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The newest runs, newest first.")
        @OptionGroup var tracking: TrackingOptions
        @Option(help: Ranges.limit.help("How many runs.")) var limit = 20
        @Option(help: "Only runs of this kind (train, gan, experiment).") var kind: RunKind?
        @Flag(help: "Print JSON.") var json = false

        func validate() throws { try Ranges.limit.check(limit, "--limit") }

        func run() throws {
            let runs = try tracking.open().runs(limit: limit, kind: kind)
            print(json ? try prettyJSON(runs) : RunReport.table(runs))
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One run: fields, config, last metrics, artifacts, events.")
        @OptionGroup var tracking: TrackingOptions
        @Argument(help: "Run id (or a unique prefix).") var id: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let detail = try tracking.open().detail(of: id)
            print(json ? try prettyJSON(detail) : detail.text)
        }
    }

    struct Compare: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Two runs side by side: differing config, metric deltas.")
        @OptionGroup var tracking: TrackingOptions
        @Argument var first: String
        @Argument var second: String

        func run() throws {
            let store = try tracking.open()
            let a = try store.run(first), b = try store.run(second)
            print(
                RunReport.compare(
                    a, b, metricsA: try store.lastMetricValues(of: a.id), metricsB: try store.lastMetricValues(of: b.id)))
        }
    }
}

/// `medsynth models ...`: the model registry.
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models", abstract: "Register model versions, set aliases, write model cards.",
        subcommands: [Register.self, Alias.self, List.self, Card.self, ExportModel.self])

    struct Register: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a run's model as the next version of NAME.")
        @OptionGroup var tracking: TrackingOptions
        @Argument(help: "Run id (or a unique prefix).") var runID: String
        @Option(help: "Model name.") var name: String
        @Option(help: "Weights file (default: the run's last 'model' artifact).") var artifact: String?

        func run() throws {
            let model = try tracking.open().register(runID: runID, name: name, artifactPath: artifact)
            print("registered \(model.label) from run \(model.runID)")
        }
    }

    struct Alias: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Point champion or challenger at a version.")
        @OptionGroup var tracking: TrackingOptions
        @Argument var name: String
        @Argument(help: Ranges.version.help("Version number.")) var version: Int
        @Argument(help: "champion or challenger.") var alias: ModelAlias

        func validate() throws { try Ranges.version.check(version, "VERSION") }

        func run() throws {
            try tracking.open().setAlias(alias, name: name, version: version)
            print("\(name)@\(alias.rawValue) -> \(version)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every version with its run, aliases and metrics.")
        @OptionGroup var tracking: TrackingOptions
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let store = try tracking.open()
            if json { print(try prettyJSON(try store.models())) } else { try store.modelListing().forEach { print($0) } }
        }
    }

    struct Card: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The Markdown model card of a version.")
        @OptionGroup var tracking: TrackingOptions
        @Argument var name: String
        @Argument(help: Ranges.version.help("Version number.")) var version: Int
        @Option(help: "Write to this file instead of printing.") var out: String?

        func validate() throws { try Ranges.version.check(version, "VERSION") }

        func run() throws {
            let card = try tracking.open().modelCard(name: name, version: version)
            if let out { try AtomicFile.write(Array(card.utf8), to: out) } else { print(card) }
        }
    }
}

/// `medsynth serve`: the inference server.
struct ServeCommand: AsyncParsableCommand, OptionsCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve a registered model over HTTP (Open Inference Protocol v2, web page at /).")
    @OptionGroup var options: ServeOptions

    func run() async throws { try await options.serve { FileHandle.standardError.write(Data("\($0)\n".utf8)) } }
}
