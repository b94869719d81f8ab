import Foundation
import GRDB
import TestSupport
import Testing

@testable import Tracking

/// A fresh store in a temporary folder.
func makeStore() throws -> (RunStore, URL) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-tracking-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return (try RunStore(path: dir.appendingPathComponent("runs.sqlite").path), dir)
}

struct TrainConfig: Codable { var data = "/data/breast"; var epochs = 3; var learningRate = 0.001 }

@Test func recorderStoresRunMetricsAndArtifacts() throws {
    let (store, dir) = try makeStore()
    let recorder = try RunRecorder.start(
        store: store, kind: .train, config: TrainConfig(), commandLine: ["medsynth", "train"],
        dataManifestHash: "abc", seed: 7)
    try recorder.log(metric: "loss", step: 0, value: 0.9)
    try recorder.log(["loss": 0.5, "accuracy": 0.8], step: 1)
    let file = dir.appendingPathComponent("w.bin")
    try Data("hello".utf8).write(to: file)
    let artifact = try recorder.artifact(path: file.path, kind: "model")
    #expect(artifact.sha256 == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
    #expect(try store.run(recorder.runID).status == .running)
    try recorder.finish(status: .finished)

    let run = try store.run(recorder.runID)
    #expect(run.status == .finished && run.ended != nil && run.kind == .train && run.seed == 7)
    #expect(run.commandLine == "medsynth train" && run.dataManifestHash == "abc")
    #expect(run.config == #"{"data":"/data/breast","epochs":3,"learningRate":0.001}"#)
    #expect(try store.metrics(of: run.id).map(\.value) == [0.8, 0.9, 0.5])  // accuracy@1, loss@0, loss@1
    #expect(try store.lastMetricValues(of: run.id) == ["loss": 0.5, "accuracy": 0.8])
    #expect(try store.artifacts(of: run.id) == [artifact])
    // A unique prefix finds the run.
    #expect(try store.run(String(run.id.prefix(20))).id == run.id)
    #expect(throws: TrackingError.unknownRun("%")) { try store.run("%") }
}

/// Runs git in `directory`; its trimmed standard output.
@discardableResult
func git(_ arguments: [String], in directory: URL) async throws -> String {
    let p = Process(), out = Pipe()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["git", "-C", directory.path, "-c", "user.name=t", "-c", "user.email=t@example.org"] + arguments
    p.standardOutput = out
    try p.run()
    let data = await exited(p, reading: out)
    try #require(p.terminationStatus == 0, "git \(arguments.joined(separator: " ")) failed")
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// A run records the commit of the code folder and whether tracked files changed; an untracked
/// file does not make the tree dirty; outside a work tree nothing is recorded.
@Test func runsRecordTheCodeVersion() async throws {
    let (store, dir) = try makeStore()
    let repo = dir.appendingPathComponent("code")
    try FileManager.default.createDirectory(at: repo, withIntermediateDirectories: true)
    try await git(["init", "-q"], in: repo)
    try Data("one".utf8).write(to: repo.appendingPathComponent("a.swift"))
    try await git(["add", "a.swift"], in: repo)
    try await git(["commit", "-q", "-m", "first"], in: repo)
    let head = try await git(["rev-parse", "HEAD"], in: repo)
    #expect(head.count == 40)
    func recorded() throws -> Run {
        try store.run(RunRecorder.start(store: store, kind: .train, config: TrainConfig(), codeDirectory: repo.path).runID)
    }
    var run = try recorded()
    #expect(run.codeCommit == head && run.codeDirty == false)
    try Data("untracked".utf8).write(to: repo.appendingPathComponent("b.swift"))
    run = try recorded()
    #expect(run.codeCommit == head && run.codeDirty == false)
    try Data("two".utf8).write(to: repo.appendingPathComponent("a.swift"))
    run = try recorded()
    #expect(run.codeCommit == head && run.codeDirty == true)
    let outside = try store.run(
        RunRecorder.start(
            store: store, kind: .train, config: TrainConfig(),
            codeDirectory: dir.path
        ).runID)
    #expect(outside.codeCommit == nil && outside.codeDirty == nil)
}

@Test func runLeftRunningByAGoneProcessShowsAsInterrupted() async throws {
    let (store, _) = try makeStore()
    let child = Process()
    child.executableURL = URL(fileURLWithPath: "/bin/true")
    try child.run()
    await exited(child)
    let recorder = try RunRecorder.start(store: store, kind: .gan, config: TrainConfig())
    try store.write { db in
        try db.execute(sql: "UPDATE run SET pid = ? WHERE id = ?", arguments: [child.processIdentifier, recorder.runID])
    }
    #expect(try store.run(recorder.runID).status == .interrupted)
    #expect(try store.runs().first?.status == .interrupted)
    let live = try RunRecorder.start(store: store, kind: .gan, config: TrainConfig())
    #expect(try store.run(live.runID).status == .running)
}

struct Boom: Error {}

@Test func recordingWrapperFinishesOrFails() async throws {
    let (store, _) = try makeStore()
    let value = try await RunRecorder.recording(store: store, kind: .experiment, config: TrainConfig()) { recorder in
        try recorder.log(metric: "x", step: 0, value: 1)
        return recorder.runID
    }
    #expect(try store.run(value).status == .finished)
    await #expect(throws: Boom.self) {
        try await RunRecorder.recording(store: store, kind: .train, config: TrainConfig()) { _ in throw Boom() }
    }
    #expect(try store.runs(limit: 1, kind: .train).first?.status == .failed)
}

