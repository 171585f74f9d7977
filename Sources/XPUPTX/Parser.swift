/// Recursive-descent parser from tokens to `ParsedModule`.
struct Parser {
    /// Limits that keep hostile or corrupt text from asking for unbounded memory or recursion.
    static let maximumRegisters = 1 << 16
    static let maximumVariableBytes = 1 << 32
    static let maximumNesting = 16

    private var tokens: [Token]
    private var position = 0
    private var depth = 0

    init(tokens: [Token]) { self.tokens = tokens }

    static func parse(_ source: String) throws(PTXError) -> ParsedModule {
        var parser = Parser(tokens: try Lexer.tokenize(source))
        return try parser.parseModule()
    }

    // MARK: Token helpers

    private var current: Token { tokens[position] }
    private var next: Token { tokens[min(position + 1, tokens.count - 1)] }

    private mutating func advance() -> Token {
        let t = tokens[position]
        if position < tokens.count - 1 { position += 1 }
        return t
    }

    private func error(_ message: String, _ code: PTXError.Code = .syntax, line: Int? = nil) -> PTXError {
        PTXError(code: code, line: line ?? current.line, message: message)
    }

    private mutating func expect(_ c: Character) throws(PTXError) {
        guard current.isPunct(c) else { throw error("expected '\(c)', found '\(current.text)'") }
        _ = advance()
    }

    private mutating func accept(_ c: Character) -> Bool {
        if current.isPunct(c) { _ = advance(); return true }
        return false
    }

    private mutating func identifier() throws(PTXError) -> String {
        guard current.kind == .identifier else { throw error("expected a name, found '\(current.text)'") }
        return advance().text
    }

    private mutating func integer() throws(PTXError) -> Int64 {
        let negative = accept("-")
        guard current.kind == .number, case .integer(let v) = try Parser.number(current.text, line: current.line)
        else { throw error("expected an integer, found '\(current.text)'") }
        _ = advance()
        return negative ? 0 &- Int64(bitPattern: v) : Int64(bitPattern: v)
    }

    /// Skips the rest of the current line (for `.loc`, `.file`, `.target` and friends).
    private mutating func skipLine() {
        let line = current.line
        while current.kind != .end, current.line == line { _ = advance() }
    }

    private mutating func skipPastSemicolon() {
        while current.kind != .end, !current.isPunct(";") { _ = advance() }
        _ = accept(";")
    }

    static func number(_ text: String, line: Int) throws(PTXError) -> Immediate {
        var t = Substring(text)
        if t.hasSuffix("U") || t.hasSuffix("u") { t = t.dropLast() }
        let lower = t.lowercased()
        if lower.hasPrefix("0f"), t.count == 10, let v = UInt32(t.dropFirst(2), radix: 16) { return .f32Bits(v) }
        if lower.hasPrefix("0d"), t.count == 18, let v = UInt64(t.dropFirst(2), radix: 16) { return .f64Bits(v) }
        if lower.hasPrefix("0x"), let v = UInt64(t.dropFirst(2), radix: 16) { return .integer(v) }
        if lower.hasPrefix("0b"), let v = UInt64(t.dropFirst(2), radix: 2) { return .integer(v) }
        if t.count > 1, t.hasPrefix("0"), t.allSatisfy({ $0 >= "0" && $0 <= "7" }), let v = UInt64(t.dropFirst(), radix: 8) {
            return .integer(v)
        }
        if let v = UInt64(t) { return .integer(v) }
        if let d = Double(String(t)) { return .decimal(d) }
        throw PTXError(code: .syntax, line: line, message: "bad number '\(text)'")
    }

    // MARK: Module

