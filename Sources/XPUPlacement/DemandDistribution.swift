/// The workload's demand as a distribution over request shapes: FGD's "target workload".
///
/// Built as the FGD simulator builds its typical pods: group requests by shape (CPU, GPU count,
/// milli-GPU per card, model constraint), keep the most frequent shapes until they cover
/// `coverage` of the requests (95% by default), and renormalize their frequencies to sum to 1.
/// Memory is not part of a shape, as in FGD, because on the openb nodes it never binds before
/// CPU or GPU does.
public struct DemandDistribution: Hashable, Sendable {
    /// One request shape and its share of the workload.
    public struct Shape: Hashable, Sendable {
        public var cpuMilli: Int
        public var gpuCount: Int
        public var gpuMilli: Int
        public var models: ModelConstraint
        public var frequency: Double

        public init(cpuMilli: Int, gpuCount: Int, gpuMilli: Int, models: ModelConstraint = .any, frequency: Double) {
            self.cpuMilli = cpuMilli
            self.gpuCount = gpuCount
            self.gpuMilli = gpuCount > 0 ? gpuMilli : 0
            self.models = models
            self.frequency = frequency
        }
    }

    /// Shapes asking for GPUs, sorted by milli-GPU per card (ascending) so that fragmentation is
    /// one sweep over a node's sorted cards.
    public private(set) var gpuShapes: [Shape]
    /// Total frequency of CPU-only shapes: for them every idle milli-GPU is a fragment.
    public private(set) var cpuOnlyFrequency: Double

    /// A distribution from explicit shapes; frequencies are used as given.
    public init(shapes: [Shape]) {
        self.gpuShapes = shapes.filter { $0.gpuCount > 0 }.sorted { $0.gpuMilli < $1.gpuMilli }
        self.cpuOnlyFrequency = shapes.filter { $0.gpuCount == 0 }.reduce(0) { $0 + $1.frequency }
    }

    /// The distribution of `requests`, keeping the most frequent shapes up to `coverage`.
    public init(requests: some Sequence<PlacementRequest>, coverage: Double = 0.95) {
        var counts: [ShapeKey: Int] = [:]
        var total = 0
        for request in requests {
            let key = ShapeKey(
                cpuMilli: request.cpuMilli, gpuCount: request.gpuCount, gpuMilli: request.gpuMilli,
                models: request.models.allowed)
            counts[key, default: 0] += 1
            total += 1
        }
        // Most frequent first; equal counts in a fixed order so that the result never depends on
        // dictionary order.
        let ranked = counts.sorted { lhs, rhs in
            if lhs.value != rhs.value { return lhs.value > rhs.value }
            let l = lhs.key
            let r = rhs.key
            if l.cpuMilli != r.cpuMilli { return l.cpuMilli < r.cpuMilli }
            if l.gpuMilli != r.gpuMilli { return l.gpuMilli < r.gpuMilli }
            if l.gpuCount != r.gpuCount { return l.gpuCount < r.gpuCount }
            return l.models.joined(separator: "|") < r.models.joined(separator: "|")
        }
        var kept: [(ShapeKey, Int)] = []
        var covered = 0
        for (key, count) in ranked where Double(covered) < coverage * Double(total) {
            kept.append((key, count))
            covered += count
        }
        let shapes = kept.map { key, count in
            Shape(
                cpuMilli: key.cpuMilli, gpuCount: key.gpuCount, gpuMilli: key.gpuMilli,
                models: ModelConstraint(key.models), frequency: Double(count) / Double(max(covered, 1)))
        }
        self.init(shapes: shapes)
    }

    /// Every shape, GPU ones first.
    public var shapeCount: Int { gpuShapes.count + (cpuOnlyFrequency > 0 ? 1 : 0) }
}

/// A request shape without its frequency, to count requests by shape.
struct ShapeKey: Hashable {
    var cpuMilli: Int
    var gpuCount: Int
    var gpuMilli: Int
    var models: [String]
}
