import Foundation

/// Which generator makes an arm's synthetic images.
public enum GeneratorKind: String, Codable, CaseIterable, Sendable {
    /// One DCGAN per class below the majority.
    case dcgan
    /// One class-conditional DCGAN for every class.
    case cdcgan
    /// One class-conditional diffusion model for every class (DDPM training, DDIM sampling with
    /// classifier-free guidance).
    case diffusion

    /// Whether `folder` (under `generators/seed-S/`) holds one of this kind's models.
    func owns(folder: String) -> Bool {
        switch self {
        case .dcgan: return folder.hasPrefix("dcgan-")
        case .cdcgan, .diffusion: return folder == rawValue
        }
    }

    /// What makes the images, in words.
    var phrase: String {
        switch self {
        case .dcgan: return "per-class DCGAN"
        case .cdcgan: return "conditional DCGAN"
        case .diffusion: return "conditional diffusion"
        }
    }
}

/// One arm of the experiment: the same classifier, seeds and test images, with different
/// training data or loss. Written as `+`-joined parts:
///
/// - baselines: `original`, `augment`, `weighted`, `oversample` (and joins such as `weighted+augment`);
/// - synthetic: `dcgan`, `cdcgan` or `diffusion`, optionally `@R` to cap synthetic images at R per
///   real image of a class (`cdcgan@2`), joined with `filter` (keep images a real-data classifier assigns to
///   the intended class confidently; drop near-copies), `pretrain` (train on real + synthetic,
///   then fine-tune on real only), `augment`, `weighted`, `oversample`;
/// - `synthetic-only`: conditional DCGAN images only, as many per class as the real split.
public struct Arm: Hashable, Codable, Sendable, CustomStringConvertible {
    public var generator: GeneratorKind?
    public var syntheticOnly = false
    public var filter = false
    public var pretrain = false
    public var augment = false
    public var classWeights = false
    public var oversample = false
    /// At most this many synthetic images per real image of a class (nil: the experiment's cap).
    public var ratio: Double?

    /// The arms run when none are named: the baselines, both generators as they are, and the
    /// conditional generator with each method that made synthesis help in published small-data work.
    public static let defaults: [Arm] = [
        "original", "augment", "weighted", "oversample", "dcgan", "cdcgan", "cdcgan+filter",
        "cdcgan+pretrain", "cdcgan+augment", "synthetic-only",
    ].map { try! Arm(parsing: $0) }

