import Foundation
import Testing

@testable import Tracking

/// `models list`: one line a version, with the aliases that point at it and its metrics.
@Test func modelListingNamesEachVersionWithItsAliases() throws {
    let (store, dir) = try makeStore()
    let (runID, _) = try recordRunWithModel(store, in: dir)
    _ = try store.register(runID: runID, name: "breast")
    _ = try store.register(runID: runID, name: "breast")
    try store.setAlias(.champion, name: "breast", version: 2)
    try store.setAlias(.challenger, name: "breast", version: 2)
    let lines = try store.modelListing()
    #expect(lines.count == 2)
    #expect(lines.contains("breast@1  run \(runID)  {}"), "\(lines)")
    #expect(lines.contains("breast@2 [challenger, champion]  run \(runID)  {}"), "\(lines)")
}

/// `runs show`: the run by a prefix of its id, with its artifacts; the text is `RunReport.detail`'s.
@Test func runDetailGathersTheRunsRecords() throws {
    let (store, dir) = try makeStore()
    let (runID, weights) = try recordRunWithModel(store, in: dir)
    let detail = try store.detail(of: String(runID.prefix(18)))
    #expect(detail.run.id == runID && detail.artifacts.map(\.path) == [weights.path])
    #expect(detail.text == RunReport.detail(detail.run, metrics: [:], artifacts: detail.artifacts, events: detail.events))
}
