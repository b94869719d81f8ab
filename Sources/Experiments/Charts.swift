import Evaluation
import Foundation

/// Small, dependency-free SVG charts for the HTML report (no network needed to view them).
public enum SVGChart {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]

    static func f(_ x: Double) -> String { String(format: "%.1f", x) }

    /// Lines of (x, y) points with a legend; y range from the data (or `yRange`).
    public static func lines(
        title: String, series: [(name: String, points: [(Double, Double)])], xLabel: String,
        yLabel: String, yRange: ClosedRange<Double>? = nil, width: Int = 420, height: Int = 260
    ) -> String {
        let all = series.flatMap(\.points)
        guard !all.isEmpty else { return "" }
        let xs = all.map(\.0), ys = all.map(\.1)
        let (x0, x1) = (xs.min()!, max(xs.max()!, xs.min()! + 1))
        var (y0, y1) = yRange.map { ($0.lowerBound, $0.upperBound) } ?? (min(ys.min()!, 0), ys.max()!)
        if y1 <= y0 { y1 = y0 + 1 }
        let (l, r, t, b) = (48.0, 110.0, 24.0, 36.0)
        let pw = Double(width) - l - r, ph = Double(height) - t - b
        func px(_ x: Double) -> Double { l + (x - x0) / (x1 - x0) * pw }
        func py(_ y: Double) -> Double { t + (1 - (y - y0) / (y1 - y0)) * ph }
        var s =
            "<svg xmlns='http://www.w3.org/2000/svg' width='\(width)' height='\(height)' font-family='sans-serif' font-size='11'>"
        s += "<text x='\(f(l))' y='14' font-weight='bold'>\(escapeHTML(title))</text>"
        s += "<rect x='\(f(l))' y='\(f(t))' width='\(f(pw))' height='\(f(ph))' fill='none' stroke='#999'/>"
        for k in 0...4 {
            let y = y0 + (y1 - y0) * Double(k) / 4
            s += "<line x1='\(f(l))' x2='\(f(l + pw))' y1='\(f(py(y)))' y2='\(f(py(y)))' stroke='#eee'/>"
            s += "<text x='\(f(l - 4))' y='\(f(py(y) + 4))' text-anchor='end'>\(String(format: "%.2f", y))</text>"
        }
        s += "<text x='\(f(l + pw / 2))' y='\(height - 6)' text-anchor='middle'>\(escapeHTML(xLabel))</text>"
        s +=
            "<text x='12' y='\(f(t + ph / 2))' transform='rotate(-90 12 \(f(t + ph / 2)))' text-anchor='middle'>\(escapeHTML(yLabel))</text>"
        for (i, line) in series.enumerated() {
            let color = palette[i % palette.count]
            let pts = line.points.map { "\(f(px($0.0))),\(f(py($0.1)))" }.joined(separator: " ")
            s += "<polyline fill='none' stroke='\(color)' stroke-width='1.5' points='\(pts)'/>"
            let ly = t + 12 + Double(i) * 14
            s +=
                "<line x1='\(f(l + pw + 8))' x2='\(f(l + pw + 22))' y1='\(f(ly - 4))' y2='\(f(ly - 4))' stroke='\(color)' stroke-width='2'/>"
            s += "<text x='\(f(l + pw + 26))' y='\(f(ly))'>\(escapeHTML(line.name))</text>"
        }
        return s + "</svg>"
    }

    /// A confusion matrix as a heat map: rows true classes, columns predicted, cells shaded by
    /// the row-normalised rate and labelled with counts.
    public static func heatmap(title: String, matrix: [[Int]], labels: [String], cell: Int = 34) -> String {
        let n = labels.count, left = 130.0, top = 36.0
        let width = Int(left) + n * cell + 20, height = Int(top) + n * cell + 90
        var s =
            "<svg xmlns='http://www.w3.org/2000/svg' width='\(width)' height='\(height)' font-family='sans-serif' font-size='10'>"
        s += "<text x='4' y='14' font-weight='bold'>\(escapeHTML(title))</text>"
        s += "<text x='\(f(left + Double(n * cell) / 2))' y='28' text-anchor='middle'>predicted</text>"
        for (i, row) in matrix.enumerated() {
            let total = max(row.reduce(0, +), 1)
            s +=
                "<text x='\(f(left - 4))' y='\(f(top + Double(i * cell + cell / 2 + 4)))' text-anchor='end'>\(escapeHTML(labels[i]))</text>"
            for (j, v) in row.enumerated() {
                let rate = Double(v) / Double(total)
                let shade = Int(255 - rate * 200)
                let color = i == j ? "rgb(\(shade),\(min(255, shade + 40)),\(shade))" : "rgb(255,\(shade),\(shade))"
                let x = left + Double(j * cell), y = top + Double(i * cell)
                s += "<rect x='\(f(x))' y='\(f(y))' width='\(cell)' height='\(cell)' fill='\(color)' stroke='#fff'/>"
                s += "<text x='\(f(x + Double(cell) / 2))' y='\(f(y + Double(cell) / 2 + 4))' text-anchor='middle'>\(v)</text>"
            }
        }
        for (j, label) in labels.enumerated() {
            let x = left + Double(j * cell + cell / 2), y = top + Double(n * cell) + 6
            s += "<text x='\(f(x))' y='\(f(y))' transform='rotate(45 \(f(x)) \(f(y)))'>\(escapeHTML(label))</text>"
        }
        return s + "</svg>"
    }

    /// Grouped horizontal bars: one group per category, one bar per series, values in [0, 1]
    /// with optional error bars.
    public static func groupedBars(
        title: String, categories: [String], series: [(name: String, values: [Double], errors: [Double]?)],
        width: Int = 560
    ) -> String {
        let bar = 10.0, gap = 8.0, left = 140.0, top = 36.0
        let groupHeight = Double(series.count) * bar + gap
        let height = Int(top + Double(categories.count) * groupHeight + 20 + Double(series.count) * 14)
        let pw = Double(width) - left - 30
        var s =
            "<svg xmlns='http://www.w3.org/2000/svg' width='\(width)' height='\(height)' font-family='sans-serif' font-size='10'>"
        s += "<text x='4' y='14' font-weight='bold'>\(escapeHTML(title))</text>"
        for k in 0...4 {
            let x = left + pw * Double(k) / 4
            s +=
                "<line x1='\(f(x))' x2='\(f(x))' y1='\(f(top))' y2='\(f(top + Double(categories.count) * groupHeight))' stroke='#eee'/>"
            s += "<text x='\(f(x))' y='\(f(top - 3))' text-anchor='middle'>\(String(format: "%.2f", Double(k) / 4))</text>"
        }
        for (c, category) in categories.enumerated() {
            let gy = top + Double(c) * groupHeight
            s += "<text x='\(f(left - 4))' y='\(f(gy + groupHeight / 2))' text-anchor='end'>\(escapeHTML(category))</text>"
            for (i, line) in series.enumerated() {
                let v = max(0, min(1, line.values[c]))
                let y = gy + Double(i) * bar
                s +=
                    "<rect x='\(f(left))' y='\(f(y))' width='\(f(v * pw))' height='\(f(bar - 1))' fill='\(palette[i % palette.count])'/>"
                if let e = line.errors?[c], e > 0 {
                    s +=
                        "<line x1='\(f(left + max(0, v - e) * pw))' x2='\(f(left + min(1, v + e) * pw))' y1='\(f(y + bar / 2))' y2='\(f(y + bar / 2))' stroke='#000'/>"
                }
            }
        }
        let ly = top + Double(categories.count) * groupHeight + 14
        for (i, line) in series.enumerated() {
            let y = ly + Double(i) * 14
            s += "<rect x='\(f(left))' y='\(f(y - 9))' width='10' height='10' fill='\(palette[i % palette.count])'/>"
            s += "<text x='\(f(left + 14))' y='\(f(y))'>\(escapeHTML(line.name))</text>"
        }
        return s + "</svg>"
    }

    /// A forest plot: one row per comparison, its point estimate and (corrected) interval on a
    /// shared axis with a line at 0; green when the interval lies above 0, red below, grey across.
    public static func intervals(
        title: String, rows: [(name: String, mean: Double, lower: Double, upper: Double)],
        xLabel: String, width: Int = 620
    ) -> String {
        guard !rows.isEmpty else { return "" }
        let left = 190.0, right = 20.0, top = 34.0, rowHeight = 20.0
        let height = Int(top + Double(rows.count) * rowHeight + 40)
        let lo = min(rows.map(\.lower).min()!, 0), hi = max(rows.map(\.upper).max()!, 0)
        let span = max(hi - lo, 0.02), x0 = lo - span * 0.05, x1 = hi + span * 0.05
        let pw = Double(width) - left - right
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * pw }
        var s =
            "<svg xmlns='http://www.w3.org/2000/svg' width='\(width)' height='\(height)' font-family='sans-serif' font-size='11'>"
        s += "<text x='4' y='14' font-weight='bold'>\(escapeHTML(title))</text>"
        let bottom = top + Double(rows.count) * rowHeight
        for k in 0...4 {
            let v = x0 + (x1 - x0) * Double(k) / 4
            s += "<line x1='\(f(px(v)))' x2='\(f(px(v)))' y1='\(f(top))' y2='\(f(bottom))' stroke='#eee'/>"
            s += "<text x='\(f(px(v)))' y='\(f(bottom + 14))' text-anchor='middle'>\(String(format: "%+.2f", v))</text>"
        }
        s += "<line x1='\(f(px(0)))' x2='\(f(px(0)))' y1='\(f(top - 4))' y2='\(f(bottom))' stroke='#333'/>"
        s += "<text x='\(f(left + pw / 2))' y='\(f(bottom + 30))' text-anchor='middle'>\(escapeHTML(xLabel))</text>"
        for (i, r) in rows.enumerated() {
            let y = top + Double(i) * rowHeight + rowHeight / 2
            let color = r.lower > 0 ? "#2ca02c" : (r.upper < 0 ? "#d62728" : "#7f7f7f")
            s += "<text x='\(f(left - 6))' y='\(f(y + 4))' text-anchor='end'>\(escapeHTML(r.name))</text>"
            s +=
                "<line x1='\(f(px(r.lower)))' x2='\(f(px(r.upper)))' y1='\(f(y))' y2='\(f(y))' stroke='\(color)' stroke-width='3'/>"
            s += "<circle cx='\(f(px(r.mean)))' cy='\(f(y))' r='4' fill='\(color)'/>"
        }
        return s + "</svg>"
    }
}
