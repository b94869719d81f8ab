import Foundation

extension InspectionReport {
    /// The report as a plain-text table: counts per class and split, shares, imbalance, shapes,
    /// then unreadable files, empty classes and warnings.
    public var text: String {
        let r = self
        func pad(_ s: String, _ n: Int, right: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, n - s.count))
            return right ? fill + s : s + fill
        }
        let nameWidth = max(12, (r.classes.map(\.name.count).max() ?? 0) + 2)
        var lines = ["\(r.path): \(r.format.rawValue), \(r.total) images, output \(r.outputShape), splits: \(r.splitSource)", ""]
        lines.append(
            pad("class", nameWidth) + ["train", "val", "test", "total"].map { pad($0, 9, right: true) }.joined()
                + pad("share", 9, right: true) + pad("imbalance", 11, right: true) + "  shapes")
        for c in r.classes {
            let shapes = c.shapes.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: ", ")
            let cells = [c.counts["train"] ?? 0, c.counts["val"] ?? 0, c.counts["test"] ?? 0, c.total].map {
                pad("\($0)", 9, right: true)
            }
            lines.append(
                pad(c.name, nameWidth) + cells.joined() + pad(String(format: "%.1f%%", c.share * 100), 9, right: true)
                    + pad(c.total == 0 ? "empty" : String(format: "1:%.1f", c.imbalanceRatio), 11, right: true) + "  " + shapes)
        }
        let totals = ["train", "val", "test"].map { pad("\(r.splitTotals[$0] ?? 0)", 9, right: true) }
        lines.append(pad("all", nameWidth) + totals.joined() + pad("\(r.total)", 9, right: true))
        let dicomClasses = r.classes.filter { !$0.dicom.isEmpty }
        if !dicomClasses.isEmpty {
            lines.append("")
            lines.append("DICOM (modality, bits stored/allocated, photometric interpretation):")
            for c in dicomClasses {
                let kinds = c.dicom.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: "; ")
                lines.append("  " + pad(c.name, nameWidth) + kinds)
            }
        }
        lines.append("")
        lines.append("unreadable files: \(r.unreadable.count)")
        lines += r.unreadable.map { "  \($0.reason)" }
        let empty = r.classes.filter { $0.total == 0 }.map(\.name)
        if !empty.isEmpty { lines.append("classes without a usable image: \(empty.joined(separator: ", "))") }
        if !r.warnings.isEmpty { lines.append("warnings:") }
        lines += r.warnings.map { "  \($0)" }
        return lines.joined(separator: "\n")
    }
}
