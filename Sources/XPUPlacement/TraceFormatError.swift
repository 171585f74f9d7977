/// A trace file that cannot be read as the openb CSV format.
public struct TraceFormatError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// A column the format needs is absent from the header.
        public static let missingColumn = Code("missing column")
        /// A row has fewer fields than the header.
        public static let shortRow = Code("short row")
        /// A field that must be a whole number is not.
        public static let badNumber = Code("bad number")

        public var description: String { name }
    }

    public var code: Code
    public var message: String
    /// 1-based line number in the file (the header is line 1); 0 when not about one line.
    public var line: Int

    public init(code: Code, message: String, line: Int) {
        self.code = code
        self.message = message
        self.line = line
    }

    public var description: String {
        line > 0 ? "line \(line): \(code): \(message)" : "\(code): \(message)"
    }
}
