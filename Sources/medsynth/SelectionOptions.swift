import ArgumentParser
import Datasets

/// `--classes` and `--subsample`: the class selection every command that reads a dataset takes.
struct ClassSelectionOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Classes to keep, in label order: NAME keeps a class, NAME=A+B merges classes A and B into NAME.",
            discussion: "E.g. \"benign=melanocytic_nevus,malignant=melanoma+basal_cell_carcinoma,vascular_lesion\". "
                + "Unlisted classes are dropped.",
            valueName: "selection"))
    var classes: String?
    @Option(
        help: ArgumentHelp(
            "Keep at most N images of a class (after merging, before splitting; drawn with the split seed).",
            discussion: "E.g. \"benign=1800,normal=235\".", valueName: "CLASS=N,..."))
    var subsample: String?

    func validate() throws {
        do { _ = try selection(seed: 0) } catch let error as DatasetError { throw ValidationError(error.description) }
    }

    /// The selection, or nil when neither option is given.
    func selection(seed: UInt64) throws -> ClassSelection? {
        guard classes != nil || subsample != nil else { return nil }
        return try ClassSelection(classes: classes, subsample: subsample, seed: seed)
    }
}
