import Foundation
import GRDB

/// What a run did: train a classifier, train a GAN, or run a whole experiment.
public enum RunKind: String, Codable, Sendable, CaseIterable {
    case train, gan, experiment
}

/// Where a run stands. `interrupted` is never written by a live process: a run left `running`
/// by a process that is gone is *shown* as interrupted (see `RunStore.effectiveStatus`).
public enum RunStatus: String, Codable, Sendable, CaseIterable {
    case running, finished, failed, interrupted
}

/// One row of the `run` table.
public struct Run: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    /// The SQLite table.
    public static let databaseTableName = "run"
    /// Sortable, unique id: `yyyyMMdd-HHmmss-` + 6 random hex digits.
    public var id: String
    /// What the run did.
    public var kind: RunKind
    /// The command line, arguments joined by spaces.
    public var commandLine: String
    /// The run's configuration as JSON (sorted keys).
    public var config: String
    /// `git rev-parse HEAD` of the code, when it ran inside a git work tree.
    public var codeCommit: String?
    /// Whether tracked files differed from `codeCommit`.
    public var codeDirty: Bool?
    /// SHA-256 of the data manifest the run read.
    public var dataManifestHash: String?
    /// The run's seed (a UInt64 bit pattern: SQLite integers are signed).
    public var seed: Int64?
    /// When the run started.
    public var started: Date
    /// When it finished or failed; nil while running (or after a crash).
    public var ended: Date?
    /// As written; readers get `RunStore.effectiveStatus`.
    public var status: RunStatus
    /// The process that wrote the run, to tell a killed run from a live one.
    public var pid: Int32
    /// The host of that process (a pid means nothing on another machine).
    public var host: String
}

/// One value of one metric at one step.
public struct MetricPoint: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    /// The SQLite table.
    public static let databaseTableName = "metric"
    /// The run it belongs to.
    public var runID: String
    public var name: String
    /// Epoch, iteration or any increasing index.
    public var step: Int
    /// The value at that step.
    public var value: Double
}

/// A file a run produced, identified by its content hash.
public struct Artifact: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    /// The SQLite table.
    public static let databaseTableName = "artifact"
    /// The run it belongs to.
    public var runID: String
    /// Absolute path at the time it was recorded.
    public var path: String
    /// Free-form role: `model`, `reference-stats`, `grid`, `checkpoint`, ...
    public var kind: String
    /// Lower-case hex SHA-256 of the content when recorded.
    public var sha256: String
    /// Size in bytes when recorded.
    public var bytes: Int64
}

/// Something worth a person's attention: a training alarm or a drift event.
public struct Event: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    /// The SQLite table.
    public static let databaseTableName = "event"
    /// Row id, set on insertion.
    public var id: Int64?
    /// The run it belongs to (training alarms), if any.
    public var runID: String?
    /// The model it is about (drift events), as `name@version`, if any.
    public var model: String?
    /// `alarm`, `drift`, `retrain`, ...
    public var kind: String
    /// What happened, in one line.
    public var message: String
    /// When it happened.
    public var time: Date

    /// Creates an event (its id comes with insertion).
    public init(runID: String? = nil, model: String? = nil, kind: String, message: String, time: Date = Date()) {
        self.runID = runID
        self.model = model
        self.kind = kind
        self.message = message
        self.time = time
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// One registered version of a named model, with its lineage.
public struct ModelVersion: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    /// The SQLite table.
    public static let databaseTableName = "model"
    public var name: String
    /// 1, 2, 3, ... per name.
    public var version: Int
    /// The run it belongs to.
    public var runID: String
    /// The weights file.
    public var artifactPath: String
    /// SHA-256 of the weights when the run recorded them.
    public var artifactSHA256: String
    public var dataManifestHash: String?
    /// The run's last value of each metric, as JSON `{name: value}`.
    public var metrics: String
    /// Training-set statistics for drift monitoring (`ReferenceStats` JSON), if the run recorded them.
    public var reference: String?
    /// When the version was registered.
    public var created: Date

    /// `name@version`.
    public var label: String { "\(name)@\(version)" }
}

/// Everything that can go wrong in the run store and the registry; each case names what it is about.
public enum TrackingError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownRun(String)
    case unknownModel(name: String, version: Int?)
    case unknownAlias(name: String, alias: String)
    case noArtifact(runID: String, reason: String)
    case unreadableArtifact(path: String, reason: String)
    case invalidConfig(reason: String)
    case database(path: String, reason: String)
    /// A model name outside the documented pattern (`RunStore.modelNamePattern`).
    case invalidModelName(String, reason: String)
    /// A file offered as a model is not one of the run's own model files.
    case notARunArtifact(path: String, runID: String, reason: String)
    /// A registered artifact's bytes no longer hash to the SHA-256 recorded at registration.
    case artifactChanged(model: String, path: String, expected: String, actual: String)
    /// A write would replace the file behind a registered model version.
    case registeredArtifact(path: String, models: [String])

    public var description: String {
        switch self {
        case .unknownRun(let id): "no run with id '\(id)'"
        case .unknownModel(let name, let version?): "no model '\(name)' version \(version)"
        case .unknownModel(let name, nil): "no model named '\(name)'"
        case .unknownAlias(let name, let alias): "model '\(name)' has no alias '\(alias)'"
        case .noArtifact(let id, let reason): "run '\(id)': \(reason)"
        case .unreadableArtifact(let path, let reason): "\(path): \(reason)"
        case .invalidConfig(let reason): "run configuration: \(reason)"
        case .database(let path, let reason): "\(path): \(reason)"
        case .invalidModelName(let name, let reason):
            "invalid model name \(String(reflecting: name)): \(reason) (names are \(RunStore.modelNamePattern))"
        case .notARunArtifact(let path, let id, let reason): "\(path) is not a model file of run '\(id)': \(reason)"
        case .artifactChanged(let model, let path, let expected, let actual):
            "\(model): \(path) has changed since it was registered (sha256 \(actual.prefix(12)), registered \(expected.prefix(12))); "
                + "register the new file as a new version instead"
        case .registeredArtifact(let path, let models):
            "\(path) is the registered artifact of \(models.joined(separator: ", ")); write elsewhere (another --out)"
        }
    }
}
