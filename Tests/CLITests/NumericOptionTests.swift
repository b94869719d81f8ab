import ArgumentParser
import SeededRandom
import Testing

@testable import medsynth

// Every numeric option is checked by `validate()` before any work; these tests parse (which
// runs `validate()`) and never call `run()`.

/// The smallest argument list that parses for each command, before numeric options are added.
let baseArguments: [String: [String]] = [
    "gan train": ["gan", "train", "--dry-run", "--out", "out"],
    "gan train:diffusion": ["gan", "train", "--generator", "diffusion", "--dry-run", "--out", "out"],
    "gan sample": ["gan", "sample", "--checkpoint", "c.safetensors", "--count", "10", "--out", "out"],
    "balance": ["balance", "--data", "d", "--gan", "c.safetensors", "--out", "out"],
    "train": ["train", "--dry-run", "--out", "out"],
    "experiment": ["experiment", "--data", "d", "--out", "out"],
    "audit": ["audit", "--synthetic", "s.npz", "--data", "d", "--out", "out"],
    "privacy epsilon": [
        "privacy", "epsilon", "--n", "60000", "--batch-size", "256", "--epochs", "60", "--noise-multiplier", "1.1",
    ],
    "privacy bench": ["privacy", "bench"],
    "data inspect": ["data", "inspect", "d"],
    "data fetch": ["data", "fetch", "pneumoniamnist"],
    "data bench": ["data", "bench", "d"],
    "runs list": ["runs", "list"],
    "serve": ["serve", "--model", "m"],
    "bench dcgan": ["bench", "dcgan"],
    "bench classifier": ["bench", "classifier"],
    "bench diffusion": ["bench", "diffusion"],
    "reproduce paper": ["reproduce", "paper", "--out", "out"],
    "gan distill": ["gan", "distill", "--checkpoint", "c.safetensors", "--data", "d", "--out", "out"],
]

/// The command types, to parse a leaf command directly (much faster than through the root).
let commandTypes: [String: any ParsableCommand.Type] = [
    "gan train": GANCommand.Train.self, "gan train:diffusion": GANCommand.Train.self, "gan sample": GANCommand.Sample.self,
    "balance": BalanceCommand.self,
    "train": TrainCommand.self, "experiment": ExperimentCommand.self, "audit": AuditCommand.self,
    "privacy epsilon": PrivacyCommand.Epsilon.self, "privacy bench": PrivacyCommand.Bench.self,
    "data inspect": DataCommand.Inspect.self, "data fetch": DataCommand.Fetch.self, "data bench": DataCommand.Bench.self,
    "runs list": RunsCommand.List.self, "serve": ServeCommand.self, "reproduce paper": ReproduceCommand.Paper.self,
    "gan distill": GANCommand.Distill.self,
    "bench dcgan": BenchCommand.DCGANBench.self, "bench diffusion": BenchCommand.DiffusionBench.self,
    "bench classifier": BenchCommand.ClassifierBench.self,
]

