import Foundation
import GRDB
import Hashing

/// The two deployment roles a model version can hold.
public enum ModelAlias: String, Codable, Sendable, CaseIterable {
    case champion, challenger
}

/// The model registry: named models with auto-incremented versions, lineage and aliases.
extension RunStore {
    /// Registers a run's model file as the next version of `name`.
    ///
    /// The file is `artifactPath` (recorded as a `model` artifact of the run if it is not one
    /// yet) or else the run's last `model` artifact. Lineage copied from the run: its id, data
    /// manifest hash, the last value of each metric, and its `reference-stats` artifact.
    ///
    /// Refuses a name outside `modelNamePattern`, and an `artifactPath` that is not the run's own
    /// model file: a `.safetensors` regular file recorded by the run, or lying in the folder of
    /// one of its recorded artifacts (its output folder). A recorded artifact must still hash to
    /// its recorded SHA-256.
    public func register(runID: String, name: String, artifactPath: String? = nil) throws -> ModelVersion {
        try Self.validateModelName(name)
        let run = try run(runID)
        let recorded = try artifacts(of: run.id)
        var artifact = recorded.last { $0.kind == "model" }
        if let artifactPath {
            let absolute = URL(fileURLWithPath: artifactPath).standardizedFileURL.path
            if let known = recorded.last(where: { $0.path == absolute && $0.kind == "model" }) {
                artifact = known
            } else {
                try checkRunOwnsModelFile(absolute, run: run.id, recorded: recorded)
                artifact = try addArtifact(runID: run.id, path: absolute, kind: "model")
            }
        }
        guard let artifact else {
            throw TrackingError.noArtifact(runID: run.id, reason: "no 'model' artifact recorded; pass --artifact")
        }
        let actual = try hashFile(artifact.path)
        guard actual == artifact.sha256 else {
            throw TrackingError.artifactChanged(
                model: "run \(run.id)", path: artifact.path, expected: artifact.sha256, actual: actual)
        }
        var reference: String?
        if let stats = try artifacts(of: run.id).last(where: { $0.kind == "reference-stats" }) {
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: stats.path)) } catch {
                throw TrackingError.unreadableArtifact(path: stats.path, reason: error.localizedDescription)
            }
            do { _ = try JSONDecoder().decode(ReferenceStats.self, from: data) } catch {
                throw TrackingError.unreadableArtifact(path: stats.path, reason: "not ReferenceStats JSON: \(error)")
            }
            reference = String(decoding: data, as: UTF8.self)
        }
        let metrics = try lastMetricValues(of: run.id)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let metricsJSON = String(decoding: try encoder.encode(metrics), as: UTF8.self)
        return try write { db in
            let latest = try Int.fetchOne(db, sql: "SELECT MAX(version) FROM model WHERE name = ?", arguments: [name])
            let model = ModelVersion(
                name: name, version: (latest ?? 0) + 1, runID: run.id, artifactPath: artifact.path,
                artifactSHA256: artifact.sha256, dataManifestHash: run.dataManifestHash, metrics: metricsJSON,
                reference: reference, created: Date())
            try model.insert(db)
            // NOTE: read back, so the caller sees dates at the precision SQLite keeps (milliseconds).
            return try ModelVersion.fetchOne(db, key: ["name": name, "version": model.version]) ?? model
        }
    }

    /// The documented model-name pattern: a letter or digit, then letters, digits, `.`, `_` or `-`,
    /// 64 characters at most (no `/`, no `..`, no spaces or control characters).
    public static let modelNamePattern = "[A-Za-z0-9][A-Za-z0-9._-]{0,63}, without \"..\""

    /// Throws unless `name` matches `modelNamePattern`.
    public static func validateModelName(_ name: String) throws {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        let reason: String? =
            name.isEmpty
            ? "empty"
            : name.count > 64
                ? "longer than 64 characters"
                : !(name.first!.isASCII && (name.first!.isLetter || name.first!.isNumber))
                    ? "must start with a letter or digit"
                    : name.contains("..")
                        ? "contains \"..\""
                        : name.first(where: { !allowed.contains($0) }).map { "contains \(String(reflecting: String($0)))" }
        if let reason { throw TrackingError.invalidModelName(name, reason: reason) }
    }

    /// Refuses a file that is not a model file of the run: not a regular `.safetensors` file, or
    /// outside every folder the run recorded artifacts in.
    func checkRunOwnsModelFile(_ path: String, run: String, recorded: [Artifact]) throws {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw TrackingError.notARunArtifact(path: path, runID: run, reason: "not a regular file")
        }
        guard path.hasSuffix(".safetensors") else {
            throw TrackingError.notARunArtifact(path: path, runID: run, reason: "not a .safetensors model file")
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let runFolders = Set(recorded.map { URL(fileURLWithPath: $0.path).deletingLastPathComponent().path })
        guard runFolders.contains(folder) else {
            let known =
                runFolders.isEmpty ? "it recorded no files" : "its files are in \(runFolders.sorted().joined(separator: ", "))"
            throw TrackingError.notARunArtifact(path: path, runID: run, reason: "outside the run's output folders (\(known))")
        }
    }

    /// Checks that a registered version's file still hashes to the SHA-256 recorded when it was
    /// registered; called wherever a registered artifact is loaded (serving, model cards).
    public func verifyArtifact(_ model: ModelVersion) throws {
        let actual = try hashFile(model.artifactPath)
        guard actual == model.artifactSHA256 else {
            throw TrackingError.artifactChanged(
                model: model.label, path: model.artifactPath, expected: model.artifactSHA256,
                actual: actual)
        }
    }

    /// The registered versions whose artifact is the file at `path` (a writer refuses to replace it).
    public func models(withArtifactAt path: String) throws -> [ModelVersion] {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        return try read { db in try ModelVersion.filter(Column("artifactPath") == absolute).fetchAll(db) }
    }

    /// Throws when `path` is the registered artifact of some model version.
    public func refuseOverwritingRegistered(_ path: String) throws {
        let models = try models(withArtifactAt: path)
        if !models.isEmpty {
            throw TrackingError.registeredArtifact(
                path: URL(fileURLWithPath: path).standardizedFileURL.path,
                models: models.map(\.label))
        }
    }

    func hashFile(_ path: String) throws -> String {
        do { return sha256Hex(try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)) } catch {
            throw TrackingError.unreadableArtifact(path: path, reason: error.localizedDescription)
        }
    }

    /// The last recorded value of each metric of a run.
    public func lastMetricValues(of runID: String) throws -> [String: Double] {
        var last: [String: Double] = [:]
        for point in try metrics(of: runID) { last[point.name] = point.value }  // ordered by step
        return last
    }

    /// Points `alias` of `name` at `version` (which must exist).
    public func setAlias(_ alias: ModelAlias, name: String, version: Int) throws {
        try Self.validateModelName(name)
        _ = try model(name: name, version: version)
        try write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO alias (name, alias, version) VALUES (?, ?, ?)",
                arguments: [name, alias.rawValue, version])
        }
    }

    /// One registered version.
    public func model(name: String, version: Int) throws -> ModelVersion {
        guard let model = try read({ try ModelVersion.fetchOne($0, key: ["name": name, "version": version]) })
        else { throw TrackingError.unknownModel(name: name, version: version) }
        return model
    }

    /// Resolves `NAME@ALIAS`, `NAME@VERSION` or `NAME` (the latest version).
    public func resolve(_ reference: String) throws -> ModelVersion {
        let parts = reference.split(separator: "@", maxSplits: 1).map(String.init)
        let name = parts.first ?? ""
        guard parts.count == 2 else {
            guard let latest = try models(name: name).last else { throw TrackingError.unknownModel(name: name, version: nil) }
            return latest
        }
        if let version = Int(parts[1]) { return try model(name: name, version: version) }
        guard let version = try aliases(name: name)[parts[1]] else {
            throw TrackingError.unknownAlias(name: name, alias: parts[1])
        }
        return try model(name: name, version: version)
    }

    /// All versions (of one name, or of all), ordered by name then version.
    public func models(name: String? = nil) throws -> [ModelVersion] {
        try read { db in
            var request = ModelVersion.order(Column("name"), Column("version"))
            if let name { request = request.filter(Column("name") == name) }
            return try request.fetchAll(db)
        }
    }

    /// The aliases of a model name: alias -> version.
    public func aliases(name: String) throws -> [String: Int] {
        try read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT alias, version FROM alias WHERE name = ?", arguments: [name])
            return Dictionary(uniqueKeysWithValues: rows.map { ($0["alias"] as String, $0["version"] as Int) })
        }
    }
}