    mutating func parseModule() throws(PTXError) -> ParsedModule {
        var module = ParsedModule()
        while current.kind != .end {
            let token = current
            guard token.kind == .identifier else {
                if accept(";") { continue }
                throw error("unexpected '\(token.text)' at module scope")
            }
            switch token.text {
            case ".version":
                _ = advance()
                let text = advance().text
                let parts = text.split(separator: ".")
                guard parts.count == 2, let major = Int(parts[0]), let minor = Int(parts[1]) else {
                    throw error("bad .version '\(text)'", line: token.line)
                }
                module.version = (major, minor)
            case ".target":
                _ = advance()
                var targets: [String] = []
                while current.kind == .identifier, current.line == token.line {
                    targets.append(advance().text)
                    if !accept(",") { break }
                }
                module.target = targets.joined(separator: ",")
            case ".address_size":
                _ = advance()
                module.addressSize = Int(try integer())
            case ".file", ".loc":
                skipLine()
            case ".pragma", ".alias":
                skipPastSemicolon()
            case ".section":
                _ = advance()
                skipLine()
                if accept("{") {
                    var depth = 1
                    while current.kind != .end, depth > 0 {
                        if current.isPunct("{") { depth += 1 }
                        if current.isPunct("}") { depth -= 1 }
                        _ = advance()
                    }
                }
            default:
                var isExtern = false
                var isVisible = false
                while [".visible", ".extern", ".weak", ".common"].contains(current.text) {
                    if current.text == ".extern" { isExtern = true }
                    if current.text == ".visible" || current.text == ".weak" { isVisible = true }
                    _ = advance()
                }
                switch current.text {
                case ".entry", ".func":
                    module.functions.append(try parseFunction(isVisible: isVisible))
                case ".global", ".const", ".shared", ".local":
                    var v = try parseVariable()
                    v.isExtern = isExtern
                    try expect(";")
                    module.variables.append(v)
                default:
                    throw error("unexpected '\(current.text)' at module scope")
                }
            }
        }
        return module
    }

    // MARK: Variables

    /// `.space [.align N] [.vN] .type name[N]... [= init]` (without the `;`).
    private mutating func parseVariable() throws(PTXError) -> ParsedVariable {
        let line = current.line
        let spaceText = try identifier()
        guard let space = StateSpace(suffix: spaceText.dropFirst()) else { throw error("bad state space '\(spaceText)'") }
        var alignment = 0
        var vectorWidth = 1
        var type: ScalarType?
        while current.kind == .identifier, current.text.hasPrefix(".") {
            let attr = advance().text
            switch attr {
            case ".align":
                let a = try integer()
                guard a > 0, a <= 4096, a & (a - 1) == 0 else { throw error("bad alignment \(a)") }
                alignment = Int(a)
            case ".v2": vectorWidth = 2
            case ".v4": vectorWidth = 4
            case ".v8": vectorWidth = 8
            case ".ptr", ".global", ".shared", ".local", ".const", ".param": continue
            default:
                guard let t = ScalarType(suffix: attr.dropFirst()) else { throw error("unknown attribute '\(attr)'") }
                type = t
            }
        }
        guard let type else { throw error("variable without a type") }
        let name = try identifier()
        var count: Int?
        while accept("[") {
            if accept("]") { count = 0; continue }
            let n = try integer()
            try expect("]")
            let (product, overflow) = Int64(count ?? 1).multipliedReportingOverflow(by: n)
            guard n > 0, !overflow, product * Int64(type.size * vectorWidth) <= Int64(Parser.maximumVariableBytes) else {
                throw error("array '\(name)' has a bad or too large size", .unsupported)
            }
            count = Int(product)
        }
        var v = ParsedVariable(
            name: name, space: space, type: type, alignment: alignment == 0 ? type.size * vectorWidth : alignment,
            vectorWidth: vectorWidth, count: count, line: line)
        if accept("=") {
            v.initializer = try parseInitializer()
            if v.count == 0 { v.count = v.initializer.count / vectorWidth }
        }
        return v
    }

