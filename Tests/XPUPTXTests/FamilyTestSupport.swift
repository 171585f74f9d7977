import Testing
@testable import XPUPTX

/// Register classes of the hand-written instruction tests: how a 64-bit test value gets into a
/// register of the class, and back out (zero-extended) for the CPU to compare.
enum RegisterClass: String {
    case h, r, f, rd, fd, p

    /// The class that holds an integer of `bits` bits.
    init(bits: Int) {
        self = bits == 16 ? .h : bits == 32 ? .r : .rd
    }

    func name(_ index: Int) -> String { "%\(rawValue)\(index)" }

    /// Moves the value in `%rd<source>` into `name(index)`.
    func load(_ index: Int, from source: Int) -> String {
        switch self {
        case .h: "cvt.u16.u64 %h\(index), %rd\(source);"
        case .r: "cvt.u32.u64 %r\(index), %rd\(source);"
        case .f: "cvt.u32.u64 %r15, %rd\(source); mov.b32 %f\(index), %r15;"
        case .rd: "mov.b64 %rd\(index), %rd\(source);"
        case .fd: "mov.b64 %fd\(index), %rd\(source);"
        case .p: "setp.ne.u64 %p\(index), %rd\(source), 0;"
        }
    }

    /// Moves `name(index)` into `%rd<target>`, zero-extended.
    func store(_ index: Int, to target: Int) -> String {
        switch self {
        case .h: "cvt.u64.u16 %rd\(target), %h\(index);"
        case .r: "cvt.u64.u32 %rd\(target), %r\(index);"
        case .f: "mov.b32 %r15, %f\(index); cvt.u64.u32 %rd\(target), %r15;"
        case .rd: "mov.b64 %rd\(target), %rd\(index);"
        case .fd: "mov.b64 %rd\(target), %fd\(index);"
        case .p: "selp.u64 %rd\(target), 1, 0, %p\(index);"
        }
    }
}

/// Runs `body` on one thread with `slots` u64 result slots at `%rd0`. Registers declared:
/// `%p<8>`, `%h<16>`, `%r<16>`, `%rd<16>`, `%f<16>`, `%fd<16>`; `extra` goes at module scope.
func runSingleThread(
    _ body: String, slots: Int, extra: String = "", sourceLocation: SourceLocation = #_sourceLocation
) throws -> [UInt64] {
    let source = """
        .version 8.0
        .target sm_80
        .address_size 64
        \(extra)
        .visible .entry t(.param .u64 out)
        {
            .reg .pred %p<8>;
            .reg .b16 %h<16>;
            .reg .b32 %r<16>;
            .reg .b64 %rd<16>;
            .reg .f32 %f<16>;
            .reg .f64 %fd<16>;
            ld.param.u64 %rd0, [out];
        \(body)
            ret;
        }
        """
    let module = try PTXModule(source: source)
    let kernel = try #require(module.kernel(named: "t"), sourceLocation: sourceLocation)
    let memory = TestMemory()
    let out = memory.allocate(max(slots, 1) * 8)
    var params = ParameterBuffer()
    params.append(out, at: 0)
    let variables = module.variables.map { v in
        let address = memory.allocate(max(v.size, 8))
        for (i, byte) in v.initialBytes.enumerated() { memory.pointer(address).storeBytes(of: byte, toByteOffset: i, as: UInt8.self) }
        return address
    }
    let fault = PTXLaunch(
        kernel: kernel, grid: PTXDim3(1), block: PTXDim3(1), parameters: params.bytes, memory: memory.map,
        variableAddresses: variables
    ).run()
    #expect(fault == nil, sourceLocation: sourceLocation)
    let p = memory.pointer(out)
    return (0..<slots).map { p.load(fromByteOffset: 8 * $0, as: UInt64.self) }
}

/// Executes `instruction d, a[, b[, c]]` once per case, each operand given as a 64-bit pattern
/// moved into a register of its class, and returns each result zero-extended to 64 bits.
func evaluate(
    _ instruction: String, result: RegisterClass, operands: [RegisterClass], cases: [[UInt64]],
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> [UInt64] {
    var body = ""
    for (k, values) in cases.enumerated() {
        precondition(values.count == operands.count)
        for (j, v) in values.enumerated() {
            body += "    mov.b64 %rd10, 0x\(String(v, radix: 16));\n    \(operands[j].load(j + 2, from: 10))\n"
        }
        let sources = operands.enumerated().map { $1.name($0 + 2) }.joined(separator: ", ")
        body += "    \(instruction) \(result.name(1)), \(sources);\n"
        body += "    \(result.store(1, to: 11))\n    st.global.u64 [%rd0+\(8 * k)], %rd11;\n"
    }
    return try runSingleThread(body, slots: cases.count, sourceLocation: sourceLocation)
}

/// Every ordered pair of `values`.
func pairs(_ values: [UInt64]) -> [[UInt64]] { values.flatMap { a in values.map { b in [a, b] } } }

/// The low `bits` bits of `v`.
func low(_ v: UInt64, _ bits: Int) -> UInt64 { bits >= 64 ? v : v & ((1 << UInt64(bits)) - 1) }

/// Interesting bit patterns for integer tests of any width (truncated by the caller).
let integerSamples: [UInt64] = [
    0, 1, 2, 7, 100, 0x7F, 0x80, 0xFF, 0x1234, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
    0x1234_5678_9ABC_DEF0, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFFE, 0xFFFF_FFFF_FFFF_FFFF,
]

extension FixedWidthInteger {
    /// The value's bits zero-extended to 64.
    var pattern: UInt64 { low(UInt64(truncatingIfNeeded: self), Self.bitWidth) }
    /// PTX type suffix (`s16`, `u64`, ...).
    static var ptxSuffix: String { "\(Self.isSigned ? "s" : "u")\(bitWidth)" }
}

/// Compares an f32 result bit pattern with `expected` within `ulps` units in the last place.
func closeF32(_ bits: UInt64, _ expected: Float, ulps: Float = 0) -> Bool {
    let got = Float(bitPattern: UInt32(truncatingIfNeeded: bits))
    if expected.isNaN { return got.isNaN }
    if got == expected { return true }
    return abs(got - expected) <= ulps * expected.ulp
}
