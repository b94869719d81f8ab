import ArgumentParser
import Datasets
import Foundation
import Serving
import Tracking
import Workflows

/// Where runs and models are stored; a command that records its run adds it with `@OptionGroup`
/// and hands `storeUnlessNoTrack()` to the library function, which records into it.
struct TrackingOptions: ParsableArguments {
    @Option(help: "Run store (SQLite; default $MEDSYNTH_STORE or runs/medsynth.sqlite).")
    var store: String = ProcessInfo.processInfo.environment["MEDSYNTH_STORE"] ?? "runs/medsynth.sqlite"
    @Flag(help: "Do not record this run in the store.") var noTrack = false

    func open() throws -> RunStore { try RunStore(path: store) }

    /// Refuses to write `path` when it is the file behind a registered model version (the
    /// registry would then serve other weights under the old name and hash).
    func refuseOverwritingRegistered(_ path: String) throws {
        guard FileManager.default.fileExists(atPath: store) else { return }
        try open().refuseOverwritingRegistered(path)
    }

    /// The run store, or nil with `--no-track` (the library functions record into a store when given one).
    func storeUnlessNoTrack() throws -> RunStore? { noTrack ? nil : try open() }
}

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

extension RunKind: ExpressibleByArgument {}
extension ModelAlias: ExpressibleByArgument {}

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
            if let out { try writeFileAtomically(Array(card.utf8), to: out) } else { print(card) }
        }
    }
}

/// `medsynth serve`: the inference server.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve a registered model over HTTP (Open Inference Protocol v2, web page at /).")
    @OptionGroup var tracking: TrackingOptions
    @Option(help: "NAME@ALIAS, NAME@VERSION or NAME (latest).") var model: String
    @Option var host = "127.0.0.1"
    @Option(help: Ranges.port.help("TCP port (0: any free port).")) var port = 8080
    @Option(help: "Bearer token for /admin routes (off without it).") var adminToken: String?
    @Option(help: "Shell command run once on drift; its last line must be MEDSYNTH_RUN_ID=<id>.") var retrainCommand: String?
    @Option(help: Ranges.maxBodyBytes.help("Largest request body in bytes.")) var maxBodyBytes = 8 << 20
    @Option(help: Ranges.maxImagePixels.help("Largest image in pixels (checked before decoding).")) var maxImagePixels =
        1024 * 1024
    @Option(
        help: Ranges.maxConcurrent.help(
            "Inference requests admitted at once (receiving, queued or computing); more get 503 with Retry-After."))
    var maxConcurrent = 16
    @Option(
        help: Ranges.inferenceThreads.help(
            "Threads that decode requests and run the model (default: one per core, at most 8)."))
    var inferenceThreads = ServingLimits.defaultInferenceThreads
    @Option(help: Ranges.requestTimeout.help("Seconds to receive a request body (408 after).")) var requestTimeout = 10
    @Option(
        help: Ranges.headerTimeout.help(
            "Seconds to receive a request's line and headers, from connect or the previous response (408 and close after)."))
    var headerTimeout = 10
    @Option(help: Ranges.driftWindow.help("Predictions in the drift window.")) var driftWindow = 200

    func validate() throws {
        try Ranges.port.check(port, "--port"); try Ranges.maxBodyBytes.check(maxBodyBytes, "--max-body-bytes")
        try Ranges.maxImagePixels.check(maxImagePixels, "--max-image-pixels")
        try Ranges.maxConcurrent.check(maxConcurrent, "--max-concurrent")
        try Ranges.inferenceThreads.check(inferenceThreads, "--inference-threads")
        try Ranges.requestTimeout.check(requestTimeout, "--request-timeout")
        try Ranges.headerTimeout.check(headerTimeout, "--header-timeout")
        try Ranges.driftWindow.check(driftWindow, "--drift-window")
    }

    func run() async throws {
        let limits = ServingLimits(
            maxBodyBytes: maxBodyBytes, maxImagePixels: maxImagePixels, requestTimeout: .seconds(requestTimeout),
            headerTimeout: .seconds(headerTimeout), maxConcurrentInferences: maxConcurrent,
            inferenceThreads: inferenceThreads)
        try await serve(
            model: model, store: tracking.open(), host: host, port: port, limits: limits, adminToken: adminToken,
            retrainCommand: retrainCommand, driftWindow: driftWindow
        ) { FileHandle.standardError.write(Data("\($0)\n".utf8)) }
    }
}
