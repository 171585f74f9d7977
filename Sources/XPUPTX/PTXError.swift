/// An error found while reading PTX text: where it is and what is wrong.
public struct PTXError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of problem the loader met.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: Hashable, Sendable {
            case syntax, unknownInstruction, unknownIdentifier, unsupported, duplicate
        }
        fileprivate let value: Value
        /// The text does not follow the PTX grammar.
        public static let syntax = Code(value: .syntax)
        /// An instruction this interpreter does not know (or an unknown form of one).
        public static let unknownInstruction = Code(value: .unknownInstruction)
        /// A register, label or variable that was never declared.
        public static let unknownIdentifier = Code(value: .unknownIdentifier)
        /// A valid construct that this interpreter does not support yet.
        public static let unsupported = Code(value: .unsupported)
        /// A name declared twice.
        public static let duplicate = Code(value: .duplicate)

        public var description: String {
            switch value {
            case .syntax: "syntax error"
            case .unknownInstruction: "unknown instruction"
            case .unknownIdentifier: "unknown identifier"
            case .unsupported: "unsupported"
            case .duplicate: "duplicate declaration"
            }
        }
    }

    public var code: Code
    /// 1-based line in the PTX text.
    public var line: Int
    public var message: String

    public init(code: Code, line: Int, message: String) {
        self.code = code
        self.line = line
        self.message = message
    }

    public var description: String { "PTX line \(line): \(code): \(message)" }
}