    private mutating func parseInitializer() throws(PTXError) -> [Immediate] {
        var values: [Immediate] = []
        if accept("{") {
            depth += 1
            defer { depth -= 1 }
            guard depth <= Parser.maximumNesting else { throw error("initializer nested too deeply") }
            repeat {
                if current.isPunct("}") { break }
                values += try parseInitializer()
            } while accept(",")
            try expect("}")
            return values
        }
        let negative = accept("-")
        guard current.kind == .number else {
            throw error("initializer '\(current.text)' is not a number (address initializers are not supported)", .unsupported)
        }
        var value = try Parser.number(advance().text, line: current.line)
        if negative {
            switch value {
            case .integer(let v): value = .integer(UInt64(bitPattern: 0 &- Int64(bitPattern: v)))
            case .decimal(let d): value = .decimal(-d)
            case .f32Bits(let b): value = .f32Bits(b ^ 0x8000_0000)
            case .f64Bits(let b): value = .f64Bits(b ^ 0x8000_0000_0000_0000)
            }
        }
        return [value]
    }

    // MARK: Functions

    private mutating func parseParameterList() throws(PTXError) -> [ParsedVariable] {
        var params: [ParsedVariable] = []
        try expect("(")
        if accept(")") { return params }
        repeat {
            guard current.text == ".param" || current.text == ".reg" else { throw error("expected .param") }
            if current.text == ".reg" {
                _ = advance()
                let t = try identifier()
                guard let type = ScalarType(suffix: t.dropFirst()) else { throw error("bad type '\(t)'") }
                let name = try identifier()
                params.append(ParsedVariable(name: name, space: .reg, type: type, alignment: type.size, line: current.line))
            } else {
                params.append(try parseVariable())
            }
        } while accept(",")
        try expect(")")
        return params
    }

    private mutating func parseFunction(isVisible: Bool) throws(PTXError) -> ParsedFunction {
        let line = current.line
        let isEntry = advance().text == ".entry"
        var returns: [ParsedVariable] = []
        if !isEntry, current.isPunct("(") { returns = try parseParameterList() }
        let name = try identifier()
        var params: [ParsedVariable] = []
        if current.isPunct("(") { params = try parseParameterList() }
        var function = ParsedFunction(
            name: name, isEntry: isEntry, isVisible: isVisible, hasBody: false, parameters: params,
            returnParameters: returns, line: line)
        // Performance directives and attributes up to the body.
        while !current.isPunct("{"), !current.isPunct(";"), current.kind != .end {
            let t = advance()
            if t.text == ".maxntid" || t.text == ".reqntid" {
                var dims: [Int] = []
                repeat { dims.append(Int(try integer())) } while accept(",")
                while dims.count < 3 { dims.append(1) }
                function.maxThreads = (dims[0], dims[1], dims[2])
            }
        }
        if accept(";") { return function }
        try expect("{")
        function.hasBody = true
        try parseBody(into: &function)
        return function
    }

    private mutating func parseBody(into function: inout ParsedFunction) throws(PTXError) {
        var depth = 1
        while true {
            let token = current
            if token.kind == .end { throw error("unterminated function body '\(function.name)'") }
            if token.isPunct("{") { _ = advance(); depth += 1; continue }
            if token.isPunct("}") {
                _ = advance()
                depth -= 1
                if depth == 0 { return }
                continue
            }
            if token.isPunct(";") { _ = advance(); continue }
            if token.kind == .identifier, next.isPunct(":") {
                _ = advance(); _ = advance()
                // `name: .callprototype (...) _ (...);` declares the signature of an indirect call.
                if current.text == ".callprototype" {
                    skipPastSemicolon()
                    continue
                }
                function.body.append(.label(token.text, line: token.line))
                continue
            }
            switch token.text {
            case let text where text == ".reg" || text.hasPrefix(".reg."):
                // `.reg .b16 r;`, or with the type run on as inline assembly writes it: `.reg.b16 r;`.
                _ = advance()
                var vectorWidth = 1
                if current.text == ".v2" || current.text == ".v4" { vectorWidth = current.text == ".v2" ? 2 : 4; _ = advance() }
                let t = token.text == ".reg" ? try identifier() : String(token.text.dropFirst(4))
                guard let type = ScalarType(suffix: t.dropFirst()), vectorWidth == 1 else {
                    throw error("unsupported register type '\(t)'", .unsupported)
                }
                repeat {
                    let name = try identifier()
                    if accept("<") {
                        let n = try integer()
                        try expect(">")
                        guard n >= 0, function.registers.count + Int(n) <= Parser.maximumRegisters else {
                            throw error("more than \(Parser.maximumRegisters) registers in '\(function.name)'", .unsupported)
                        }
                        for k in 0..<Int(n) { function.registers.append(("\(name)\(k)", type)) }
                    } else {
                        guard function.registers.count < Parser.maximumRegisters else {
                            throw error("more than \(Parser.maximumRegisters) registers in '\(function.name)'", .unsupported)
                        }
                        function.registers.append((name, type))
                    }
                } while accept(",")
                try expect(";")
            case ".local", ".shared", ".const", ".global", ".param":
                var v = try parseVariable()
                if accept("=") { v.initializer = try parseInitializer() }
                try expect(";")
                function.variables.append(v)
            case ".extern":
                _ = advance()
                var v = try parseVariable()
                v.isExtern = true
                try expect(";")
                function.variables.append(v)
            case ".loc", ".file":
                skipLine()
            case ".pragma":
                skipPastSemicolon()
            default:
                function.body.append(.instruction(try parseInstruction()))
            }
        }
    }

