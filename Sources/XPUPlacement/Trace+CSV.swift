/// Reading the openb trace's CSV files (Alibaba `cluster-trace-gpu-v2023`): pure text in,
/// values out, so that the directory, the replay and the tests share one reader.
///
/// Columns are found by header name, so the shorter variants (`openb_pod_list_multigpu20.csv`
/// has no `gpu_spec` or `qos`) read too. Fields are plain: the trace never quotes.
public enum TraceCSV {
    /// Nodes from `sn,cpu_milli,memory_mib,gpu,model`, in file order.
    public static func nodes(fromCSV text: String) throws(TraceFormatError) -> [Node] {
        let table = try Table(text: text)
        let name = try table.column("sn")
        let cpu = try table.column("cpu_milli")
        let memory = try table.column("memory_mib")
        let gpus = try table.column("gpu")
        let model = table.optionalColumn("model")
        var nodes: [Node] = []
        nodes.reserveCapacity(table.rows.count)
        for row in table.rows {
            let modelName = model.map { row.fields[$0] }.flatMap { $0.isEmpty ? nil : String($0) }
            nodes.append(
                Node(
                    name: String(row.fields[name]), cpuMilli: try row.int(cpu), memoryMiB: try row.int(memory),
                    gpuCount: try row.int(gpus), gpuModel: modelName))
        }
        return nodes
    }

    /// Requests from `name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,qos,...]`, in file order.
    public static func requests(fromCSV text: String) throws(TraceFormatError) -> [PlacementRequest] {
        let table = try Table(text: text)
        let name = try table.column("name")
        let cpu = try table.column("cpu_milli")
        let memory = try table.column("memory_mib")
        let gpuCount = try table.column("num_gpu")
        let gpuMilli = try table.column("gpu_milli")
        let spec = table.optionalColumn("gpu_spec")
        let qos = table.optionalColumn("qos")
        var requests: [PlacementRequest] = []
        requests.reserveCapacity(table.rows.count)
        for row in table.rows {
            requests.append(
                PlacementRequest(
                    name: String(row.fields[name]), cpuMilli: try row.int(cpu), memoryMiB: try row.int(memory),
                    gpuCount: try row.int(gpuCount), gpuMilli: try row.int(gpuMilli),
                    priority: qos.map { Priority(qos: row.fields[$0]) } ?? .normal,
                    models: spec.map { ModelConstraint(spec: row.fields[$0]) } ?? .any))
        }
        return requests
    }
}

/// A CSV file split into a header and rows of fields.
struct Table {
    struct Row {
        var fields: [Substring]
        var line: Int

        func int(_ column: Int) throws(TraceFormatError) -> Int {
            let field = fields[column]
            guard let value = Int(field) else {
                throw TraceFormatError(code: .badNumber, message: "'\(field)' in column \(column + 1)", line: line)
            }
            return value
        }
    }

    var header: [Substring]
    var rows: [Row]

    init(text: String) throws(TraceFormatError) {
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated()
            .map { (number: $0.offset + 1, text: $0.element) }
        lines.removeAll { $0.text.allSatisfy(\.isWhitespace) }
        guard let first = lines.first else {
            throw TraceFormatError(code: .missingColumn, message: "empty file", line: 0)
        }
        header = Table.fields(of: first.text)
        rows = []
        rows.reserveCapacity(lines.count - 1)
        for line in lines.dropFirst() {
            let fields = Table.fields(of: line.text)
            guard fields.count >= header.count else {
                throw TraceFormatError(
                    code: .shortRow, message: "\(fields.count) fields, header has \(header.count)", line: line.number)
            }
            rows.append(Row(fields: fields, line: line.number))
        }
    }

    static func fields(of line: Substring) -> [Substring] {
        line.split(separator: ",", omittingEmptySubsequences: false).map(Table.trimmed)
    }

    static func trimmed(_ field: Substring) -> Substring {
        var field = field
        while let last = field.last, last == " " || last == "\r" { field = field.dropLast() }
        while let first = field.first, first == " " { field = field.dropFirst() }
        return field
    }

    func column(_ name: String) throws(TraceFormatError) -> Int {
        guard let index = optionalColumn(name) else {
            throw TraceFormatError(code: .missingColumn, message: "no '\(name)' column", line: 1)
        }
        return index
    }

    func optionalColumn(_ name: String) -> Int? {
        header.firstIndex { $0 == name }
    }
}
