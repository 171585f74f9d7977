import Foundation

/// An SVG line plot of copy throughput vs size, written by hand: one line per direction and kind,
/// and the raw TCP lines dashed. Log scale on both axes.
enum BandwidthPlot {
    static func svg(_ result: BandwidthResult, title: String = "xpu-remote copy throughput vs size (loopback)") -> String {
        let width = 900.0, height = 560.0
        let left = 80.0, right = 230.0, top = 50.0, bottom = 60.0
        let plotWidth = width - left - right, plotHeight = height - top - bottom

        var series: [(name: String, points: [(Double, Double)], color: String, dashed: Bool)] = []
        let palette = ["HtoD": ["#1f77b4", "#6baed6", "#08306b"], "DtoH": ["#d62728", "#fc9272", "#67000d"]]
        for direction in ["HtoD", "DtoH"] {
            for (index, kind) in result.kinds.enumerated() {
                let points = result.sizes.compactMap { size in
                    result.point(direction, kind, size).map { (Double(size), $0.megabytesPerSecond) }
                }
                series.append(("\(direction) \(kind.rawValue)", points, palette[direction]![index % 3], false))
            }
        }
        for (name, color) in [("raw up", "#2ca02c"), ("raw down", "#7f7f7f")] {
            let points = result.sizes.compactMap { size in
                result.point(name, nil, size).map { (Double(size), $0.megabytesPerSecond) }
            }
            series.append(("raw TCP \(name == "raw up" ? "up" : "down")", points, color, true))
        }

        let xs = result.sizes.map(Double.init)
        let ys = series.flatMap { $0.points.map(\.1) }.filter { $0.isFinite && $0 > 0 }
        let xMin = log10(xs.min() ?? 4096), xMax = log10(max(xs.max() ?? 4096, (xs.min() ?? 4096) * 4))
        let yMin = floor(log10(ys.min() ?? 1)), yMax = ceil(log10(max(ys.max() ?? 10, 10)))
        func x(_ value: Double) -> Double { left + (log10(value) - xMin) / max(xMax - xMin, 1e-9) * plotWidth }
        func y(_ value: Double) -> Double { top + plotHeight - (log10(value) - yMin) / max(yMax - yMin, 1e-9) * plotHeight }

        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
            viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="28" font-size="16">\(escape(title))</text>

            """
        // Grid and axes.
        var decade = yMin
        while decade <= yMax {
            let value = pow(10, decade)
            let position = y(value)
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(position))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(position))\" stroke=\"#ddd\"/>\n"
            svg += "<text x=\"\(f(left - 8))\" y=\"\(f(position + 4))\" text-anchor=\"end\">\(megabytes(value))</text>\n"
            decade += 1
        }
        for size in result.sizes {
            let position = x(Double(size))
            svg += "<line x1=\"\(f(position))\" y1=\"\(f(top))\" x2=\"\(f(position))\" y2=\"\(f(top + plotHeight))\" stroke=\"#eee\"/>\n"
            svg += "<text x=\"\(f(position))\" y=\"\(f(top + plotHeight + 18))\" text-anchor=\"middle\">\(escape(BenchOutput.bytes(size)))</text>\n"
        }
        svg += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotWidth))\" height=\"\(f(plotHeight))\" fill=\"none\" stroke=\"#333\"/>\n"
        svg += "<text x=\"\(f(left + plotWidth / 2))\" y=\"\(f(height - 15))\" text-anchor=\"middle\">copy size (log scale)</text>\n"
        svg += "<text transform=\"translate(20 \(f(top + plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">MB/s (10^6 bytes/s, log scale)</text>\n"
        // Lines and legend.
        for (index, line) in series.enumerated() {
            let valid = line.points.filter { $0.1.isFinite && $0.1 > 0 }
            guard !valid.isEmpty else { continue }
            let path = valid.map { "\(f(x($0.0))),\(f(y($0.1)))" }.joined(separator: " ")
            let dash = line.dashed ? " stroke-dasharray=\"6 4\"" : ""
            svg += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"2\"\(dash)/>\n"
            for point in valid {
                svg += "<circle cx=\"\(f(x(point.0)))\" cy=\"\(f(y(point.1)))\" r=\"2.5\" fill=\"\(line.color)\"/>\n"
            }
            let legendY = top + 10 + Double(index) * 20
            let legendX = left + plotWidth + 20
            svg += "<line x1=\"\(f(legendX))\" y1=\"\(f(legendY))\" x2=\"\(f(legendX + 28))\" y2=\"\(f(legendY))\" stroke=\"\(line.color)\" stroke-width=\"2\"\(dash)/>\n"
            svg += "<text x=\"\(f(legendX + 36))\" y=\"\(f(legendY + 4))\">\(escape(line.name))</text>\n"
        }
        svg += "</svg>\n"
        return svg
    }

    private static func f(_ value: Double) -> String { String(format: "%.1f", value) }

    private static func megabytes(_ value: Double) -> String {
        value >= 1000 ? String(format: "%.0fk", value / 1000) : String(format: "%g", value)
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