    // MARK: Instructions

    private mutating func parseInstruction() throws(PTXError) -> ParsedInstruction {
        let line = current.line
        var guardRegister: String?
        var guardNegated = false
        if accept("@") {
            guardNegated = accept("!")
            guardRegister = try identifier()
        }
        guard current.kind == .identifier else { throw error("expected an instruction, found '\(current.text)'") }
        let opcode = advance().text
        var operands: [Operand] = []
        if !current.isPunct(";") {
            repeat { operands.append(try parseOperand()) } while accept(",")
        }
        guard accept(";") else { throw error("expected ';' after '\(opcode)', found '\(current.text)'") }
        return ParsedInstruction(
            guardRegister: guardRegister, guardNegated: guardNegated, opcode: opcode, operands: operands, line: line)
    }

    private mutating func parseOperand() throws(PTXError) -> Operand {
        if accept("{") {
            // Registers, `_`, or (in a packing `mov`) literals, kept as written.
            var names: [String] = []
            repeat {
                if current.kind == .number {
                    names.append(advance().text)
                } else {
                    names.append(try identifier())
                }
            } while accept(",")
            try expect("}")
            return .vector(names)
        }
        if accept("(") {
            depth += 1
            defer { depth -= 1 }
            guard depth <= Parser.maximumNesting else { throw error("operand list nested too deeply") }
            var items: [Operand] = []
            if !current.isPunct(")") {
                repeat { items.append(try parseOperand()) } while accept(",")
            }
            try expect(")")
            return .list(items)
        }
        if accept("[") {
            var base: String?
            var offset: Int64 = 0
            if current.kind == .identifier {
                base = advance().text
                if accept("+") { offset = try integer() } else if current.isPunct("-") { offset = try integer() }
            } else {
                offset = try integer()
            }
            try expect("]")
            return .address(base: base, offset: offset)
        }
        if accept("!") { return .negated(try identifier()) }
        if current.isPunct("-") || current.kind == .number {
            let negative = accept("-")
            guard current.kind == .number else { throw error("expected a number after '-'") }
            let value = try Parser.number(advance().text, line: current.line)
            guard negative else { return .immediate(value) }
            switch value {
            case .integer(let v): return .immediate(.integer(UInt64(bitPattern: 0 &- Int64(bitPattern: v))))
            case .decimal(let d): return .immediate(.decimal(-d))
            case .f32Bits(let b): return .immediate(.f32Bits(b ^ 0x8000_0000))
            case .f64Bits(let b): return .immediate(.f64Bits(b ^ 0x8000_0000_0000_0000))
            }
        }
        let name = try identifier()
        if accept("|") { return .pair(name, try identifier()) }
        if name.hasPrefix("%") { return .register(name) }
        if accept("+") { return .symbol(name, offset: try integer()) }
        return .symbol(name, offset: 0)
    }
}
