import Datasets
import Evaluation
import Foundation
import TestSupport
import Testing

@testable import Workflows

/// The per-class table `train` and `evaluate` print, on a hand-counted report: two classes,
/// labels [0, 0, 1, 1], predictions [0, 1, 1, 1].
@Test func evaluationTableListsEachClassTheScoresAndTheMatrix() throws {
    let r = try EvaluationReport(classNames: ["benign", "malignant"], labels: [0, 0, 1, 1], predictions: [0, 1, 1, 1])
    let baseline = try EvaluationReport(classNames: ["benign", "malignant"], labels: [0, 0, 1, 1], predictions: [1, 1, 1, 1])
    let lines = r.table(title: "4 test images", baseline: baseline).split(separator: "\n").map(String.init)
    #expect(lines.count == 7, "\(lines)")
    #expect(lines[0] == "4 test images")
    #expect(lines[1] == "class      precision  recall      f1     auc  support")
    // benign: precision 1/1, recall 1/2, F1 2/3; malignant: precision 2/3, recall 1, F1 0.8.
    #expect(lines[2] == "benign         1.000   0.500   0.667     -          2", "\(lines[2])")
    #expect(lines[3] == "malignant      0.667   1.000   0.800     -          2", "\(lines[3])")
    #expect(lines[4].hasPrefix("accuracy 0.750  balanced accuracy 0.750  macro-F1 0.733  "), "\(lines[4])")
    #expect(lines[5] == "majority baseline: accuracy 0.500  balanced accuracy 0.500  macro-F1 0.333", "\(lines[5])")
    #expect(lines.last == "confusion matrix (rows true, columns predicted): [[1, 1], [0, 2]]", "\(lines)")
}

/// `gan train` into a folder that holds a run is refused, naming the way out, before any work.
@Test func generatorRunRefusesAFolderThatHoldsARun() throws {
    let out = URL(fileURLWithPath: try makeTemporaryFolder()).appendingPathComponent("run")
    var spec = GeneratorRunSpec()
    spec.plan.maxSteps = 1
    spec.gan.batchSize = 8
    spec.ganWidth = 8
    var events: [WorkflowEvent] = []
    let result = try GeneratorRun.train(spec, output: out) { events.append($0) }
    #expect(result.steps == 1 && result.runID == nil && result.epsilon == nil)
    #expect(events.contains(.note("training a DCGAN on 24 images (a), 1x28x28")), "\(events)")
    #expect(events.contains(.endProgress))
    #expect(throws: OptionRefusal.self) { try GeneratorRun.train(spec, output: out) }
    #expect(try GeneratorRun.train(spec, output: out, overwrite: true).steps == 1)
}
