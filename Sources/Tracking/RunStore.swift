import Foundation
import GRDB
import Hashing

/// Runs, metrics, artifacts, events and the model registry in one SQLite file.
///
/// The database runs in WAL mode (GRDB's `DatabasePool`) and every write is one transaction,
/// so a process killed mid-write leaves the previous consistent state; readers never block the
/// writer. Several processes may open the same file.
public final class RunStore: Sendable {
    /// The database file.
    public let path: String
    let pool: DatabasePool

    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    public init(path: String) throws {
        self.path = path
        do {
            try FileManager.default.createDirectory(
                at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
            var configuration = Configuration()
            // NOTE: another process (a training run) may hold the write lock for a moment.
            configuration.busyMode = .timeout(10)
            configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
        } catch let error as DatabaseError {
            throw TrackingError.database(path: path, reason: error.message ?? "\(error)")
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "run") { t in
                t.primaryKey("id", .text)
                t.column("kind", .text).notNull()
                t.column("commandLine", .text).notNull()
                t.column("config", .text).notNull()
                t.column("codeCommit", .text)
                t.column("codeDirty", .boolean)
                t.column("dataManifestHash", .text)
                t.column("seed", .integer)
                t.column("started", .datetime).notNull().indexed()
                t.column("ended", .datetime)
                t.column("status", .text).notNull()
                t.column("pid", .integer).notNull()
                t.column("host", .text).notNull()
            }
            try db.create(table: "metric") { t in
                t.column("runID", .text).notNull().references("run", onDelete: .cascade)
                t.column("name", .text).notNull()
                t.column("step", .integer).notNull()
                t.column("value", .double).notNull()
            }
            try db.create(index: "metric_run_name_step", on: "metric", columns: ["runID", "name", "step"])
            try db.create(table: "artifact") { t in
                t.column("runID", .text).notNull().references("run", onDelete: .cascade).indexed()
                t.column("path", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("sha256", .text).notNull()
                t.column("bytes", .integer).notNull()
            }
            try db.create(table: "event") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("runID", .text).references("run", onDelete: .cascade).indexed()
                t.column("model", .text).indexed()
                t.column("kind", .text).notNull()
                t.column("message", .text).notNull()
                t.column("time", .datetime).notNull()
            }
            try db.create(table: "model") { t in
                t.column("name", .text).notNull()
                t.column("version", .integer).notNull()
                t.column("runID", .text).notNull().references("run")
                t.column("artifactPath", .text).notNull()
                t.column("artifactSHA256", .text).notNull()
                t.column("dataManifestHash", .text)
                t.column("metrics", .text).notNull()
                t.column("reference", .text)
                t.column("created", .datetime).notNull()
                t.primaryKey(["name", "version"])
            }
            try db.create(table: "alias") { t in
                t.column("name", .text).notNull()
                t.column("alias", .text).notNull()
                t.column("version", .integer).notNull()
                t.primaryKey(["name", "alias"])
                t.foreignKey(["name", "version"], references: "model")
            }
        }
        return migrator
    }

    /// Runs a write transaction, mapping SQLite errors to `TrackingError.database`.
    func write<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try pool.write(body) } catch let error as DatabaseError {
            throw TrackingError.database(path: path, reason: error.message ?? "\(error)")
        }
    }

    /// Runs a read, mapping SQLite errors to `TrackingError.database`.
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try pool.read(body) } catch let error as DatabaseError {
            throw TrackingError.database(path: path, reason: error.message ?? "\(error)")
        }
    }

    // MARK: - Runs

    /// Inserts a new run.
    public func insert(_ run: Run) throws { try write { try run.insert($0) } }

    /// The newest `limit` runs (by start time), with their effective status.
    public func runs(limit: Int = 20, kind: RunKind? = nil) throws -> [Run] {
        try read { db in
            var request = Run.order(Column("started").desc, Column("id").desc).limit(limit)
            if let kind { request = request.filter(Column("kind") == kind.rawValue) }
            return try request.fetchAll(db)
        }.map(withEffectiveStatus)
    }

    /// The run with this id (or unique id prefix), with its effective status.
    public func run(_ id: String) throws -> Run {
        let matches = try read { db in
            // NOTE: a key range, not LIKE: no wildcard characters in user input, and the primary
            // key index answers it (ids are ASCII, so "\u{7F}" sorts after every continuation).
            try Run.filter(Column("id") >= id && Column("id") < id + "\u{7F}").order(Column("id")).limit(2).fetchAll(db)
        }
        if let exact = matches.first(where: { $0.id == id }) { return withEffectiveStatus(exact) }
        guard matches.count == 1 else { throw TrackingError.unknownRun(id) }
        return withEffectiveStatus(matches[0])
    }

    /// Sets a run's end time and final status.
    public func finish(_ id: String, status: RunStatus, at time: Date = Date()) throws {
        try write { db in
            try db.execute(
                sql: "UPDATE run SET status = ?, ended = ? WHERE id = ?",
                arguments: [status.rawValue, time, id])
            if db.changesCount == 0 { throw TrackingError.unknownRun(id) }
        }
    }

    /// A run's status as a reader should see it: `running` becomes `interrupted` when the
    /// process that wrote it (same host) no longer exists.
    ///
    /// NOTE: pids are reused; a new process with the same pid keeps a dead run "running".
    public func effectiveStatus(_ run: Run) -> RunStatus {
        guard run.status == .running, run.host == ProcessInfo.processInfo.hostName else { return run.status }
        return kill(run.pid, 0) == 0 || errno == EPERM ? .running : .interrupted
    }

    func withEffectiveStatus(_ run: Run) -> Run {
        var copy = run
        copy.status = effectiveStatus(run)
        return copy
    }

    // MARK: - Metrics, artifacts, events

    /// Appends metric points.
    public func log(_ points: [MetricPoint]) throws {
        try write { db in for point in points { try point.insert(db) } }
    }

    /// All points of a run, ordered by name then step.
    public func metrics(of runID: String) throws -> [MetricPoint] {
        try read { db in
            try MetricPoint.filter(Column("runID") == runID)
                .order(Column("name"), Column("step")).fetchAll(db)
        }
    }

    /// Records a file a run produced, hashing its content now.
    @discardableResult
    public func addArtifact(runID: String, path: String, kind: String) throws -> Artifact {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: absolute), options: .mappedIfSafe) } catch {
            throw TrackingError.unreadableArtifact(path: absolute, reason: error.localizedDescription)
        }
        let artifact = Artifact(
            runID: runID, path: absolute, kind: kind, sha256: sha256Hex(data),
            bytes: Int64(data.count))
        try write { try artifact.insert($0) }
        return artifact
    }

    /// The artifacts of a run, in recording order.
    public func artifacts(of runID: String) throws -> [Artifact] {
        try read { db in try Artifact.filter(Column("runID") == runID).order(Column("rowid")).fetchAll(db) }
    }

    /// Records an event.
    @discardableResult
    public func record(_ event: Event) throws -> Event {
        var copy = event
        try write { try copy.insert($0) }
        return copy
    }

    /// Events of a run, or about a model (`name@version`), oldest first.
    public func events(runID: String? = nil, model: String? = nil, kind: String? = nil) throws -> [Event] {
        try read { db in
            var request = Event.order(Column("id"))
            if let runID { request = request.filter(Column("runID") == runID) }
            if let model { request = request.filter(Column("model") == model) }
            if let kind { request = request.filter(Column("kind") == kind) }
            return try request.fetchAll(db)
        }
    }
}