    /// Parses a name such as `cdcgan@2+filter+augment` (see the type's documentation).
    public init(parsing text: String) throws {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: "+").map(String.init)
        guard !parts.isEmpty else { throw ExperimentError.invalidArm(text, reason: "empty") }
        var seen = Set<String>()
        for part in parts {
            var word = part
            if let at = part.firstIndex(of: "@") {
                word = String(part[..<at])
                let value = String(part[part.index(after: at)...])
                guard GeneratorKind(rawValue: word) != nil else {
                    throw ExperimentError.invalidArm(text, reason: "only a generator takes @ratio (e.g. cdcgan@2)")
                }
                guard let r = Double(value), r.isFinite, r > 0, r <= 1000 else {
                    throw ExperimentError.invalidArm(text, reason: "ratio \"\(value)\" must be a number in (0, 1000]")
                }
                ratio = r
            }
            guard seen.insert(word).inserted else { throw ExperimentError.invalidArm(text, reason: "\"\(word)\" appears twice") }
            switch word {
            case "original":
                guard parts.count == 1 else { throw ExperimentError.invalidArm(text, reason: "original stands alone") }
            case "augment": augment = true
            case "weighted": classWeights = true
            case "oversample": oversample = true
            case "filter": filter = true
            case "pretrain": pretrain = true
            case "dcgan", "cdcgan", "diffusion":
                guard generator == nil else { throw ExperimentError.invalidArm(text, reason: "one generator per arm") }
                generator = GeneratorKind(rawValue: word)
            case "synthetic-only":
                guard parts.count == 1 else { throw ExperimentError.invalidArm(text, reason: "synthetic-only stands alone") }
                generator = .cdcgan; syntheticOnly = true
            default:
                throw ExperimentError.invalidArm(
                    text,
                    reason: "unknown part \"\(word)\": use original, augment, weighted, oversample, dcgan[@R], cdcgan[@R], "
                        + "diffusion[@R], filter, pretrain, synthetic-only")
            }
        }
        if (filter || pretrain) && generator == nil {
            throw ExperimentError.invalidArm(text, reason: "filter and pretrain need a generator (dcgan, cdcgan or diffusion)")
        }
    }

    /// The canonical name (`cdcgan@2+filter+pretrain+augment`), parts in a fixed order.
    public var name: String {
        if syntheticOnly { return "synthetic-only" }
        var parts: [String] = []
        if let generator {
            parts.append(generator.rawValue + (ratio.map { "@" + formatRatio($0) } ?? ""))
        }
        if filter { parts.append("filter") }
        if pretrain { parts.append("pretrain") }
        if augment { parts.append("augment") }
        if classWeights { parts.append("weighted") }
        if oversample { parts.append("oversample") }
        return parts.isEmpty ? "original" : parts.joined(separator: "+")
    }

    public var description: String { name }

    /// True when the arm adds or uses synthetic images.
    public var isGenerative: Bool { generator != nil }

    /// One line on what the arm trains on.
    public var summary: String {
        if syntheticOnly { return "conditional DCGAN images only, as many per class as the real split" }
        guard let generator else {
            var what = ["the imbalanced training split"]
            if augment { what.append("classic augmentation") }
            if classWeights { what.append("class-weighted cross-entropy") }
            if oversample { what.append("class-balanced mini-batches") }
            return what.count == 1 ? "the imbalanced training split as it is" : what.joined(separator: ", ")
        }
        var s = "real + " + generator.phrase + " images"
        s += ratio.map { " (at most \(formatRatio($0)) per real image)" } ?? " up to the majority count"
        if filter { s += ", filtered by a real-data classifier's confidence, near-copies dropped" }
        if pretrain { s += ", then fine-tuned on real images only" }
        if augment { s += ", classic augmentation" }
        if classWeights { s += ", class-weighted loss" }
        if oversample { s += ", class-balanced batches" }
        return s
    }

    public init(from decoder: Decoder) throws { try self.init(parsing: try decoder.singleValueContainer().decode(String.self)) }
    public func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(name) }
}

extension Arm: ExpressibleByStringLiteral {
    /// A literal arm name; traps on a bad literal (programmer error), use `init(parsing:)` for input.
    public init(stringLiteral value: String) { try! self.init(parsing: value) }
}

func formatRatio(_ r: Double) -> String { r == r.rounded() ? String(Int(r)) : String(r) }

/// Problems with an experiment's options or output folder.
public enum ExperimentError: Error, CustomStringConvertible, Equatable {
    case invalidArm(String, reason: String)
    case invalidOption(name: String, value: String, reason: String)
    /// The output folder holds an experiment run with other settings.
    case settingsChanged(folder: String, differences: [String])
    /// A worker process of `--jobs` failed; its log names the reason.
    case workerFailed(index: Int, status: Int32, log: String, lastLines: String)

    public var description: String {
        switch self {
        case let .invalidArm(text, reason): return "arm \"\(text)\": \(reason)"
        case let .invalidOption(name, value, reason): return "--\(name) \(value): \(reason)"
        case let .settingsChanged(folder, differences):
            return "\(folder) holds an experiment with other settings (\(differences.joined(separator: "; "))): "
                + "resume needs the same settings; choose a new --out, or delete the folder"
        case let .workerFailed(index, status, log, lastLines):
            return "worker \(index) stopped with status \(status) (log: \(log)):\n\(lastLines)\n"
                + "finished cells are kept: run the same command again to resume"
        }
    }
}
