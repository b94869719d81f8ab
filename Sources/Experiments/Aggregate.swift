import Classification
import Evaluation
import Foundation

extension Experiment {
    /// The finished cells of `arm`, one per seed.
    func cells(of arm: Arm) -> [Cell] { options.seeds.map { cells["\(arm.name)#\($0)"]! } }

    /// Per seed, the predicted class of every test image: argmax, or the rule tuned on validation.
    func predictions(_ arm: Arm, tuned: Bool) throws -> SeedPredictions {
        let k = train.classNames.count
        return try SeedPredictions(
            labels: test.labels,
            predictions: cells(of: arm).map {
                tuned ? $0.decision.predict($0.testProbabilities, classCount: k) : argmaxRows($0.testProbabilities, classCount: k)
            })
    }

    /// Seconds spent training the generators an arm uses, per seed (read from their done markers).
    func generatorSeconds(_ arm: Arm, seed: UInt64) -> Double {
        guard let kind = arm.generator else { return 0 }
        let dir = options.output.appendingPathComponent("generators").appendingPathComponent("seed-\(seed)")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter(kind.owns(folder:)).reduce(0) { sum, name in
            let url = dir.appendingPathComponent(name).appendingPathComponent("done.json")
            let done = FileManager.default.contents(atPath: url.path).flatMap {
                try? JSONDecoder().decode(GeneratorDone.self, from: $0)
            }
            return sum + (done?.seconds ?? 0)
        }
    }

    func aggregate(arms: [Arm], audits: [GeneratorAudit], alarms: [String], seconds: Double) throws -> ExperimentReport {
        let k = train.classNames.count, names = train.classNames
        var reports: [ArmReport] = []
        for arm in arms {
            let cs = cells(of: arm)
            let defaults = try cs.map {
                try EvaluationReport(classNames: names, labels: test.labels, probabilities: $0.testProbabilities)
            }
            let tuned = try cs.map {
                try EvaluationReport(
                    classNames: names, labels: test.labels,
                    predictions: $0.decision.predict($0.testProbabilities, classCount: k),
                    probabilities: $0.testProbabilities)
            }
            let best = cs.map { c in c.history.epochs.first { $0.epoch == c.history.bestEpoch } ?? c.history.epochs.last! }
            var confusion = Array(repeating: Array(repeating: 0, count: k), count: k)
            for r in defaults { for i in 0..<k { for j in 0..<k { confusion[i][j] += r.confusionMatrix[i][j] } } }
            var acceptance: [String: Acceptance] = [:], thresholds: [String: [Double]] = [:]
            for c in cs {
                for (name, a) in c.acceptance {
                    acceptance[name] = acceptance[name].map { $0 + a } ?? a
                    thresholds[name, default: []].append(a.threshold)
                }
            }
            for (name, t) in thresholds { acceptance[name]?.threshold = t.reduce(0, +) / Double(t.count) }
            let synthesis =
                arm.isGenerative
                ? try Stat(cs.map { $0.synthesisSeconds + generatorSeconds(arm, seed: $0.seed) }) : nil
            var grids: [String] = []
            if let kind = arm.generator {
                let dir = options.output.appendingPathComponent("generators").appendingPathComponent("seed-\(options.seeds[0])")
                let folders = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
                grids = folders.filter(kind.owns(folder:))
                    .map { dir.appendingPathComponent($0).appendingPathComponent("grid-final.png").path }
            }
            reports.append(
                ArmReport(
                    name: arm.name, description: arm.summary, generative: arm.isGenerative, trainImages: cs[0].trainImages,
                    test: try summarize(defaults), tunedTest: try summarize(tuned), decisionRules: cs.map(\.decision.description),
                    trainAccuracy: try Stat(best.map(\.trainAccuracy)), valAccuracy: try Stat(best.map(\.valAccuracy)),
                    valBalancedAccuracy: try Stat(best.map(\.valBalancedAccuracy)), confusionMatrix: confusion,
                    trainSeconds: try Stat(cs.map(\.seconds)), synthesisSeconds: synthesis,
                    balancedAccuracyVsOriginal: nil, minorityRecallVsOriginal: nil, tunedBalancedAccuracyVsOriginal: nil,
                    tunedMinorityRecallVsOriginal: nil, acceptance: acceptance.isEmpty ? nil : acceptance,
                    curves: cs.map {
                        $0.history.epochs.map {
                            CurvePoint(
                                epoch: $0.epoch, trainLoss: $0.trainLoss, trainAccuracy: $0.trainAccuracy, valLoss: $0.valLoss,
                                valAccuracy: $0.valAccuracy, valMacroF1: $0.valMacroF1)
                        }
                    },
                    alarms: seedAlarms(cs.map(\.seed), defaults.map(\.alarms)), gridPaths: grids))
        }
        try compareWithOriginal(arms: arms, reports: &reports)
        let baseline = try majorityBaseline(trainLabels: train.labels, testLabels: test.labels, classNames: names)
        var all = alarms
        all += arms.compactMap { uniformWeightsNote($0, trainImages: cells(of: $0).map(\.trainImages)) }
        for arm in reports { all += arm.alarms.map { "\(arm.name): \($0)" } }
        if !arms.contains(.original) { all.append("no `original` arm: differences against it are not reported") }
        return ExperimentReport(
            dataset: options.data, testSource: testSource, imageSize: options.imageSize, arch: options.arch.rawValue,
            seeds: options.seeds, classNames: names, minorityClasses: minorityClasses, splitCounts: splitCounts,
            statistics: statisticsDescription, testImages: test.count, majorityBaseline: try summarize([baseline]), arms: reports,
            whatHelped: try whatHelped(arms: arms, reports: reports), generatorAudits: audits,
            ratioCurve: ratioCurve(reports: reports),
            alarms: all, seconds: seconds, ranks: ranks, settings: settings)
    }