/// Every numeric option of every command.
let numericOptions: [String: [String]] = [
    "gan train": [
        "--image-size", "--channels", "--epochs", "--max-steps", "--batch-size", "--checkpoint-every", "--grid-every",
        "--lr-g", "--lr-d", "--ema-decay", "--dp-noise-multiplier", "--dp-epsilon", "--dp-max-grad-norm", "--dp-delta",
        "--seed", "--split-seed", "--max-read-bytes",
    ],
    "gan train:diffusion": [
        "--image-size", "--channels", "--epochs", "--max-steps", "--batch-size", "--checkpoint-every", "--grid-every",
        "--ema-decay", "--seed", "--split-seed", "--width", "--lr", "--class-drop", "--sampling-steps", "--guidance-scale",
    ],
    "gan sample": ["--count", "--batch-size", "--label", "--seed", "--sampling-steps", "--guidance-scale"],
    "balance": ["--max-synthetic-ratio", "--candidates-factor", "--target", "--seed", "--split-seed"],
    "train": [
        "--image-size", "--channels", "--epochs", "--batch-size", "--lr", "--label-smoothing", "--patience",
        "--dp-noise-multiplier", "--dp-epsilon", "--dp-max-grad-norm", "--dp-delta", "--seed", "--split-seed",
        "--max-read-bytes",
    ],
    "experiment": [
        "--seeds", "--image-size", "--channels", "--epochs", "--batch-size", "--lr", "--patience", "--gan-steps",
        "--gan-width", "--max-synthetic-ratio", "--filter-quantile", "--filter-candidates", "--fine-tune-lr",
        "--resamples", "--alpha", "--split-seed", "--diffusion-steps", "--diffusion-batch-size", "--diffusion-width",
        "--diffusion-sampling-steps", "--guidance-scale", "--jobs",
    ],
    "reproduce paper": ["--seed", "--fixes-seeds", "--jobs"],
    "gan distill": [
        "--steps", "--from-steps", "--iterations", "--batch-size", "--lr", "--ema-decay", "--checkpoint-every",
        "--max-read-bytes", "--seed", "--split-seed", "--image-size", "--channels",
    ],
    "audit": ["--count", "--image-size", "--percentile", "--kid-subsets", "--seed", "--split-seed"],
    "privacy epsilon": ["--n", "--batch-size", "--epochs", "--delta", "--noise-multiplier", "--target-epsilon"],
    "privacy bench": ["--batch-size", "--steps"],
    "data inspect": ["--image-size", "--channels", "--split-seed", "--max-read-bytes"],
    "data fetch": ["--size"],
    "data bench": ["--image-size", "--repeats"],
    "runs list": ["--limit"],
    "serve": [
        "--port", "--max-body-bytes", "--max-image-pixels", "--max-concurrent", "--inference-threads", "--request-timeout",
        "--header-timeout", "--drift-window", "--health-port", "--max-batch-images", "--max-batch-delay-us",
    ],
    "bench dcgan": ["--image-size", "--channels", "--batch-size", "--steps", "--warmup", "--peak"],
    "bench classifier": ["--image-size", "--channels", "--classes", "--batch-size", "--steps", "--warmup"],
    "bench diffusion": [
        "--image-size", "--channels", "--width", "--batch-size", "--steps", "--warmup", "--samples", "--distilled-steps",
    ],
]

/// Parses and validates `arguments`; the error's message when refused.
func parse(_ arguments: [String]) -> Result<ParsableCommand, CLIRefusal> {
    do { return .success(try MedSynth.parseAsRoot(arguments)) } catch {
        return .failure(CLIRefusal(message: MedSynth.message(for: error)))
    }
}

struct CLIRefusal: Error { let message: String }