@Test func aFailedBatchWritesNothing() throws {
    let (store, _) = try makeStore()
    let recorder = try RunRecorder.start(store: store, kind: .train, config: TrainConfig())
    // The second point names no run: the foreign key fails and the whole transaction rolls back.
    #expect(throws: TrackingError.self) {
        try store.log([
            MetricPoint(runID: recorder.runID, name: "a", step: 0, value: 1),
            MetricPoint(runID: "missing", name: "a", step: 0, value: 1),
        ])
    }
    #expect(try store.metrics(of: recorder.runID).isEmpty)
    #expect(try store.pool.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "wal")
}

@Test func listsNewestTwentyOfFiveThousandRuns() throws {
    let (store, _) = try makeStore()
    let start = Date(timeIntervalSince1970: 1_700_000_000)
    try store.write { db in
        for i in 0..<5000 {
            try Run(
                id: String(format: "run-%05d", i), kind: .train, commandLine: "x", config: "{}", codeCommit: nil,
                codeDirty: nil, dataManifestHash: nil, seed: Int64(i), started: start.addingTimeInterval(Double(i)),
                ended: nil, status: .finished, pid: 1, host: "h"
            ).insert(db)
        }
    }
    let clock = ContinuousClock()
    let began = clock.now
    let newest = try store.runs(limit: 20)
    // Sanity bound only (a shared 2-core machine): an unindexed scan would still pass, the
    // query plan check below is what guards the index.
    #expect(clock.now - began < .seconds(2))
    #expect(newest.map(\.id) == (4980..<5000).reversed().map { String(format: "run-%05d", $0) })
    let plan = try store.pool.read { db in
        try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN SELECT * FROM run ORDER BY started DESC LIMIT 20")
            .map { $0["detail"] as String }.joined()
    }
    #expect(plan.contains("USING INDEX run_on_started"), "\(plan)")
}