    var statisticsDescription: String {
        "Differences are paired two-level bootstrap intervals (\(options.resamples) resamples of the \(options.seeds.count) "
            + "seed(s) and, crossed with them, of the \(test.count) test images, the same draws for both arms), Holm-corrected "
            + "over the arms compared with original (familywise error \(options.alpha)); a verdict says \"helps\" or \"hurts\" only "
            + "when the corrected interval excludes 0."
    }

    /// Every arm against `original`, per statistic, with the default and the tuned decision.
    func compareWithOriginal(arms: [Arm], reports: inout [ArmReport]) throws {
        guard arms.contains(.original) else { return }
        let others = arms.filter { $0 != .original }
        guard !others.isEmpty else { return }
        let k = train.classNames.count
        for tuned in [false, true] {
            let reference = try predictions(.original, tuned: tuned)
            let candidates = try others.map { (name: $0.name, predictions: try predictions($0, tuned: tuned)) }
            func compare(_ statistic: ComparedStatistic) throws -> [String: Contrast] {
                let result = try PairedBootstrap.compare(
                    reference: reference, arms: candidates, classCount: k, statistic: statistic,
                    alpha: options.alpha, resamples: options.resamples, seed: 7)
                return Dictionary(uniqueKeysWithValues: result.map { ($0.name, Contrast($0, reference: "original")) })
            }
            let ba = try compare(.balancedAccuracy)
            var recall: [String: [String: Contrast]] = [:]
            for name in minorityClasses {
                let c = train.classNames.firstIndex(of: name)!
                for (arm, contrast) in try compare(.recall(classIndex: c)) { recall[arm, default: [:]][name] = contrast }
            }
            for i in reports.indices where reports[i].name != "original" {
                if tuned {
                    reports[i].tunedBalancedAccuracyVsOriginal = ba[reports[i].name]
                    reports[i].tunedMinorityRecallVsOriginal = recall[reports[i].name]
                } else {
                    reports[i].balancedAccuracyVsOriginal = ba[reports[i].name]
                    reports[i].minorityRecallVsOriginal = recall[reports[i].name]
                }
            }
        }
    }

    /// The best generative arm against the best non-generative one, each chosen by mean validation
    /// balanced accuracy (never by test), compared on balanced accuracy and each minority recall
    /// with Holm's correction over those statistics.
    func whatHelped(arms: [Arm], reports: [ArmReport]) throws -> WhatHelped? {
        let scored = zip(arms, reports).filter { !$0.0.syntheticOnly }
        guard
            let gen = scored.filter({ $0.0.isGenerative }).max(by: {
                $0.1.valBalancedAccuracy.mean < $1.1.valBalancedAccuracy.mean
            }),
            let base = scored.filter({ !$0.0.isGenerative }).max(by: {
                $0.1.valBalancedAccuracy.mean < $1.1.valBalancedAccuracy.mean
            })
        else { return nil }
        let a = try predictions(base.0, tuned: false), b = try predictions(gen.0, tuned: false)
        let k = train.classNames.count
        var statistics: [(String, ComparedStatistic)] = [("balanced accuracy", .balancedAccuracy)]
        for name in minorityClasses { statistics.append((name, .recall(classIndex: train.classNames.firstIndex(of: name)!))) }
        let raw = try statistics.map {
            try PairedBootstrap.difference(
                a, b, classCount: k, statistic: $0.1, resamples: options.resamples, level: 0.95, seed: 11)
        }
        let adjusted = holmAdjusted(raw.map(\.pValue))
        // Holm's step-down: the j-th smallest p-value is judged at alpha / (m - j + 1); its interval at that level.
        let order = raw.indices.sorted { raw[$0].pValue < raw[$1].pValue }
        var contrasts = [Contrast?](repeating: nil, count: raw.count)
        for (rank, i) in order.enumerated() {
            let level = 1 - options.alpha / Double(raw.count - rank)
            let r = try PairedBootstrap.difference(
                a, b, classCount: k, statistic: statistics[i].1, resamples: options.resamples,
                level: level, seed: 11)
            contrasts[i] = Contrast(
                name: gen.0.name, reference: base.0.name, mean: r.estimate, ci: [r.lower, r.upper], level: level,
                pValue: raw[i].pValue, adjustedPValue: adjusted[i], seeds: options.seeds.count,
                testImages: test.count, resamples: r.resamples)
        }
        let ba = contrasts[0]!
        var recall: [String: Contrast] = [:]
        for (i, s) in statistics.enumerated().dropFirst() { recall[s.0] = contrasts[i]! }
        let word =
            ba.verdict == Verdict.helps.rawValue
            ? "beats" : (ba.verdict == Verdict.hurts.rawValue ? "is worse than" : "does not detectably differ from")
        let summary =
            "The best generative arm, \(gen.0.name), \(word) the best non-generative arm, \(base.0.name), in balanced "
            + "accuracy (\(ba.text), Holm-corrected \(String(format: "%.1f", ba.level * 100))% interval); "
            + recall.keys.sorted().map { "\($0) recall \(recall[$0]!.verdict) (\(recall[$0]!.text))" }.joined(separator: "; ")
            + "."
        return WhatHelped(
            bestGenerative: gen.0.name, bestBaseline: base.0.name,
            selection: "highest mean validation balanced accuracy over seeds (synthetic-only excluded)",
            balancedAccuracy: ba, minorityRecall: recall, acceptance: gen.1.acceptance, summary: summary)
    }

