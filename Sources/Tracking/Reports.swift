import Foundation

/// Plain-text views of runs for the terminal (`medsynth runs list | show | compare`).
public enum RunReport {
    /// One line per run: id, kind, status, start, duration, seed, commit.
    public static func table(_ runs: [Run]) -> String {
        var lines = [
            pad("ID", 23) + pad("KIND", 11) + pad("STATUS", 12) + pad("STARTED", 21) + pad("TIME", 9)
                + pad("SEED", 8) + "CODE"
        ]
        for run in runs {
            lines.append(
                pad(run.id, 23) + pad(run.kind.rawValue, 11) + pad(run.status.rawValue, 12)
                    + pad(iso(run.started), 21) + pad(run.ended.map { duration($0.timeIntervalSince(run.started)) } ?? "-", 9)
                    + pad(run.seed.map { "\(UInt64(bitPattern: $0))" } ?? "-", 8)
                    + (run.codeCommit.map { String($0.prefix(10)) + (run.codeDirty == true ? "+dirty" : "") } ?? "-"))
        }
        return lines.joined(separator: "\n")
    }

    /// A run's fields, configuration, last metric values and artifacts.
    public static func detail(_ run: Run, metrics: [String: Double], artifacts: [Artifact], events: [Event]) -> String {
        var lines = [
            "run      \(run.id)", "kind     \(run.kind.rawValue)", "status   \(run.status.rawValue)",
            "started  \(iso(run.started))", "ended    \(run.ended.map(iso) ?? "-")", "command  \(run.commandLine)",
            "code     \(run.codeCommit ?? "-")\(run.codeDirty == true ? " (dirty)" : "")",
            "data     \(run.dataManifestHash ?? "-")", "seed     \(run.seed.map { "\(UInt64(bitPattern: $0))" } ?? "-")",
            "config   \(run.config)", "", "metrics (last value):",
        ]
        lines += metrics.sorted { $0.key < $1.key }.map { "  \(pad($0.key, 28)) \(fmt($0.value))" }
        lines += ["", "artifacts:"] + artifacts.map { "  \(pad($0.kind, 16)) \($0.path)  sha256 \($0.sha256.prefix(16))" }
        if !events.isEmpty { lines += ["", "events:"] + events.map { "  \(iso($0.time)) \($0.kind): \($0.message)" } }
        return lines.joined(separator: "\n")
    }

    /// Two runs side by side: the configuration keys that differ and every metric's last values.
    public static func compare(_ a: Run, _ b: Run, metricsA: [String: Double], metricsB: [String: Double]) -> String {
        let configA = flatten(a.config), configB = flatten(b.config)
        var lines = [pad("", 28) + pad(a.id, 24) + b.id]
        lines.append(
            pad("kind / status", 28) + pad("\(a.kind.rawValue) / \(a.status.rawValue)", 24)
                + "\(b.kind.rawValue) / \(b.status.rawValue)")
        lines.append(
            pad("code", 28) + pad(String((a.codeCommit ?? "-").prefix(12)), 24) + String((b.codeCommit ?? "-").prefix(12)))
        lines.append(
            pad("data manifest", 28) + pad(String((a.dataManifestHash ?? "-").prefix(12)), 24)
                + String((b.dataManifestHash ?? "-").prefix(12)))
        lines += ["", "config (differing keys):"]
        let keys = Set(configA.keys).union(configB.keys).sorted().filter { configA[$0] != configB[$0] }
        lines +=
            keys.isEmpty
            ? ["  (identical)"]
            : keys.map { "  " + pad($0, 26) + pad(configA[$0] ?? "-", 24) + (configB[$0] ?? "-") }
        lines += ["", "metrics (last value, b - a):"]
        for name in Set(metricsA.keys).union(metricsB.keys).sorted() {
            let delta = metricsA[name].flatMap { va in metricsB[name].map { fmt($0 - va) } } ?? ""
            lines.append(
                "  " + pad(name, 26) + pad(metricsA[name].map(fmt) ?? "-", 24)
                    + pad(metricsB[name].map(fmt) ?? "-", 14) + delta)
        }
        return lines.joined(separator: "\n")
    }

    /// A JSON object flattened to dotted keys with compact JSON values.
    static func flatten(_ json: String) -> [String: String] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) else { return [:] }
        var out: [String: String] = [:]
        func walk(_ value: Any, _ prefix: String) {
            if let dictionary = value as? [String: Any] {
                for (key, child) in dictionary { walk(child, prefix.isEmpty ? key : "\(prefix).\(key)") }
            } else if let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys]) {
                out[prefix] = String(decoding: data, as: UTF8.self)
            }
        }
        walk(object, "")
        return out
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }

    static func duration(_ seconds: TimeInterval) -> String {
        seconds < 60
            ? String(format: "%.1fs", seconds)
            : seconds < 3600 ? "\(Int(seconds) / 60)m\(Int(seconds) % 60)s" : "\(Int(seconds) / 3600)h\(Int(seconds) / 60 % 60)m"
    }
}