@Test func registryVersionsAliasesAndLineage() throws {
    let (store, dir) = try makeStore()
    let recorder = try RunRecorder.start(store: store, kind: .train, config: TrainConfig(), dataManifestHash: "m1")
    #expect(throws: TrackingError.noArtifact(runID: recorder.runID, reason: "no 'model' artifact recorded; pass --artifact")) {
        try store.register(runID: recorder.runID, name: "breast")
    }
    let weights = dir.appendingPathComponent("model.safetensors")
    try Data([1, 2, 3]).write(to: weights)
    try recorder.log(metric: "val.balancedAccuracy", step: 0, value: 0.7)
    try recorder.log(metric: "val.balancedAccuracy", step: 1, value: 0.75)
    let stats = ReferenceStats(pixels: [0.1, 0.1, 0.9, 0.9], count: 2, labels: [0, 1], classNames: ["a", "b"])
    let statsFile = dir.appendingPathComponent("reference.json")
    try JSONEncoder().encode(stats).write(to: statsFile)
    try recorder.artifact(path: statsFile.path, kind: "reference-stats")
    try recorder.finish(status: .finished)

    let v1 = try store.register(runID: recorder.runID, name: "breast", artifactPath: weights.path)
    let v2 = try store.register(runID: recorder.runID, name: "breast")  // now finds the recorded model artifact
    #expect(v1.version == 1 && v2.version == 2 && v2.artifactPath == weights.path)
    #expect(v1.runID == recorder.runID && v1.dataManifestHash == "m1" && v1.metrics == #"{"val.balancedAccuracy":0.75}"#)
    #expect(try JSONDecoder().decode(ReferenceStats.self, from: Data(v1.reference!.utf8)) == stats)
    #expect(stats.intensityHistogram[1] == 0.5 && stats.intensityHistogram[9] == 0.5)

    try store.setAlias(.champion, name: "breast", version: 1)
    try store.setAlias(.challenger, name: "breast", version: 2)
    #expect(try store.resolve("breast@champion") == v1)
    #expect(try store.resolve("breast@2") == v2 && store.resolve("breast") == v2)
    try store.setAlias(.champion, name: "breast", version: 2)
    #expect(try store.aliases(name: "breast") == ["champion": 2, "challenger": 2])
    #expect(throws: TrackingError.unknownModel(name: "breast", version: 9)) {
        try store.setAlias(.champion, name: "breast", version: 9)
    }
    #expect(throws: TrackingError.unknownAlias(name: "breast", alias: "staging")) { try store.resolve("breast@staging") }
    #expect(throws: TrackingError.unknownModel(name: "lung", version: nil)) { try store.resolve("lung") }
}

@Test func modelCardIsWrittenFromTheRun() throws {
    let (store, dir) = try makeStore()
    let recorder = try RunRecorder.start(
        store: store, kind: .train, config: ["data": "/data/breast", "privacyEpsilon": "x"],
        dataManifestHash: "feed", seed: 3)
    for (step, value) in [0.6, 0.7, 0.8].enumerated() { try recorder.log(metric: "val.accuracy", step: step, value: value) }
    try recorder.alarm("D wins outright for 200 steps")
    let weights = dir.appendingPathComponent("m.safetensors")
    try Data([0]).write(to: weights)
    let stats = ReferenceStats(pixels: [0.2, 0.2, 0.2], count: 3, labels: [0, 0, 1], classNames: ["benign", "malignant"])
    let statsFile = dir.appendingPathComponent("ref.json")
    try JSONEncoder().encode(stats).write(to: statsFile)
    try recorder.artifact(path: statsFile.path, kind: "reference-stats")
    try recorder.finish(status: .finished)
    _ = try store.register(runID: recorder.runID, name: "breast", artifactPath: weights.path)
    try store.setAlias(.champion, name: "breast", version: 1)

    let card = try store.modelCard(name: "breast", version: 1)
    #expect(card.hasPrefix("# Model card: breast@1 (champion)"))
    #expect(card.contains("- Dataset: `/data/breast`") && card.contains("`feed`") && card.contains("- Seed: 3"))
    #expect(card.contains("| benign | 66.7% |") && card.contains("| malignant | 33.3% |"))
    #expect(card.contains("| val.accuracy | 0.8 | 0.7 ± 0.1 | 0.6 | 0.8 | 3 |"))
    #expect(card.contains("alarm: D wins outright for 200 steps"))
    #expect(card.contains("No differential privacy"))  // "x" is not a number
    #expect(card.contains("## Intended use and limits"))
}

@Test func compareShowsDifferingConfigAndMetricDeltas() throws {
    let (store, _) = try makeStore()
    let a = try RunRecorder.start(store: store, kind: .train, config: TrainConfig())
    var config = TrainConfig()
    config.epochs = 5
    let b = try RunRecorder.start(store: store, kind: .train, config: config)
    try a.log(metric: "loss", step: 0, value: 1.0)
    try b.log(metric: "loss", step: 0, value: 0.25)
    let text = RunReport.compare(
        try store.run(a.runID), try store.run(b.runID),
        metricsA: try store.lastMetricValues(of: a.runID),
        metricsB: try store.lastMetricValues(of: b.runID))
    let lines = text.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
    #expect(lines.contains("epochs 3 5"))
    #expect(!text.contains("/data/breast"))  // equal in both: not listed
    #expect(lines.contains("loss 1 0.25 -0.75"))
}
