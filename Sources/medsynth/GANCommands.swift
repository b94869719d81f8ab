import ArgumentParser
import CommandOptions
import Foundation
import Workflows

/// `medsynth gan ...`: GANs and diffusion models (`--generator`; see CommandOptions/GeneratorOptions.swift).
struct GANCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gan",
        abstract: "Train and sample image generators: DCGANs, or diffusion models with --generator diffusion.",
        subcommands: [Train.self, Sample.self, Distill.self])

    struct Train: ParsableCommand, OptionsCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a generator on one class, or a class-conditional one on all classes, of a dataset's training split.")
        @OptionGroup var options: GANTrainOptions

        func spec() throws -> GeneratorRunSpec { try options.spec() }

        func run() throws {
            var progress = ProgressLine()
            try options.train { progress.show($0) }
        }
    }

    struct Sample: ParsableCommand, OptionsCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sample images from a trained GAN or diffusion checkpoint (EMA weights) as numbered PNGs or an .npz.")
        @OptionGroup var options: GANSampleOptions

        func run() throws { ProgressLine().note(try options.write()) }
    }

    struct Distill: ParsableCommand, OptionsCommand {
        static let configuration = CommandConfiguration(
            abstract: "Distil a diffusion checkpoint into one that samples in a few DDIM steps without guidance rows.")
        @OptionGroup var options: GANDistillOptions

        func run() throws {
            var progress = ProgressLine()
            try options.distill { progress.show($0) }
        }
    }
}
