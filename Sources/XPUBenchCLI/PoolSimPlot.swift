import Foundation

/// The allocation curve as a hand-written SVG: GPU allocation rate against arrived workload, one
/// line per policy, with the ideal (everything that arrives is allocated) dashed.
struct PoolSimPlot {
    var report: PoolSimReport

    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]

    func svg() -> String {
        let width = 720.0
        let height = 460.0
        let left = 70.0
        let right = 170.0
        let top = 40.0
        let bottom = 60.0
        let plotWidth = width - left - right
        let plotHeight = height - top - bottom
        let xMax = max(report.setup.ratio, 0.01)
        let yMax = 1.0
        func x(_ value: Double) -> Double { left + value / xMax * plotWidth }
        func y(_ value: Double) -> Double { top + (1 - value / yMax) * plotHeight }
        func f(_ value: Double) -> String { String(format: "%.1f", value) }

        var svg: [String] = []
        svg.append(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
                + "viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">")
        svg.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>")
        let setup = report.setup
        let title =
            "GPU allocation vs arrived workload (\(setup.mode.rawValue) placement, "
            + (setup.wholeCard ? "whole cards" : "GPU sharing") + ", \(setup.seeds.count) seeds)"
        svg.append("<text x=\"\(f(left))\" y=\"22\" font-size=\"14\">\(escape(title))</text>")
        // Grid and axes.
        var tick = 0.0
        while tick <= xMax + 1e-9 {
            svg.append(
                "<line x1=\"\(f(x(tick)))\" y1=\"\(f(top))\" x2=\"\(f(x(tick)))\" y2=\"\(f(top + plotHeight))\" stroke=\"#e0e0e0\"/>")
            svg.append(
                "<text x=\"\(f(x(tick)))\" y=\"\(f(top + plotHeight + 18))\" text-anchor=\"middle\">\(Int((tick * 100).rounded()))</text>")
            tick += 0.1
        }
        tick = 0
        while tick <= yMax + 1e-9 {
            svg.append(
                "<line x1=\"\(f(left))\" y1=\"\(f(y(tick)))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(y(tick)))\" stroke=\"#e0e0e0\"/>")
            svg.append(
                "<text x=\"\(f(left - 8))\" y=\"\(f(y(tick) + 4))\" text-anchor=\"end\">\(Int((tick * 100).rounded()))</text>")
            tick += 0.1
        }
        svg.append(
            "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotWidth))\" height=\"\(f(plotHeight))\" fill=\"none\" stroke=\"black\"/>")
        svg.append(
            "<text x=\"\(f(left + plotWidth / 2))\" y=\"\(f(height - 18))\" text-anchor=\"middle\">arrived workload (% of cluster milli-GPU)</text>")
        svg.append(
            "<text transform=\"translate(18 \(f(top + plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">GPU allocation rate (%)</text>")
        // Ideal: every arrived milli-GPU allocated, up to the capacity.
        svg.append(
            "<polyline points=\"\(f(x(0))),\(f(y(0))) \(f(x(1))),\(f(y(1))) \(f(x(xMax))),\(f(y(1)))\" fill=\"none\" stroke=\"#888\" stroke-dasharray=\"5 4\"/>")
        // One line per policy; with whole cards a dotted line for the served demand too.
        for (index, result) in report.results.enumerated() {
            let color = PoolSimPlot.colors[index % PoolSimPlot.colors.count]
            let points = result.curve.map { "\(f(x($0.arrived))),\(f(y($0.allocation)))" }.joined(separator: " ")
            svg.append("<polyline points=\"\(points)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.8\"/>")
            if setup.wholeCard {
                let served = result.curve.map { "\(f(x($0.arrived))),\(f(y($0.served)))" }.joined(separator: " ")
                svg.append(
                    "<polyline points=\"\(served)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.2\" stroke-dasharray=\"2 3\"/>")
            }
            let legendY = top + 14 + Double(index) * 20
            svg.append(
                "<line x1=\"\(f(left + plotWidth + 12))\" y1=\"\(f(legendY - 4))\" x2=\"\(f(left + plotWidth + 36))\" y2=\"\(f(legendY - 4))\" stroke=\"\(color)\" stroke-width=\"2\"/>")
            let label = String(format: "%@ %.2f%%", result.policy, result.allocationRate.mean * 100)
            svg.append("<text x=\"\(f(left + plotWidth + 42))\" y=\"\(f(legendY))\">\(escape(label))</text>")
        }
        let noteY = top + 14 + Double(report.results.count) * 20 + 6
        svg.append(
            "<text x=\"\(f(left + plotWidth + 12))\" y=\"\(f(noteY))\" fill=\"#666\">dashed: ideal</text>")
        if setup.wholeCard {
            svg.append(
                "<text x=\"\(f(left + plotWidth + 12))\" y=\"\(f(noteY + 18))\" fill=\"#666\">dotted: demand served</text>")
        }
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
    }
}