/// The issue's cases (tracker #13) and their neighbours: each refused, naming its option.
@Test(arguments: [
    ("gan train", "--batch-size", "0"), ("gan train", "--batch-size", "-5"), ("gan train", "--batch-size", "1"),
    ("gan train", "--checkpoint-every", "0"), ("gan train", "--checkpoint-every", "-1"),
    ("gan train", "--grid-every", "0"), ("gan train", "--grid-every", "-1"),
    ("gan train", "--epochs", "0"), ("gan train", "--epochs", "-1"), ("gan train", "--epochs", "9223372036854775807"),
    ("gan train", "--max-steps", "0"), ("gan train", "--lr-g", "-0.0002"), ("gan train", "--lr-g", "nan"),
    ("gan train", "--lr-d", "inf"), ("gan train", "--lr-d", "0"), ("gan train", "--ema-decay", "2"),
    ("gan train", "--ema-decay", "1"), ("gan train", "--image-size", "30"), ("gan train", "--channels", "2"),
    ("gan train", "--dp-noise-multiplier", "-1"), ("gan train", "--dp-max-grad-norm", "0"),
    ("train", "--label-smoothing", "1"), ("train", "--lr", "-1"), ("train", "--lr", "nan"), ("train", "--epochs", "0"),
    ("train", "--batch-size", "0"), ("train", "--patience", "0"), ("train", "--dp-delta", "1"),
    ("privacy epsilon", "--epochs", "9223372036854775807"), ("privacy epsilon", "--epochs", "nan"),
    ("privacy epsilon", "--epochs", "1e300"), ("privacy epsilon", "--delta", "0"),
    ("gan sample", "--count", "1000000000000"), ("gan sample", "--count", "0"), ("gan sample", "--batch-size", "1"),
    ("gan sample", "--label", "-1"),
    ("serve", "--port", "99999"), ("serve", "--port", "-1"), ("serve", "--max-concurrent", "0"),
    ("serve", "--max-image-pixels", "0"), ("serve", "--drift-window", "10"), ("serve", "--max-body-bytes", "-1"),
    ("serve", "--request-timeout", "0"), ("serve", "--header-timeout", "0"), ("serve", "--header-timeout", "3601"),
    ("serve", "--inference-threads", "0"), ("serve", "--health-port", "65536"), ("serve", "--health-port", "8080"),
    ("serve", "--max-batch-images", "0"), ("serve", "--max-batch-images", "1025"),
    ("serve", "--max-batch-delay-us", "-1"), ("serve", "--max-batch-delay-us", "100001"),
    ("experiment", "--seeds", "0"), ("experiment", "--gan-steps", "0"), ("experiment", "--max-synthetic-ratio", "-1"),
    ("experiment", "--filter-quantile", "1.5"), ("experiment", "--resamples", "10"), ("experiment", "--alpha", "nan"),
    ("experiment", "--fine-tune-lr", "0"), ("experiment", "--lr", "inf"),
    ("audit", "--percentile", "100"), ("audit", "--kid-subsets", "0"), ("audit", "--count", "0"),
    ("balance", "--candidates-factor", "0"), ("balance", "--target", "1000000000000"), ("balance", "--target", "-3"),
    ("data inspect", "--image-size", "0"), ("data inspect", "--channels", "0"), ("data fetch", "--size", "27"),
    ("data bench", "--repeats", "0"), ("runs list", "--limit", "0"), ("privacy bench", "--steps", "0"),
    ("bench dcgan", "--warmup", "-1"), ("bench dcgan", "--peak", "nan"),
    ("bench classifier", "--image-size", "27"), ("bench classifier", "--classes", "1"),
    ("bench classifier", "--batch-size", "1"), ("bench classifier", "--channels", "2"),
])
func badNumericValueIsRefusedNamingTheOption(_ command: String, _ option: String, _ value: String) throws {
    // `--opt=-5`: a bare `-5` would be read as a flag; the `=` form reaches the range check.
    let result = parse(baseArguments[command]! + ["\(option)=\(value)"])
    guard case let .failure(refusal) = result else {
        Issue.record("\(command) \(option)=\(value) was accepted")
        return
    }
    #expect(refusal.message.contains(option), "\(refusal.message)")
}

@Test func theDefaultsAndTheIssuesGoodValuesAreAccepted() throws {
    for (command, arguments) in baseArguments {
        if case let .failure(refusal) = parse(arguments) { Issue.record("\(command): \(refusal.message)") }
    }
    let good: [[String]] = [
        baseArguments["gan train"]! + ["--batch-size", "2", "--epochs", "100000", "--ema-decay", "0", "--lr-g", "1e-4"],
        baseArguments["train"]! + ["--label-smoothing", "0.1", "--channels", "3"],
        baseArguments["serve"]! + ["--port", "0", "--drift-window", "50", "--max-body-bytes", "1"],
        baseArguments["serve"]! + ["--port", "65535"], baseArguments["serve"]! + ["--port", "0", "--health-port", "0"],
        baseArguments["serve"]! + ["--health-port", "8081"],
    ]
    for arguments in good {
        if case let .failure(refusal) = parse(arguments) { Issue.record("\(arguments): \(refusal.message)") }
    }
}

@Test func helpShowsEachRange() throws {
    let help = MedSynth.helpMessage(for: GANCommand.Train.self, columns: 400)
    #expect(help.contains("Range 1...100000."))  // --epochs
    #expect(help.contains("Range [0.0, 1.0)."))  // --ema-decay
    #expect(help.contains("Range (0.0, 10.0]."))  // learning rates
    #expect(MedSynth.helpMessage(for: ServeCommand.self, columns: 400).contains("Range 50...1000000."))
}

