import Foundation

/// One run as `runs show` prints it: its fields, the last value of each metric, its artifacts and events.
public struct RunDetail: Encodable, Sendable {
    public var run: Run
    public var metrics: [String: Double]
    public var artifacts: [Artifact]
    public var events: [Event]

    /// The plain-text form (`RunReport.detail`).
    public var text: String { RunReport.detail(run, metrics: metrics, artifacts: artifacts, events: events) }
}

extension RunStore {
    /// The run `id` (or a unique prefix of it) with its metrics, artifacts and events.
    public func detail(of id: String) throws -> RunDetail {
        let run = try run(id)
        return RunDetail(
            run: run, metrics: try lastMetricValues(of: run.id), artifacts: try artifacts(of: run.id),
            events: try events(runID: run.id))
    }

    /// Every registered version, one a line: `name@version [aliases]  run ID  {metrics}`.
    public func modelListing() throws -> [String] {
        let models = try models()
        var aliases: [String: [String: Int]] = [:]
        for name in Set(models.map(\.name)) { aliases[name] = try self.aliases(name: name) }
        return models.map { model in
            let tags = (aliases[model.name] ?? [:]).filter { $0.value == model.version }.keys.sorted()
            return
                "\(model.label)\(tags.isEmpty ? "" : " [\(tags.joined(separator: ", "))]")  run \(model.runID)  \(model.metrics)"
        }
    }
}
