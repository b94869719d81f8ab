// Coverage of PairedBootstrap's 95% intervals over many simulated experiments, in a release build
// (the calibration tests run 400 experiments in debug). Built by scripts/calibration-coverage.sh.
import Foundation

let arguments = CommandLine.arguments
let experiments = arguments.count > 1 ? Int(arguments[1])! : 1000
// Standard deviations of the per-image arm effect, in logits (0: the constant-shift scenarios).
let imageEffectSDs = arguments.count > 2 ? arguments[2].split(separator: ",").map { Double($0)! } : [0, 3]
// "new" (the interval), "raw" (pigeonhole), "old" (pooled, slow): comma-separated.
let methods = Set((arguments.count > 3 ? arguments[3] : "new").split(separator: ",").map(String.init))

print("imageSD seeds statistic shift truth new raw pooled")
for sd in imageEffectSDs {
    for seeds in [3, 5] {
        for (name, statistic) in [("recall", ComparedStatistic.recall(classIndex: 1)), ("balanced", .balancedAccuracy)] {
            for shift in [0.0, 0.6] {
                var scenario = twoClass(seeds: seeds, rareShift: shift)
                scenario.imageEffectSD = sd
                let c = try coverage(scenario, statistic: statistic, experiments: experiments,
                                     resamples: 400, methods: methods)
                func cell(_ m: String, _ x: Double) -> String { methods.contains(m) ? String(format: "%.3f", x) : "-" }
                print(String(format: "%.1f %d %@ %.1f %+.4f ", sd, seeds, name, shift, scenario.trueDifference(statistic))
                      + [cell("new", c.new), cell("raw", c.raw), cell("old", c.old)].joined(separator: " "))
            }
        }
    }
}