    /// The swept arms (and the same arm uncapped, when run), ordered by ratio.
    func ratioCurve(reports: [ArmReport]) -> [RatioPoint] {
        guard !options.ratioSweep.isEmpty else { return [] }
        return options.allArms.compactMap { arm -> RatioPoint? in
            var plain = arm
            plain.ratio = nil
            var sweep = options.sweepArm
            sweep.ratio = nil
            guard plain == sweep, let r = arm.ratio, let report = reports.first(where: { $0.name == arm.name }) else {
                return nil
            }
            var recall: [String: Stat] = [:]
            for name in minorityClasses { recall[name] = report.test.perClass[name]?.recall }
            return RatioPoint(arm: arm.name, ratio: r, balancedAccuracy: report.test.balancedAccuracy, minorityRecall: recall)
        }.sorted { $0.ratio < $1.ratio }
    }

    /// Mean and spread over seeds of each metric.
    func summarize(_ reports: [EvaluationReport]) throws -> TestMetrics {
        func stat(_ f: (EvaluationReport) -> Double?) throws -> Stat? {
            let v = reports.compactMap(f)
            return v.isEmpty ? nil : try Stat(v)
        }
        var perClass: [String: ClassSummary] = [:]
        for name in reports[0].classNames {
            perClass[name] = ClassSummary(
                precision: try stat { $0.perClass[name]?.precision }!, recall: try stat { $0.perClass[name]?.recall }!,
                f1: try stat { $0.perClass[name]?.f1 }!, auc: try stat { $0.perClass[name]?.auc },
                support: reports[0].perClass[name]?.support ?? 0)
        }
        return TestMetrics(
            accuracy: try stat { $0.accuracy }!, balancedAccuracy: try stat { $0.balancedAccuracy }!,
            macroF1: try stat { $0.macroF1 }!, macroAUC: try stat { $0.macroAUC }, loss: try stat { $0.loss },
            perClass: perClass)
    }
}

/// Each distinct alarm of an arm once, naming the seeds that raised it when there are several
/// seeds: "class 'x' is never predicted (9 examples, recall 0) in seeds 0, 2 of 3". Without the
/// seeds, "never predicted" (one seed) and "never predicted correctly" (another) read as one
/// class raising two alarms.
/// When a weighted generative arm's synthetic images leave every class with the same number of
/// training images in every seed, its inverse-frequency weights are all 1 and it trains exactly as
/// the arm without `weighted` (same seeds, same images): say so, since it still counts in the Holm
/// correction. `trainImages`: per seed, each class's real and synthetic counts.
func uniformWeightsNote(_ arm: Arm, trainImages: [[String: ImageCounts]]) -> String? {
    guard arm.classWeights, arm.isGenerative, !trainImages.isEmpty else { return nil }
    let totals = trainImages.map { Set($0.values.map { $0.real + $0.synthetic }) }
    guard totals.allSatisfy({ $0.count == 1 }) else { return nil }
    var unweighted = arm
    unweighted.classWeights = false
    let sizes = Set(totals.compactMap(\.first)).sorted().map(String.init).joined(separator: ", ")
    return "\(arm.name) trains exactly as \(unweighted.name): after synthesis every class holds \(sizes) training "
        + "images, so its class weights are all 1 (it still counts in the Holm correction; cap the synthetic share, "
        + "e.g. --max-synthetic-ratio 1, or leave the arm out)"
}

func seedAlarms(_ seeds: [UInt64], _ alarms: [[String]]) -> [String] {
    var raisedBy: [String: [UInt64]] = [:]
    for (seed, list) in zip(seeds, alarms) { for alarm in Set(list) { raisedBy[alarm, default: []].append(seed) } }
    return raisedBy.keys.sorted().map { alarm in
        guard seeds.count > 1 else { return alarm }
        let which = raisedBy[alarm]!.sorted()
        return which.count == seeds.count
            ? "\(alarm) in all \(seeds.count) seeds"
            : "\(alarm) in seed\(which.count == 1 ? "" : "s") \(which.map(String.init).joined(separator: ", ")) of \(seeds.count)"
    }
}
