import ArgumentParser
import Testing

@testable import medsynth

// `gan distill` and `bench diffusion --distilled-steps`: every numeric option refused out of its
// range, naming the option, before any work (parsing runs `validate()`; nothing is run).

let distillArguments = ["--checkpoint", "c.safetensors", "--data", "d", "--out", "out"]

@Test(arguments: [
    ("--steps", "0"), ("--steps", "513"), ("--from-steps", "1"), ("--from-steps", "1001"), ("--from-steps", "12"),
    ("--from-steps", "4"), ("--iterations", "0"), ("--iterations", "-3"), ("--batch-size", "0"), ("--batch-size", "1025"),
    ("--lr", "0"), ("--lr", "nan"), ("--ema-decay", "1"), ("--checkpoint-every", "0"), ("--channels", "2"),
    ("--max-read-bytes", "1"),
])
func distillRefusesOutOfRangeOptions(_ option: String, _ value: String) {
    do {
        _ = try GANCommand.Distill.parse(distillArguments + ["\(option)=\(value)"])
        Issue.record("gan distill \(option)=\(value) was accepted")
    } catch {
        let message = GANCommand.Distill.message(for: error)
        #expect(message.contains(option), "\(message)")
    }
}

@Test func distillAcceptsItsDefaultsAndShowsItsRanges() throws {
    let command = try GANCommand.Distill.parse(distillArguments + ["--from-steps", "16", "--steps", "2"])
    #expect(try command.options.spec().options.stageSteps == [8, 4, 2])
    let help = MedSynth.helpMessage(for: GANCommand.Distill.self, columns: 400)
    #expect(help.contains("Range 1...512.") && help.contains("Range 2...1000."))
    #expect(throws: (any Error).self) { try BenchCommand.DiffusionBench.parse(["--distilled-steps=0"]) }
}
