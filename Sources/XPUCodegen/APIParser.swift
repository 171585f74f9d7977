/// Reads the line-oriented API description format. Errors name the line, so a typo in the
/// source of truth fails the generator with a pointer to the fix.
public struct APIParseError: Error, CustomStringConvertible, Sendable {
    public var line: Int
    public var message: String
    public var description: String { "line \(line): \(message)" }
}

public enum APIParser {
    public static func parse(_ text: String) throws(APIParseError) -> APIDescription {
        var api = APIDescription()
        var ids = Set<UInt16>()
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first
                .map { $0.trimmingWhitespace() } ?? ""
            if line.isEmpty { continue }
            func fail(_ message: String) -> APIParseError { APIParseError(line: lineNumber, message: message) }
            let (keyword, rest) = line.splitFirstWord()
            switch keyword {
            case "remote":
                let (idText, signature) = rest.splitFirstWord()
                guard let id = UInt16(idText) else { throw fail("expected a call id, got '\(idText)'") }
                guard ids.insert(id).inserted else { throw fail("call id \(id) used twice") }
                let (symbol, parameterText, tail) = try splitSignature(signature, fail)
                let parameters = try parseParameters(parameterText, fail)
                var aliases: [String] = []
                var tailWords = tail.split(separator: " ").map(String.init)
                var options = Set<String>()
                while let word = tailWords.first, ["hook", "async", "cached", "manual"].contains(word) {
                    options.insert(word)
                    tailWords.removeFirst()
                }
                if !tailWords.isEmpty {
                    guard tailWords.first == "alias", tailWords.count > 1 else {
                        throw fail("expected '[hook] [async] [cached] [manual] [alias <symbol>...]'")
                    }
                    aliases = Array(tailWords.dropFirst())
                }
                let call = RemoteCall(
                    id: id, symbol: symbol, parameters: parameters, aliases: aliases, hook: options.contains("hook"),
                    isAsync: options.contains("async"), isCached: options.contains("cached"), isManual: options.contains("manual"))
                if call.isAsync, parameters.contains(where: { $0.direction == .output }) {
                    throw fail("an async call cannot have outputs")
                }
                api.remoteCalls.append(call)
            case "custom":
                let (idText, signature) = rest.splitFirstWord()
                guard let id = UInt16(idText) else { throw fail("expected a call id, got '\(idText)'") }
                guard ids.insert(id).inserted else { throw fail("call id \(id) used twice") }
                let (name, requestText, tail) = try splitSignature(signature, fail)
                guard tail.hasPrefix("->") else { throw fail("expected '-> (reply fields)'") }
                let replyPart = tail.dropFirst(2).trimmingWhitespace()
                guard replyPart.hasPrefix("("), replyPart.hasSuffix(")") else { throw fail("reply fields must be in parentheses") }
                let replyText = String(replyPart.dropFirst().dropLast())
                api.customCalls.append(
                    CustomCall(
                        id: id, name: name, request: try parseFields(requestText, fail),
                        reply: try parseFields(replyText, fail)))
            case "driver":
                let (symbol, parameterText, tail) = try splitSignature(rest, fail)
                guard tail.isEmpty else { throw fail("unexpected '\(tail)' after a driver entry") }
                api.driverEntries.append(DriverEntry(symbol: symbol, parameters: try parseParameters(parameterText, fail)))
            case "struct":
                let (name, fieldText, tail) = try splitSignature(rest, fail)
                guard tail.isEmpty else { throw fail("unexpected '\(tail)' after a struct") }
                api.structs.append(WireStruct(name: name, fields: try parseFields(fieldText, fail)))
            default:
                throw fail("unknown keyword '\(keyword)'")
            }
        }
        return api
    }

    /// Splits `name(inside) tail` into its three parts.
    private static func splitSignature(
        _ text: String, _ fail: (String) -> APIParseError
    ) throws(APIParseError) -> (String, String, String) {
        guard let open = text.firstIndex(of: "(") else { throw fail("expected 'name(...)'") }
        // The matching parenthesis: annotations such as @range(N*4) nest inside the list.
        var depth = 0
        var matching: String.Index?
        for index in text[open...].indices {
            if text[index] == "(" { depth += 1 }
            if text[index] == ")" {
                depth -= 1
                if depth == 0 {
                    matching = index
                    break
                }
            }
        }
        guard let close = matching else { throw fail("unbalanced parentheses") }
        let name = text[..<open].trimmingWhitespace()
        guard !name.isEmpty else { throw fail("missing name before '('") }
        return (name, String(text[text.index(after: open)..<close]), text[text.index(after: close)...].trimmingWhitespace())
    }

    private static func parseParameters(
        _ text: String, _ fail: (String) -> APIParseError
    ) throws(APIParseError) -> [Parameter] {
        var parameters: [Parameter] = []
        for item in text.split(separator: ",").map({ $0.trimmingWhitespace() }) where !item.isEmpty {
            let words = item.split(separator: " ").map(String.init)
            guard words.count == 3 || words.count == 4 else { throw fail("expected 'in|out type name [@annotation]' in '\(item)'") }
            guard let direction = Parameter.Direction(rawValue: words[0]) else { throw fail("expected in or out, got '\(words[0])'") }
            let type = try parameterType(words[1], fail)
            var annotation: Annotation?
            if words.count == 4 { annotation = try parseAnnotation(words[3], fail) }
            parameters.append(Parameter(direction: direction, type: type, name: words[2], annotation: annotation))
        }
        return parameters
    }

    private static func parameterType(_ word: String, _ fail: (String) -> APIParseError) throws(APIParseError) -> ParameterType {
        if word.hasPrefix("enum:") { return .enumeration(String(word.dropFirst(5))) }
        if word.hasPrefix("chars["), word.hasSuffix("]") { return .chars(lengthParameter: String(word.dropFirst(6).dropLast())) }
        if let kind = HandleKind(rawValue: word) { return .handle(kind) }
        switch word {
        case "u8": return .u8
        case "u16": return .u16
        case "u32": return .u32
        case "i32": return .i32
        case "u64": return .u64
        case "size": return .size
        case "f32": return .f32
        case "device": return .device
        case "devptr": return .devptr
        case "uuid": return .uuid
        case "string", "cstring": return .string
        case "hostptr": return .hostPointer
        case "mhostptr": return .mutableHostPointer
        case "voidpp": return .pointerArray
        case "funcarray": return .functionArray
        default: throw fail("unknown parameter type '\(word)'")
        }
    }

    private static func parseAnnotation(_ word: String, _ fail: (String) -> APIParseError) throws(APIParseError) -> Annotation {
        func argument(_ prefix: String) -> String? {
            guard word.hasPrefix(prefix + "("), word.hasSuffix(")") else { return nil }
            return String(word.dropFirst(prefix.count + 1).dropLast())
        }
        if word == "@free" { return .free }
        if word == "@release" { return .release }
        if let value = argument("@range") { return .range(value) }
        if let value = argument("@alloc") { return .alloc(value) }
        if let value = argument("@global") { return .global(value) }
        throw fail("unknown annotation '\(word)'")
    }

    private static func parseFields(_ text: String, _ fail: (String) -> APIParseError) throws(APIParseError) -> [Field] {
        var fields: [Field] = []
        for item in text.split(separator: ",").map({ $0.trimmingWhitespace() }) where !item.isEmpty {
            let words = item.split(separator: " ").map(String.init)
            guard words.count == 2 else { throw fail("expected 'type name' in '\(item)'") }
            fields.append(Field(name: words[1], type: try fieldType(words[0], fail)))
        }
        return fields
    }

    private static func fieldType(_ word: String, _ fail: (String) -> APIParseError) throws(APIParseError) -> FieldType {
        if word.hasPrefix("["), word.hasSuffix("]") { return .list(try fieldType(String(word.dropFirst().dropLast()), fail)) }
        switch word {
        case "u8": return .u8
        case "u16": return .u16
        case "u32": return .u32
        case "i32": return .i32
        case "u64": return .u64
        case "f32": return .f32
        case "string": return .string
        case "bytes": return .bytes
        default:
            guard let first = word.first, first.isUppercase else { throw fail("unknown field type '\(word)'") }
            return .named(word)
        }
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }

    func splitFirstWord() -> (String, String) {
        let trimmed = trimmingWhitespace()
        guard let space = trimmed.firstIndex(of: " ") else { return (trimmed, "") }
        return (String(trimmed[..<space]), trimmed[space...].trimmingWhitespace())
    }
}