/// A value a careless or hostile user might type.
func randomValue(_ g: inout SeededGenerator) -> String {
    let fixed = [
        "0", "-0", "1", "-1", "2", "3", "28", "64", "0.5", "1.0", "0.999", "1e-300", "1e300", "nan", "-nan", "inf", "-inf",
        "9223372036854775807", "-9223372036854775808", "9223372036854775808", "18446744073709551615", "1e12",
        "0x10", "", " ", "1_000", "٣", "1e", "65536", "99999", "2147483648", "4294967296",
    ]
    switch g.next() % 4 {
    case 0: return fixed[Int(g.next() % UInt64(fixed.count))]
    case 1: return String(Int64(bitPattern: g.next()) >> (g.next() % 64))  // integers of every magnitude
    case 2: return String(Double(bitPattern: g.next()))  // doubles, NaNs and infinities included
    default: return String(Double(Int64(bitPattern: g.next()) >> (g.next() % 64)) * Double(g.uniform()))
    }
}

/// A bounded fuzz of the numeric options (fixed seed, a few thousand parses): each one either
/// parses to values the command can run with, or is refused with a message; never a trap.
@Test func numericOptionFuzzNeverTraps() throws {
    var g = SeededGenerator(seed: 13)
    var accepted = 0, refused = 0
    let commands = numericOptions.keys.sorted()
    for _ in 0..<2000 {  // 1500 before the diffusion entries (two more commands, mostly refused values)
        let command = commands[Int(g.next() % UInt64(commands.count))]
        let options = numericOptions[command]!
        var arguments = Array(baseArguments[command]!.dropFirst(command.split(separator: " ").count))
        for _ in 0...(g.next() % 3) {
            let option = options[Int(g.next() % UInt64(options.count))]
            arguments.append("\(option)=\(randomValue(&g))")
        }
        let type = commandTypes[command]!
        switch Result(catching: { try type.parse(arguments) }) {
        case .failure(let error):
            refused += 1
            #expect(!type.message(for: error).isEmpty, "\(arguments)")
        case .success(let parsed):
            accepted += 1
            // What the commands compute from their options before any work must not trap either.
            if let train = parsed as? GANCommand.Train { #expect(train.plan.problem == nil, "\(arguments)") }
            if let epsilon = parsed as? PrivacyCommand.Epsilon { #expect(epsilon.steps >= 1) }
        }
    }
    // Both outcomes must occur; with this seed 47 of 1,500 draws parse (most random values are out of range).
    #expect(accepted > 25 && refused > 25, "accepted \(accepted), refused \(refused)")
}

/// Every leaf command under `medsynth`, by its space-separated name.
func leafCommands(_ type: any ParsableCommand.Type = MedSynth.self, prefix: [String] = []) -> [(String, any ParsableCommand.Type)]
{
    let subcommands = type.configuration.subcommands
    let name = type == MedSynth.self ? [] : prefix + [type._commandName]
    guard !subcommands.isEmpty else { return [(name.joined(separator: " "), type)] }
    return subcommands.flatMap { leafCommands($0, prefix: name) }
}

/// The lists above cannot fall behind the commands: every option whose help states a range, of
/// every command, is fuzzed and has its command's base arguments.
@Test func everyRangedOptionIsFuzzed() {
    for (command, type) in leafCommands() {
        let help = type.helpMessage(includeHidden: true, columns: 10_000)
        // An option's entry is its line and the description lines under it (a long label puts the
        // whole description on the next line).
        var ranged = Set<String>(), current: String?
        for line in help.split(separator: "\n") {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.hasPrefix("-") { current = text.hasPrefix("--") ? String(text.prefix { $0 != " " && $0 != "=" }) : nil }
            if let current, text.contains("Range ") { ranged.insert(current) }
        }
        guard !ranged.isEmpty else { continue }
        let listed = Set(numericOptions[command] ?? []).union(numericOptions[command + ":diffusion"] ?? [])
        #expect(ranged.subtracting(listed).isEmpty, "\(command): not fuzzed \(ranged.subtracting(listed).sorted())")
        #expect(baseArguments[command] != nil && commandTypes[command] != nil, "\(command): no base arguments")
    }
}
