import ArgumentParser
import CommandOptions
import Foundation
import TestSupport
import Testing
import Workflows

@testable import medsynth

// What moved out of the executable into CommandOptions: the option groups turn options into the
// libraries' specs, and the commands read their options through them.

@Test func aWorkerGetsTheCommandLineWithoutJobsAndWithWorker() {
    #expect(
        ExperimentCommandOptions.workerArguments(["experiment", "--jobs", "2", "--data", "d", "--jobs=3", "--out", "o"])
            == ["experiment", "--data", "d", "--out", "o", "--worker"])
}

@Test func commandsReadTheirOptionsThroughTheGroup() throws {
    let train = try TrainCommand.parse(["--dry-run", "--out", "o", "--epochs", "7"])
    #expect(train.epochs == 7 && train.options.epochs == 7 && train.dryRun)
    let sample = try GANCommand.Sample.parse(["--checkpoint", "c.safetensors", "--count", "5", "--out", "o"])
    #expect(sample.count == 5 && sample.batchSize == 64)
}

@Test func sampleOptionsBecomeTheLibrarysSpec() throws {
    let o = try GANSampleOptions.parse([
        "--checkpoint", "c.safetensors", "--count", "5", "--out", "o", "--class", "a", "--seed", "9", "--batch-size", "16",
        "--label", "2", "--sampling-steps", "10", "--guidance-scale", "1.5",
    ])
    let s = o.spec
    #expect(s.checkpoint == "c.safetensors" && s.count == 5 && s.className == "a" && s.seed == 9 && s.batchSize == 16)
    #expect(s.label == 2 && s.samplingSteps == 10 && s.guidanceScale == 1.5)
}

@Test func auditAndBalanceOptionsBecomeTheLibrarysSpecs() throws {
    let audit = try AuditCommandOptions.parse([
        "--synthetic", "s.npz", "--data", "d", "--out", "o", "--count", "7", "--seed", "3", "--image-size", "32",
        "--percentile", "5", "--kid-subsets", "20", "--class", "x",
    ]).spec()
    #expect(audit.synthetic == "s.npz" && audit.data == "d" && audit.count == 7 && audit.seed == 3 && audit.imageSize == 32)
    #expect(audit.options.percentile == 5 && audit.options.kidSubsets == 20 && audit.className == "x")
    let balance = try BalanceCommandOptions.parse([
        "--data", "d", "--gan", "a.safetensors", "--gan", "b.safetensors", "--out", "o", "--target", "50",
        "--max-synthetic-ratio", "2", "--select", "discriminator", "--candidates-factor", "3", "--seed", "4",
    ]).spec()
    #expect(balance.checkpoints == ["a.safetensors", "b.safetensors"] && balance.seed == 4)
    #expect(balance.options.maxSyntheticRatio == 2 && balance.options.candidatesFactor == 3)
    #expect(balance.options.target == .count(50) && balance.options.selection == .discriminator)
}

@Test func serveOptionsSetTheServersLimits() throws {
    let limits = try ServeOptions.parse([
        "--model", "m", "--max-body-bytes", "4096", "--max-image-pixels", "1000", "--request-timeout", "3",
        "--header-timeout", "4", "--max-concurrent", "5", "--inference-threads", "2",
    ]).limits
    #expect(limits.maxBodyBytes == 4096 && limits.maxImagePixels == 1000 && limits.requestTimeout == .seconds(3))
    #expect(limits.headerTimeout == .seconds(4) && limits.maxConcurrentInferences == 5 && limits.inferenceThreads == 2)
}

@Test func aDryRunJobWritesItsFakeDataInTheOutputFolder() throws {
    let out = try makeTemporaryFolder()
    defer { removeTemporary(out) }
    let job = try TrainOptions.parse(["--dry-run", "--out", out, "--no-track"]).job()
    #expect(job.spec.data == out + "/dry-run-data" && job.spec.training.epochs == 2 && job.spec.training.batchSize == 8)
    #expect(FileManager.default.fileExists(atPath: out + "/dry-run-data"))
}

@Test func epsilonStepsAreEpochsOverTheSamplingRate() throws {
    let o = try EpsilonOptions.parse(["--n", "60000", "--batch-size", "256", "--epochs", "60", "--noise-multiplier", "1.1"])
    #expect(o.steps == 14063)  // 60 / (256 / 60000) = 14062.5, rounded up
}
