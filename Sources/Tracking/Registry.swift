import Foundation
import GRDB

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
    public func register(runID: String, name: String, artifactPath: String? = nil) throws -> ModelVersion {
        let run = try run(runID)
        var artifact = try artifacts(of: run.id).last { $0.kind == "model" }
        if let artifactPath {
            let absolute = URL(fileURLWithPath: artifactPath).standardizedFileURL.path
            artifact = try artifacts(of: run.id).last { $0.path == absolute }
                ?? addArtifact(runID: run.id, path: absolute, kind: "model")
        }
        guard let artifact else {
            throw TrackingError.noArtifact(runID: run.id, reason: "no 'model' artifact recorded; pass --artifact")
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

    /// The last recorded value of each metric of a run.
    public func lastMetricValues(of runID: String) throws -> [String: Double] {
        var last: [String: Double] = [:]
        for point in try metrics(of: runID) { last[point.name] = point.value }  // ordered by step
        return last
    }

    /// Points `alias` of `name` at `version` (which must exist).
    public func setAlias(_ alias: ModelAlias, name: String, version: Int) throws {
        _ = try model(name: name, version: version)
        try write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO alias (name, alias, version) VALUES (?, ?, ?)",
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
