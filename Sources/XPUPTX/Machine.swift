import CXPUClock

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@inline(__always) func truncate(_ v: UInt64, _ bits: Int) -> UInt64 {
    bits >= 64 ? v : v & ((1 &<< UInt64(bits)) &- 1)
}

@inline(__always) func signExtend(_ v: UInt64, _ bits: Int) -> Int64 {
    let shift = UInt64(64 - bits)
    return Int64(bitPattern: v &<< shift) &>> Int64(shift)
}

@inline(__always) func f32(_ v: UInt64) -> Float { Float(bitPattern: UInt32(truncatingIfNeeded: v)) }
@inline(__always) func f16(_ v: UInt64) -> Float { FloatFormat.decode(v, .f16) }
@inline(__always) func bits(_ f: Float) -> UInt64 { UInt64(f.bitPattern) }
@inline(__always) func bits16(_ f: Float) -> UInt64 { FloatFormat.encode(Double(f), .f16, .rn, sat: false) }

extension ScalarType {
    /// Width in bits of a register value of this type (a predicate is one bit).
    @inline(__always) var registerBits: Int { self == .pred ? 1 : bits }
}

/// Striped locks that make global atomics atomic across blocks running on different threads.
final class AtomicStripes: @unchecked Sendable {
    static let shared = AtomicStripes()
    static let count = 256
    let locks: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        locks = .allocate(capacity: AtomicStripes.count)
        for i in 0..<AtomicStripes.count { pthread_mutex_init(locks + i, nil) }
    }

    @inline(__always) func withLock<T>(_ address: UInt64, _ body: () -> T) -> T {
        let lock = locks + Int((address >> 3) % UInt64(AtomicStripes.count))
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return body()
    }
}

/// The interpreter state of one block: code, memories, and the thread being run.
struct Machine {
    let code: UnsafePointer<Instruction>
    let vectors: UnsafePointer<Int32>?
    let params: UnsafeRawPointer?
    let paramSize: Int
    let shared: UnsafeMutableRawPointer
    let sharedSize: Int
    let local: UnsafeMutableRawPointer
    let localSize: Int
    let memory: PTXMemoryMap
    /// Where `printf` output goes; nil: it is discarded.
    let output: DeviceOutput?
    /// The running thread's local memory, and the running call level within it (`localBase`,
    /// which `.local` addresses are relative to, with `localAvailable` bytes from there on).
    var localThreadBase: UnsafeMutableRawPointer
    var localBase: UnsafeMutableRawPointer
    var localAvailable: Int
    // One-entry translation cache for global memory.
    var cacheBase: UInt64 = 1
    var cacheEnd: UInt64 = 0
    var cachePointer: UnsafeMutableRawPointer?

    init(
        code: UnsafePointer<Instruction>, vectors: UnsafePointer<Int32>?, params: UnsafeRawPointer?, paramSize: Int,
        shared: UnsafeMutableRawPointer, sharedSize: Int, local: UnsafeMutableRawPointer, localSize: Int,
        memory: PTXMemoryMap, output: DeviceOutput? = nil
    ) {
        self.code = code
        self.vectors = vectors
        self.params = params
        self.paramSize = paramSize
        self.shared = shared
        self.sharedSize = sharedSize
        self.local = local
        self.localSize = localSize
        self.memory = memory
        self.output = output
        self.localThreadBase = local
        self.localBase = local
        self.localAvailable = localSize
    }

    /// Makes `thread`'s local memory current, at the call level its frame-shift register holds.
    @inline(__always)
    mutating func enterThread(_ threadLocal: UnsafeMutableRawPointer, registers r: UnsafeMutablePointer<UInt64>, frameShiftRegister: Int32) {
        localThreadBase = threadLocal
        let shift = frameShiftRegister >= 0 ? Int(truncatingIfNeeded: r[Int(frameShiftRegister)]) : 0
        localBase = threadLocal + shift
        localAvailable = localSize &- shift
    }

    // MARK: Memory

    /// Host memory for an access of `size` bytes at `address` in `space`; the bool says whether
    /// the access is to global memory (which other blocks may touch concurrently).
    @inline(__always)
    mutating func resolve(_ address: UInt64, _ size: Int, _ space: StateSpace, line: Int32) throws(PTXFault)
        -> (UnsafeMutableRawPointer, Bool)
    {
        if address & UInt64(size &- 1) != 0 {
            throw PTXFault(kind: .misalignedAddress, address: address, line: Int(line), kernel: "")
        }
        switch space {
        case .global, .const:
            if address >= cacheBase, address &+ UInt64(size) <= cacheEnd {
                return (cachePointer! + Int(address &- cacheBase), true)
            }
            guard let i = memory.index(containing: address) else {
                throw PTXFault(kind: .illegalAddress, address: address, line: Int(line), kernel: "")
            }
            let region = memory.regions[i]
            cacheBase = region.base
            cacheEnd = region.base &+ UInt64(region.size)
            cachePointer = region.pointer
            guard address &+ UInt64(size) <= cacheEnd else {
                throw PTXFault(kind: .illegalAddress, address: address, line: Int(line), kernel: "")
            }
            return (region.pointer + Int(address &- region.base), true)
        case .shared:
            guard address &+ UInt64(size) <= UInt64(sharedSize) else {
                throw PTXFault(kind: .illegalAddress, address: address, line: Int(line), kernel: "")
            }
            return (shared + Int(address), false)
        case .local:
            guard address &+ UInt64(size) <= UInt64(localAvailable) else {
                throw PTXFault(kind: .illegalAddress, address: address, line: Int(line), kernel: "")
            }
            return (localBase + Int(address), false)
        case .param:
            guard let params, address &+ UInt64(size) <= UInt64(paramSize) else {
                throw PTXFault(kind: .illegalAddress, address: address, line: Int(line), kernel: "")
            }
            return (UnsafeMutableRawPointer(mutating: params) + Int(address), false)
        case .generic, .reg:
            if address &- GenericWindow.sharedBase < GenericWindow.windowSize {
                return try resolve(address &- GenericWindow.sharedBase, size, .shared, line: line)
            }
            if address &- GenericWindow.localBase < GenericWindow.windowSize {
                // Absolute within the thread's local memory (every call level).
                let offset = address &- GenericWindow.localBase
                guard offset &+ UInt64(size) <= UInt64(localSize) else {
                    throw PTXFault(kind: .illegalAddress, address: address, line: Int(line), kernel: "")
                }
                return (localThreadBase + Int(offset), false)
            }
            return try resolve(address, size, .global, line: line)
        }
    }

    @inline(__always) static func load(_ p: UnsafeMutableRawPointer, _ type: ScalarType) -> UInt64 {
        switch type.size {
        case 1: return type.isSigned ? UInt64(bitPattern: Int64(p.load(as: Int8.self))) : UInt64(p.load(as: UInt8.self))
        case 2:
            return type.isSigned
                ? UInt64(bitPattern: Int64(p.loadUnaligned(as: Int16.self))) : UInt64(p.loadUnaligned(as: UInt16.self))
        case 4:
            return type.isSigned
                ? UInt64(bitPattern: Int64(p.loadUnaligned(as: Int32.self))) : UInt64(p.loadUnaligned(as: UInt32.self))
        default: return p.loadUnaligned(as: UInt64.self)
        }
    }

    @inline(__always) static func store(_ p: UnsafeMutableRawPointer, _ type: ScalarType, _ v: UInt64) {
        switch type.size {
        case 1: p.storeBytes(of: UInt8(truncatingIfNeeded: v), as: UInt8.self)
        case 2: p.storeBytes(of: UInt16(truncatingIfNeeded: v), toByteOffset: 0, as: UInt16.self)
        case 4: p.storeBytes(of: UInt32(truncatingIfNeeded: v), toByteOffset: 0, as: UInt32.self)
        default: p.storeBytes(of: v, toByteOffset: 0, as: UInt64.self)
        }
    }

    // MARK: Execution

    /// Why a thread stopped running.
    enum Stop {
        /// The thread exited.
        case exit
        /// At `bar.sync`; the pc is past the barrier.
        case barrier
        /// At a warp collective; the pc is the collective, which the block runner executes.
        case warp
    }

    /// Runs one thread from `pc` until it exits, reaches a barrier or a warp collective; returns
    /// the pc to resume at and why it stopped. `steps` counts the instructions executed.
    mutating func run(pc start: Int, registers r: UnsafeMutablePointer<UInt64>, steps: inout Int) throws(PTXFault) -> (Int, Stop) {
        var pc = start
        var executed = 0
        defer { steps &+= executed }
        while true {
            let inst = code[pc]
            executed &+= 1
            if inst.guardRegister >= 0, (r[Int(inst.guardRegister)] & 1 != 0) == inst.guardNegated {
                pc &+= 1
                continue
            }
            let type = inst.type
            switch inst.opcode {
            case .bra:
                pc = Int(inst.offset)
                continue
            case .call:
                r[Int(inst.d)] = UInt64(pc &+ 1)
                pc = Int(inst.offset)
                continue
            case .ret:
                pc = Int(truncatingIfNeeded: r[Int(inst.a)])
                continue
            case .exit:
                return (pc, .exit)
            case .barrier:
                return (pc &+ 1, .barrier)
            case .shfl, .vote, .activemask, .warpSync, .redux, .matchAny:
                executed &-= 1  // counted when the warp executes it
                return (pc, .warp)
            case .trap:
                throw PTXFault(kind: .trap, address: 0, line: Int(inst.line), kernel: "")
            case .nop:
                break
            case .ld:
                let width = Int(inst.vectorWidth)
                let size = type.size
                let address = r[Int(inst.a)] &+ UInt64(bitPattern: inst.offset)
                let (p, _) = try resolve(address, size &* width, inst.space, line: inst.line)
                if width == 1 {
                    r[Int(inst.d)] = Machine.load(p, type)
                } else {
                    for k in 0..<width {
                        r[Int(vectors![Int(inst.d) &+ k])] = Machine.load(p + k &* size, type)
                    }
                }
            case .st:
                let width = Int(inst.vectorWidth)
                let size = type.size
                let address = r[Int(inst.a)] &+ UInt64(bitPattern: inst.offset)
                let (p, _) = try resolve(address, size &* width, inst.space, line: inst.line)
                if width == 1 {
                    Machine.store(p, type, r[Int(inst.b)])
                } else {
                    for k in 0..<width {
                        Machine.store(p + k &* size, type, r[Int(vectors![Int(inst.b) &+ k])])
                    }
                }
            case .copyLocal:
                let from = UInt64(UInt32(bitPattern: inst.a))
                let to = UInt64(UInt32(bitPattern: inst.b))
                let size = Int(inst.c)
                guard from &+ UInt64(size) <= UInt64(localAvailable), to &+ UInt64(size) <= UInt64(localAvailable) else {
                    throw PTXFault(kind: .illegalAddress, address: to, line: Int(inst.line), kernel: "")
                }
                (localBase + Int(to)).copyMemory(from: localBase + Int(from), byteCount: size)
            case .atom:
                let address = r[Int(inst.a)] &+ UInt64(bitPattern: inst.offset)
                let (p, isGlobal) = try resolve(address, type.size, inst.space, line: inst.line)
                let x = r[Int(inst.b)]
                let y = inst.c >= 0 ? r[Int(inst.c)] : 0
                let op = AtomicOp(rawValue: inst.mode)!
                let old =
                    isGlobal
                    ? AtomicStripes.shared.withLock(address) { Machine.atomic(p, type, op, x, y) }
                    : Machine.atomic(p, type, op, x, y)
                r[Int(inst.d)] = old
            case .unpack:
                Machine.unpack(inst, r, vectors!)
            case .printf:
                try printf(inst, r)
            case .assertFail:
                try assertFail(inst, r)
            case .saveFrame, .restoreFrame:
                try moveFrame(inst, r)
            case .shiftFrame:
                let shift = Int(truncatingIfNeeded: r[Int(inst.d)]) &+ Int(inst.offset)
                guard shift >= 0, shift &+ Swift.abs(Int(inst.offset)) <= localSize else {
                    throw PTXFault(kind: .illegalAddress, address: GenericWindow.localBase &+ UInt64(shift), line: Int(inst.line), kernel: "")
                }
                r[Int(inst.d)] = UInt64(shift)
                localBase = localThreadBase + shift
                localAvailable = localSize &- shift
            default:
                r[Int(inst.d)] = Machine.compute(inst, r, vectors)
            }
            pc &+= 1
        }
    }

    /// `vprintf(format, arguments)`: formats into the launch's output FIFO.
    mutating func printf(_ inst: Instruction, _ r: UnsafeMutablePointer<UInt64>) throws(PTXFault) {
        func operand(_ register: Int32, indirect: Bool) throws(PTXFault) -> UInt64 {
            guard indirect else { return r[Int(register)] }
            let (p, _) = try resolve(r[Int(register)], 8, .local, line: inst.line)
            return p.loadUnaligned(as: UInt64.self)
        }
        let formatAddress = try operand(inst.a, indirect: inst.flags & 1 != 0)
        let arguments = try operand(inst.b, indirect: inst.flags & 2 != 0)
        let format = try deviceString(formatAddress, line: inst.line)
        var failed = false
        let text = DevicePrintf.format(
            format,
            argument: { offset, size in
                guard arguments != 0, !failed else { return nil }
                do throws(PTXFault) {
                    let (p, _) = try resolve(arguments &+ UInt64(offset), size, .generic, line: inst.line)
                    return size == 8 ? p.load(as: UInt64.self) : UInt64(p.load(as: UInt32.self))
                } catch {
                    failed = true
                    return nil
                }
            },
            string: { address in try? deviceString(address, line: inst.line) })
        let status: UInt64 = output?.append(text) ?? true ? 0 : UInt64(bitPattern: -1)
        if inst.flags & 4 != 0 {
            let (p, _) = try resolve(r[Int(inst.d)], 4, .local, line: inst.line)
            p.storeBytes(of: UInt32(truncatingIfNeeded: status), as: UInt32.self)
        } else if inst.d >= 0 {
            r[Int(inst.d)] = truncate(status, 32)
        }
    }

    /// `__assertfail(message, file, line, function, charSize)`: CUDA's report of a failed device
    /// assertion, written where `printf` output goes, then the assertion fault that stops the
    /// kernel (the context's sticky `CUDA_ERROR_ASSERT`).
    mutating func assertFail(_ inst: Instruction, _ r: UnsafeMutablePointer<UInt64>) throws(PTXFault) {
        func operand(_ register: Int32, indirect: Bool, size: Int) throws(PTXFault) -> UInt64 {
            guard indirect else { return truncate(r[Int(register)], size * 8) }
            let (p, _) = try resolve(r[Int(register)], size, .local, line: inst.line)
            return size == 8 ? p.loadUnaligned(as: UInt64.self) : UInt64(p.loadUnaligned(as: UInt32.self))
        }
        let message = try deviceString(try operand(inst.a, indirect: inst.flags & 1 != 0, size: 8), line: inst.line)
        let file = try deviceString(try operand(inst.b, indirect: inst.flags & 2 != 0, size: 8), line: inst.line)
        let line = try operand(inst.c, indirect: inst.flags & 4 != 0, size: 4)
        let function = try deviceString(try operand(inst.d, indirect: inst.flags & 8 != 0, size: 8), line: inst.line)
        func special(_ s: Compiler.Special) -> UInt64 { r[Int(s.rawValue)] }
        let report =
            "\(String(decoding: file, as: UTF8.self)):\(line): \(String(decoding: function, as: UTF8.self)): "
            + "block: [\(special(.ctaidX)),\(special(.ctaidY)),\(special(.ctaidZ))], "
            + "thread: [\(special(.tidX)),\(special(.tidY)),\(special(.tidZ))] "
            + "Assertion `\(String(decoding: message, as: UTF8.self))` failed.\n"
        _ = output?.append(Array(report.utf8))
        throw PTXFault(kind: .assertion, address: 0, line: Int(inst.line), kernel: "")
    }

    /// `saveFrame` stores registers `a..<b` at local offset `offset` of the running call level;
    /// `restoreFrame` loads them back.
    mutating func moveFrame(_ inst: Instruction, _ r: UnsafeMutablePointer<UInt64>) throws(PTXFault) {
        let bytes = Int(inst.b &- inst.a) &* 8
        let offset = Int(inst.offset)
        guard offset &+ bytes <= localAvailable else {
            throw PTXFault(kind: .illegalAddress, address: GenericWindow.localBase &+ UInt64(offset), line: Int(inst.line), kernel: "")
        }
        let saved = localBase + offset
        if inst.opcode == .saveFrame {
            saved.copyMemory(from: r + Int(inst.a), byteCount: bytes)
        } else {
            UnsafeMutableRawPointer(r + Int(inst.a)).copyMemory(from: saved, byteCount: bytes)
        }
    }

    /// The NUL-terminated string at a generic address (at most 64 KiB), read a byte at a time so
    /// that a string running off its allocation faults instead of reading past it.
    mutating func deviceString(_ address: UInt64, line: Int32) throws(PTXFault) -> [UInt8] {
        var bytes: [UInt8] = []
        var at = address
        while bytes.count < 1 << 16 {
            let (p, _) = try resolve(at, 1, .generic, line: line)
            let byte = p.load(as: UInt8.self)
            if byte == 0 { break }
            bytes.append(byte)
            at &+= 1
        }
        return bytes
    }

    static func atomic(_ p: UnsafeMutableRawPointer, _ type: ScalarType, _ op: AtomicOp, _ x: UInt64, _ y: UInt64) -> UInt64 {
        let old = load(p, type)
        let b = type.bits
        var new: UInt64
        switch op {
        case .add:
            switch type {
            case .f32: new = bits(f32(old) + f32(x))
            case .f64: new = (Double(bitPattern: old) + Double(bitPattern: x)).bitPattern
            case .f16: new = bits16(f16(old) + f16(x))
            default: new = old &+ x
            }
        case .min:
            new = type.isSigned ? (signExtend(old, b) <= signExtend(x, b) ? old : x) : (truncate(old, b) <= truncate(x, b) ? old : x)
        case .max:
            new = type.isSigned ? (signExtend(old, b) >= signExtend(x, b) ? old : x) : (truncate(old, b) >= truncate(x, b) ? old : x)
        case .exch: new = x
        case .cas: new = truncate(old, b) == truncate(x, b) ? y : old
        case .and: new = old & x
        case .or: new = old | x
        case .xor: new = old ^ x
        case .inc: new = truncate(old, b) >= truncate(x, b) ? 0 : old &+ 1
        case .dec: new = (truncate(old, b) == 0 || truncate(old, b) > truncate(x, b)) ? x : old &- 1
        }
        store(p, type, new)
        return truncate(old, 64)
    }

    static func unpack(_ inst: Instruction, _ r: UnsafeMutablePointer<UInt64>, _ vectors: UnsafePointer<Int32>) {
        let n = Int(inst.vectorWidth)
        let elementBits = inst.type.bits / n
        let v = r[Int(inst.a)]
        for k in 0..<n {
            let target = Int(vectors[Int(inst.d) &+ k])
            r[target] = truncate(v >> UInt64(k * elementBits), elementBits)
        }
        r[Int(Compiler.Special.sink.rawValue)] = 0
    }

    /// Register-to-register instructions; returns the destination value.
    @inline(__always)
    static func compute(_ inst: Instruction, _ r: UnsafeMutablePointer<UInt64>, _ vectors: UnsafePointer<Int32>?) -> UInt64 {
        let type = inst.type
        let n = type.registerBits
        let x = inst.a >= 0 ? r[Int(inst.a)] : 0
        let y = inst.b >= 0 ? r[Int(inst.b)] : 0
        switch inst.opcode {
        case .mov: return x
        case .add:
            if inst.flags & 1 != 0, type == .s32 {
                return truncate(UInt64(bitPattern: Swift.min(Swift.max(signExtend(x, 32) &+ signExtend(y, 32), Int64(Int32.min)), Int64(Int32.max))), 32)
            }
            return truncate(x &+ y, n)
        case .sub:
            if inst.flags & 1 != 0, type == .s32 {
                return truncate(UInt64(bitPattern: Swift.min(Swift.max(signExtend(x, 32) &- signExtend(y, 32), Int64(Int32.min)), Int64(Int32.max))), 32)
            }
            return truncate(x &- y, n)
        case .mulLo: return truncate(x &* y, n)
        case .mulHi, .madHi:
            var hi: UInt64
            if n == 64 {
                hi = type.isSigned
                    ? UInt64(bitPattern: Int64(bitPattern: x).multipliedFullWidth(by: Int64(bitPattern: y)).high)
                    : x.multipliedFullWidth(by: y).high
            } else {
                hi = type.isSigned
                    ? UInt64(bitPattern: (signExtend(x, n) &* signExtend(y, n)) >> Int64(n))
                    : (truncate(x, n) &* truncate(y, n)) >> UInt64(n)
            }
            if inst.opcode == .madHi { hi &+= r[Int(inst.c)] }
            return truncate(hi, n)
        case .mulWide, .madWide:
            var product =
                type.isSigned
                ? UInt64(bitPattern: signExtend(x, n) &* signExtend(y, n)) : truncate(x, n) &* truncate(y, n)
            if inst.opcode == .madWide { product &+= r[Int(inst.c)] }
            return truncate(product, 2 * n)
        case .madLo: return truncate(x &* y &+ r[Int(inst.c)], n)
        case .mul24Lo, .mad24Lo, .mul24Hi:
            let product =
                type.isSigned
                ? UInt64(bitPattern: signExtend(x, 24) &* signExtend(y, 24)) : truncate(x, 24) &* truncate(y, 24)
            if inst.opcode == .mul24Hi { return truncate(product >> 16, 32) }
            return truncate(product &+ (inst.opcode == .mad24Lo ? r[Int(inst.c)] : 0), 32)
        case .sad:
            let diff =
                type.isSigned
                ? UInt64(bitPattern: Swift.abs(signExtend(x, n) &- signExtend(y, n)))
                : (truncate(x, n) > truncate(y, n) ? truncate(x, n) &- truncate(y, n) : truncate(y, n) &- truncate(x, n))
            return truncate(diff &+ r[Int(inst.c)], n)
        case .div, .rem:
            if type.isSigned {
                let a = signExtend(x, n)
                let b = signExtend(y, n)
                if b == 0 { return truncate(inst.opcode == .div ? ~0 : x, n) }
                let q = inst.opcode == .div ? a.dividedReportingOverflow(by: b).partialValue : a.remainderReportingOverflow(dividingBy: b).partialValue
                return truncate(UInt64(bitPattern: q), n)
            }
            let a = truncate(x, n)
            let b = truncate(y, n)
            if b == 0 { return truncate(inst.opcode == .div ? ~0 : a, n) }
            return inst.opcode == .div ? a / b : a % b
        case .abs: return truncate(UInt64(bitPattern: signExtend(x, n).magnitude == UInt64(1) << 63 ? signExtend(x, n) : Swift.abs(signExtend(x, n))), n)
        case .neg: return truncate(0 &- x, n)
        case .min, .max:
            let less = type.isSigned ? signExtend(x, n) < signExtend(y, n) : truncate(x, n) < truncate(y, n)
            return truncate((less == (inst.opcode == .min)) ? x : y, n)
        case .and: return truncate(x & y, n)
        case .or: return truncate(x | y, n)
        case .xor: return truncate(x ^ y, n)
        case .not: return truncate(~x, n)
        case .cnot: return truncate(x, n) == 0 ? 1 : 0
        case .shl:
            let amount = truncate(y, 32)
            return amount >= UInt64(n) ? 0 : truncate(x &<< amount, n)
        case .shr:
            let amount = truncate(y, 32)
            if type.isSigned {
                let v = signExtend(x, n)
                return truncate(UInt64(bitPattern: v >> Int64(Swift.min(amount, 63))), n)
            }
            return amount >= UInt64(n) ? 0 : truncate(x, n) >> amount
        case .popc: return UInt64(truncate(x, n).nonzeroBitCount)
        case .clz: return UInt64(truncate(x, n).leadingZeroBitCount - (64 - n))
        case .brev:
            var v = truncate(x, n)
            var out: UInt64 = 0
            for _ in 0..<n { out = (out << 1) | (v & 1); v >>= 1 }
            return out
        case .bfe:
            let pos = Int(y & 0xFF)
            let len = Int(r[Int(inst.c)] & 0xFF)
            let v = truncate(x, n)
            if len == 0 { return 0 }
            let field = pos >= n ? 0 : truncate(v >> UInt64(pos), Swift.min(len, 64))
            if type.isSigned {
                let msb = pos + len - 1 >= n ? (v >> UInt64(n - 1)) & 1 : (field >> UInt64(Swift.min(len, 64) - 1)) & 1
                if len >= n { return v }
                return truncate(msb != 0 ? field | (~0 << UInt64(Swift.min(len, 63))) : field, n)
            }
            return truncate(field, n)
        case .bfind:
            // Position of the most significant non-sign bit; .shiftamt gives the left shift that
            // brings it to the top instead. No such bit: all ones.
            let v = type.isSigned && signExtend(x, n) < 0 ? truncate(~x, n) : truncate(x, n)
            if v == 0 { return 0xFFFF_FFFF }
            let position = UInt64(63 - v.leadingZeroBitCount)
            return inst.flags & 1 != 0 ? UInt64(n - 1) - position : position
        case .prmt:
            // Each selector nibble picks one byte of {b, a}; bit 3 of the nibble replicates its sign.
            let pool = (truncate(y, 32) << 32) | truncate(x, 32)
            let selectors = r[Int(inst.c)]
            var result: UInt64 = 0
            for k in 0..<4 {
                let selector = (selectors >> UInt64(4 * k)) & 0xF
                var byte = (pool >> ((selector & 7) * 8)) & 0xFF
                if selector & 8 != 0 { byte = byte & 0x80 != 0 ? 0xFF : 0 }
                result |= byte << UInt64(8 * k)
            }
            return result
        case .addCarry, .subCarry, .madCarry:
            return extended(inst, truncate(x, n), truncate(y, n), r)
        case .funnelShift:
            let amount = inst.flags & 2 != 0 ? Swift.min(truncate(r[Int(inst.c)], 32), 32) : r[Int(inst.c)] & 31
            let pair = (truncate(y, 32) << 32) | truncate(x, 32)
            return inst.flags & 1 != 0 ? truncate(pair >> amount, 32) : truncate((pair << amount) >> 32, 32)
        case .dotProduct:
            return dotProduct(inst, x, y, r[Int(inst.c)])
        case .slct:
            let c = r[Int(inst.c)]
            let takeA = inst.sourceType == .f32 ? !(f32(c) < 0) : signExtend(c, 32) >= 0
            return takeA ? x : y
        case .bfi:
            let pos = Int(r[Int(inst.c)] & 0xFF)
            let len = Int(r[Int(inst.d2)] & 0xFF)
            if len == 0 || pos >= n { return truncate(y, n) }
            let mask = truncate(truncate(~0, Swift.min(len, 64)) << UInt64(pos), n)
            return truncate((y & ~mask) | ((x << UInt64(pos)) & mask), n)
        case .pack:
            let count = Int(inst.vectorWidth)
            let elementBits = n / count
            var v: UInt64 = 0
            for k in 0..<count { v |= truncate(r[Int(vectors![Int(inst.a) &+ k])], elementBits) << UInt64(k * elementBits) }
            return v
        case .unpack:
            return r[Int(Compiler.Special.sink.rawValue)]
        case .readClock:
            return truncate(xpu_monotonic_nanoseconds(), n)
        case .fadd, .fsub, .fmul, .fdiv, .fmin, .fmax, .ffma:
            return floatBinary(inst, x, y, inst.c >= 0 ? r[Int(inst.c)] : 0)
        case .fabs, .fneg, .frcp, .fsqrt, .frsqrt, .fsin, .fcos, .fex2, .flg2, .ftanh:
            return floatUnary(inst, x)
        case .setp:
            var result = compare(CompareOp(rawValue: inst.mode)!, type, x, y)
            var other = !result
            if inst.flags & 3 != 0 {
                var c = r[Int(inst.c)] & 1 != 0
                if inst.flags & 4 != 0 { c = !c }
                switch inst.flags & 3 {
                case 1: result = result && c; other = other && c
                case 2: result = result || c; other = other || c
                default: result = result != c; other = other != c
                }
            }
            if inst.d2 >= 0 { r[Int(inst.d2)] = other ? 1 : 0 }
            return result ? 1 : 0
        case .set:
            var result = compare(CompareOp(rawValue: inst.mode)!, inst.sourceType, x, y)
            if inst.flags & 3 != 0 {
                var c = r[Int(inst.c)] & 1 != 0
                if inst.flags & 4 != 0 { c = !c }
                switch inst.flags & 3 {
                case 1: result = result && c
                case 2: result = result || c
                default: result = result != c
                }
            }
            guard result else { return 0 }
            switch type {
            case .f32: return bits(1)
            case .f16: return 0x3C00
            case .bf16: return 0x3F80
            default: return truncate(~0, n)
            }
        case .selp: return r[Int(inst.c)] & 1 != 0 ? x : y
        case .fcopysign:
            let sign: UInt64 = type == .f64 ? 1 << 63 : 1 << 31
            return truncate((y & ~sign) | (x & sign), n)
        case .cvtToFP8x2:
            let format: FP8.Format = inst.flags & 1 != 0 ? .e5m2 : .e4m3
            let relu = inst.flags & 2 != 0
            let hi: Double
            let lo: Double
            if inst.sourceType == .f32 {
                hi = Double(f32(x))
                lo = Double(f32(y))
            } else {
                let element: ScalarType = inst.sourceType == .f16x2 ? .f16 : .bf16
                hi = Double(FloatFormat.decode(x >> 16, element))
                lo = Double(FloatFormat.decode(x & 0xFFFF, element))
            }
            return UInt64(FP8.encode(hi, format, relu: relu)) << 8 | UInt64(FP8.encode(lo, format, relu: relu))
        case .cvtFromFP8x2:
            let format: FP8.Format = inst.flags & 1 != 0 ? .e5m2 : .e4m3
            let relu = inst.flags & 2 != 0
            let element: ScalarType = type == .f16x2 ? .f16 : .bf16
            func half(_ byte: UInt64) -> UInt64 {
                var v = FP8.decode(UInt8(truncatingIfNeeded: byte), format)
                if v.isNaN { return 0x7FFF }
                if relu, v < 0 { v = 0 }
                return FloatFormat.encode(v, element, .rn, sat: false)
            }
            return half(x >> 8) << 16 | half(x)
        case .cvt:
            let rounding = Rounding(rawValue: inst.mode)!
            if type == .f16x2 || type == .bf16x2 {
                let element: ScalarType = type == .f16x2 ? .f16 : .bf16
                let hi = convert(x, from: .f32, to: element, rounding: rounding, saturate: inst.flags & 1 != 0)
                let lo = convert(y, from: .f32, to: element, rounding: rounding, saturate: inst.flags & 1 != 0)
                return (hi << 16) | lo
            }
            return convert(x, from: inst.sourceType, to: type, rounding: rounding, saturate: inst.flags & 1 != 0)
        case .cvtaToGeneric:
            switch inst.space {
            case .shared: return truncate(x, 32) &+ GenericWindow.sharedBase
            case .local: return truncate(x, 32) &+ GenericWindow.localBase &+ (inst.c >= 0 ? r[Int(inst.c)] : 0)
            default: return x
            }
        case .cvtaFromGeneric:
            switch inst.space {
            case .shared: return truncate(x &- GenericWindow.sharedBase, n)
            case .local: return truncate(x &- GenericWindow.localBase &- (inst.c >= 0 ? r[Int(inst.c)] : 0), n)
            default: return x
            }
        case .bra, .ret, .exit, .barrier, .trap, .nop, .ld, .st, .atom, .call, .copyLocal, .shfl, .vote, .activemask,
            .warpSync, .redux, .matchAny, .printf, .assertFail, .saveFrame, .restoreFrame, .shiftFrame:
            return x
        }
    }

    /// `add{c}{.cc}`, `sub{c}{.cc}`, `mad{c}.lo/hi{.cc}` on `n`-bit operands `a` and `b`: reads
    /// and writes the thread's carry flag as the flags ask. PTX defines the flag of a subtraction
    /// as its borrow: `subc` computes `a - (b + CF)`.
    static func extended(_ inst: Instruction, _ a: UInt64, _ b: UInt64, _ r: UnsafeMutablePointer<UInt64>) -> UInt64 {
        let n = inst.type.registerBits
        let flag = Int(Compiler.Special.carry.rawValue)
        let carryIn: UInt64 = inst.flags & 1 != 0 ? r[flag] & 1 : 0
        let result: UInt64
        let carryOut: Bool
        if inst.opcode == .subCarry {
            let (d1, o1) = a.subtractingReportingOverflow(b)
            let (d2, o2) = d1.subtractingReportingOverflow(carryIn)
            result = truncate(d2, n)
            // In n < 64 bits the borrow shows as bit n of the 64-bit difference.
            carryOut = n == 64 ? o1 || o2 : (d2 >> UInt64(n)) & 1 != 0
        } else {
            var augend = a
            var addend = b
            if inst.opcode == .madCarry {
                let product: UInt64
                if inst.flags & 4 == 0 {
                    product = a &* b
                } else if n == 64 {
                    product = inst.type.isSigned
                        ? UInt64(bitPattern: Int64(bitPattern: a).multipliedFullWidth(by: Int64(bitPattern: b)).high)
                        : a.multipliedFullWidth(by: b).high
                } else {
                    product = inst.type.isSigned
                        ? UInt64(bitPattern: (signExtend(a, n) &* signExtend(b, n)) >> Int64(n)) : (a &* b) >> UInt64(n)
                }
                augend = truncate(product, n)
                addend = truncate(r[Int(inst.c)], n)
            }
            let (s1, o1) = augend.addingReportingOverflow(addend)
            let (s2, o2) = s1.addingReportingOverflow(carryIn)
            result = truncate(s2, n)
            carryOut = n == 64 ? o1 || o2 : (s2 >> UInt64(n)) & 1 != 0
        }
        if inst.flags & 2 != 0 { r[flag] = carryOut ? 1 : 0 }
        return result
    }

    /// `dp4a`: `c` plus the four products of corresponding bytes of `a` and `b`; `dp2a`: `c` plus
    /// the products of `a`'s two halves with two bytes of `b` (the low two, or the high two for
    /// `.hi`). Each element is sign- or zero-extended as its operand's type says; the sum wraps
    /// in 32 bits.
    static func dotProduct(_ inst: Instruction, _ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64 {
        let signedA = inst.flags & 1 != 0
        let signedB = inst.flags & 2 != 0
        func element(_ v: UInt64, _ index: Int, bits: Int, signed: Bool) -> Int64 {
            let field = truncate(v >> UInt64(index * bits), bits)
            return signed ? signExtend(field, bits) : Int64(field)
        }
        var sum = Int64(truncatingIfNeeded: truncate(c, 32))
        if inst.flags & 4 == 0 {
            for k in 0..<4 { sum &+= element(a, k, bits: 8, signed: signedA) &* element(b, k, bits: 8, signed: signedB) }
        } else {
            let first = inst.flags & 8 != 0 ? 2 : 0
            for k in 0..<2 {
                sum &+= element(a, k, bits: 16, signed: signedA) &* element(b, first + k, bits: 8, signed: signedB)
            }
        }
        return truncate(UInt64(bitPattern: sum), 32)
    }

    // MARK: Floating point

    @inline(__always) static func floatBinary(_ inst: Instruction, _ x: UInt64, _ y: UInt64, _ z: UInt64) -> UInt64 {
        let sat = inst.flags & 1 != 0
        switch inst.type {
        case .f64:
            let a = Double(bitPattern: x)
            let b = Double(bitPattern: y)
            var v: Double
            switch inst.opcode {
            case .fadd: v = a + b
            case .fsub: v = a - b
            case .fmul: v = a * b
            case .fdiv: v = a / b
            case .fmin: v = minimum(a, b, propagateNaN: inst.flags & 2 != 0)
            case .fmax: v = maximum(a, b, propagateNaN: inst.flags & 2 != 0)
            default: v = Double(bitPattern: z).addingProduct(a, b)
            }
            if DirectedRounding.isDirected(inst.mode), inst.opcode != .fmin, inst.opcode != .fmax {
                v = DirectedRounding.f64(inst.opcode, a, b, Double(bitPattern: z), Rounding(rawValue: inst.mode)!)
            }
            if sat { v = v.isNaN ? 0 : Swift.min(Swift.max(v, 0), 1) }
            return v.bitPattern
        case .f16x2, .bf16x2:
            // Two independent halves in one 32-bit register.
            let element: ScalarType = inst.type == .f16x2 ? .f16 : .bf16
            let nan = inst.flags & 2 != 0
            let relu = inst.flags & 8 != 0
            let lo = floatBinary(inst.opcode, element, x & 0xFFFF, y & 0xFFFF, z & 0xFFFF, sat: sat, nan: nan, relu: relu)
            let hi = floatBinary(
                inst.opcode, element, (x >> 16) & 0xFFFF, (y >> 16) & 0xFFFF, (z >> 16) & 0xFFFF, sat: sat, nan: nan, relu: relu)
            return (hi << 16) | lo
        default:
            return floatBinary(
                inst.opcode, inst.type, x, y, z, sat: sat, nan: inst.flags & 2 != 0, relu: inst.flags & 8 != 0, mode: inst.mode)
        }
    }

    /// f32, f16 and bf16 arithmetic. f32 is computed in single precision; 16-bit types in double
    /// (exact for their sums and products) and rounded once to the type.
    @inline(__always) static func floatBinary(
        _ opcode: Opcode, _ type: ScalarType, _ x: UInt64, _ y: UInt64, _ z: UInt64, sat: Bool, nan: Bool, relu: Bool = false,
        mode: UInt8 = 0
    ) -> UInt64 {
        if type != .f32 {
            let a = Double(FloatFormat.decode(x, type))
            let b = Double(FloatFormat.decode(y, type))
            var v: Double
            switch opcode {
            case .fadd: v = a + b
            case .fsub: v = a - b
            case .fmul: v = a * b
            case .fdiv: v = a / b
            case .fmin: v = minimum(a, b, propagateNaN: nan)
            case .fmax: v = maximum(a, b, propagateNaN: nan)
            default: v = Double(FloatFormat.decode(z, type)).addingProduct(a, b)
            }
            if relu {
                // `.relu`: negative results become +0; NaN becomes the canonical NaN.
                if v.isNaN { return 0x7FFF }
                if !(v > 0) { v = 0 }
            }
            return FloatFormat.encode(v, type, .rn, sat: sat)
        }
        let a = f32(x)
        let b = f32(y)
        var v: Float
        switch opcode {
        case .fadd: v = a + b
        case .fsub: v = a - b
        case .fmul: v = a * b
        case .fdiv: v = a / b
        case .fmin: v = minimum(a, b, propagateNaN: nan)
        case .fmax: v = maximum(a, b, propagateNaN: nan)
        default: v = f32(z).addingProduct(a, b)
        }
        if DirectedRounding.isDirected(mode), opcode != .fmin, opcode != .fmax {
            v = DirectedRounding.f32(opcode, a, b, f32(z), Rounding(rawValue: mode)!)
        }
        if sat { v = v.isNaN ? 0 : Swift.min(Swift.max(v, 0), 1) }
        return bits(v)
    }

    @inline(__always) static func floatUnary(_ inst: Instruction, _ x: UInt64) -> UInt64 {
        let sat = inst.flags & 1 != 0
        if inst.type == .f64 {
            let a = Double(bitPattern: x)
            var v: Double
            switch inst.opcode {
            case .fabs: v = Swift.abs(a)
            case .fneg: v = -a
            case .frcp: v = 1 / a
            case .fsqrt: v = a.squareRoot()
            case .frsqrt: v = 1 / a.squareRoot()
            case .fsin: v = sin(a)
            case .fcos: v = cos(a)
            case .fex2: v = exp2(a)
            case .flg2: v = log2(a)
            default: v = tanh(a)
            }
            if (inst.opcode == .frcp || inst.opcode == .fsqrt) && DirectedRounding.isDirected(inst.mode) {
                v = DirectedRounding.f64(inst.opcode, a, 0, 0, Rounding(rawValue: inst.mode)!)
            }
            if sat { v = v.isNaN ? 0 : Swift.min(Swift.max(v, 0), 1) }
            return v.bitPattern
        }
        if inst.type == .f16x2 || inst.type == .bf16x2 {
            let element: ScalarType = inst.type == .f16x2 ? .f16 : .bf16
            return (floatUnary(inst.opcode, element, (x >> 16) & 0xFFFF, sat: sat) << 16)
                | floatUnary(inst.opcode, element, x & 0xFFFF, sat: sat)
        }
        if inst.type == .f32, inst.opcode == .frcp || inst.opcode == .fsqrt, DirectedRounding.isDirected(inst.mode) {
            let v = DirectedRounding.f32(inst.opcode, f32(x), 0, 0, Rounding(rawValue: inst.mode)!)
            return bits(sat ? (v.isNaN ? 0 : Swift.min(Swift.max(v, 0), 1)) : v)
        }
        return floatUnary(inst.opcode, inst.type, x, sat: sat)
    }

    @inline(__always) static func floatUnary(_ opcode: Opcode, _ type: ScalarType, _ x: UInt64, sat: Bool) -> UInt64 {
        // abs and neg only touch the sign bit (NaN payloads survive, as on the GPU).
        let sign: UInt64 = type == .f32 ? 0x8000_0000 : 0x8000
        if opcode == .fabs { return x & ~sign & (sign << 1 &- 1) }
        if opcode == .fneg { return (x ^ sign) & (sign << 1 &- 1) }
        let a = FloatFormat.decode(x, type)
        var v: Float
        switch opcode {
        case .frcp: v = 1 / a
        case .fsqrt: v = a.squareRoot()
        case .frsqrt: v = 1 / a.squareRoot()
        case .fsin: v = sinf(a)
        case .fcos: v = cosf(a)
        case .fex2: v = exp2f(a)
        case .flg2: v = log2f(a)
        default: v = tanhf(a)
        }
        if sat { v = v.isNaN ? 0 : Swift.min(Swift.max(v, 0), 1) }
        return type == .f32 ? bits(v) : FloatFormat.encode(Double(v), type, .rn, sat: false)
    }

    static func compare(_ op: CompareOp, _ type: ScalarType, _ x: UInt64, _ y: UInt64) -> Bool {
        if type.isFloat {
            let a = type == .f64 ? Double(bitPattern: x) : Double(FloatFormat.decode(x, type))
            let b = type == .f64 ? Double(bitPattern: y) : Double(FloatFormat.decode(y, type))
            let unordered = a.isNaN || b.isNaN
            switch op {
            case .eq: return !unordered && a == b
            case .ne: return !unordered && a != b
            case .lt, .lo: return !unordered && a < b
            case .le, .ls: return !unordered && a <= b
            case .gt, .hi: return !unordered && a > b
            case .ge, .hs: return !unordered && a >= b
            case .equ: return unordered || a == b
            case .neu: return unordered || a != b
            case .ltu: return unordered || a < b
            case .leu: return unordered || a <= b
            case .gtu: return unordered || a > b
            case .geu: return unordered || a >= b
            case .num: return !unordered
            case .nan: return unordered
            }
        }
        let n = type.registerBits
        let ua = truncate(x, n)
        let ub = truncate(y, n)
        let sa = type.isSigned ? signExtend(x, n) : Int64(bitPattern: ua)
        let sb = type.isSigned ? signExtend(y, n) : Int64(bitPattern: ub)
        let signed = type.isSigned
        switch op {
        case .eq, .equ: return ua == ub
        case .ne, .neu: return ua != ub
        case .lt, .ltu: return signed ? sa < sb : ua < ub
        case .le, .leu: return signed ? sa <= sb : ua <= ub
        case .gt, .gtu: return signed ? sa > sb : ua > ub
        case .ge, .geu: return signed ? sa >= sb : ua >= ub
        case .lo: return ua < ub
        case .ls: return ua <= ub
        case .hi: return ua > ub
        case .hs: return ua >= ub
        case .num: return true
        case .nan: return false
        }
    }

    // MARK: Conversion

    static func round(_ v: Double, _ rounding: Rounding, defaultRule: FloatingPointRoundingRule) -> Double {
        switch rounding {
        case .rni, .rn: return v.rounded(.toNearestOrEven)
        case .rzi, .rz: return v.rounded(.towardZero)
        case .rmi, .rm: return v.rounded(.down)
        case .rpi, .rp: return v.rounded(.up)
        case .none: return v.rounded(defaultRule)
        }
    }

    static func convert(_ x: UInt64, from: ScalarType, to: ScalarType, rounding: Rounding, saturate: Bool) -> UInt64 {
        let toBits = to.registerBits
        if !from.isFloat && !to.isFloat {
            let fromBits = from.registerBits
            if saturate {
                return from.isSigned ? clamp(signExtend(x, fromBits), to) : clamp(truncate(x, fromBits), to)
            }
            let value = from.isSigned ? UInt64(bitPattern: signExtend(x, fromBits)) : truncate(x, fromBits)
            if to.isSigned { return UInt64(bitPattern: signExtend(value, toBits)) & (toBits >= 64 ? ~0 : (1 << UInt64(toBits)) - 1) }
            return truncate(value, toBits)
        }
        if !from.isFloat {
            // Integer to float. Sources up to 53 bits are exact in a double, which is then rounded
            // once with the instruction's mode; 64-bit sources round to nearest.
            let fromBits = from.registerBits
            if fromBits == 64 {
                let negative = from.isSigned && Int64(bitPattern: x) < 0
                let magnitude = negative ? 0 &- x : x
                if to == .f64 {
                    // Nearest, then one step in a directed mode if that rounded the wrong way.
                    let d = Double(magnitude)
                    var error = 0
                    if d >= 0x1p64 {
                        error = -1
                    } else {
                        let back = UInt64(d)
                        error = magnitude > back ? 1 : magnitude < back ? -1 : 0
                    }
                    let signed = negative ? -d : d
                    return DirectedRounding.step(signed, error: negative ? -error : error, rounding).bitPattern
                }
                // Round to odd at 53 bits: the second rounding, to at most 24 bits, is then exact.
                var d = Double(magnitude)
                if magnitude >= 1 << 53 {
                    let shift = 64 - magnitude.leadingZeroBitCount - 53
                    var kept = magnitude >> UInt64(shift)
                    if magnitude & ((1 << UInt64(shift)) - 1) != 0 { kept |= 1 }
                    d = Double(kept) * Double(sign: .plus, exponent: shift, significand: 1)
                }
                return FloatFormat.encode(negative ? -d : d, to, rounding, sat: saturate)
            }
            let value: Double = from.isSigned ? Double(signExtend(x, fromBits)) : Double(truncate(x, fromBits))
            if to == .f64 { return value.bitPattern }
            return FloatFormat.encode(value, to, rounding, sat: saturate)
        }
        let value: Double = from == .f64 ? Double(bitPattern: x) : Double(FloatFormat.decode(x, from))
        if !to.isFloat {
            if value.isNaN { return 0 }
            return integer(round(value, rounding, defaultRule: .towardZero), to)
        }
        var v = value
        var mode = rounding
        switch rounding {
        case .rni, .rzi, .rmi, .rpi:
            v = round(v, rounding, defaultRule: .toNearestOrEven)
            mode = .rn
        default: break
        }
        if to == .f64 {
            if saturate { v = v.isNaN ? 0 : Swift.min(Swift.max(v, 0), 1) }
            return v.bitPattern
        }
        return FloatFormat.encode(v, to, mode, sat: saturate)
    }

    /// An integer saturated into an integer type (exact for every 64-bit value).
    static func clamp<S: BinaryInteger>(_ v: S, _ to: ScalarType) -> UInt64 {
        switch (to.isSigned, to.registerBits) {
        case (true, 8): UInt64(UInt8(bitPattern: Int8(clamping: v)))
        case (true, 16): UInt64(UInt16(bitPattern: Int16(clamping: v)))
        case (true, 32): UInt64(UInt32(bitPattern: Int32(clamping: v)))
        case (true, _): UInt64(bitPattern: Int64(clamping: v))
        case (false, 1): UInt64(v != 0 ? 1 : 0)
        case (false, 8): UInt64(UInt8(clamping: v))
        case (false, 16): UInt64(UInt16(clamping: v))
        case (false, 32): UInt64(UInt32(clamping: v))
        case (false, _): UInt64(clamping: v)
        }
    }

    /// A float value (already integral) saturated into an integer type.
    static func integer(_ v: Double, _ to: ScalarType) -> UInt64 {
        let n = to.registerBits
        if to.isSigned {
            let lo = -pow(2.0, Double(n - 1))
            let hi = pow(2.0, Double(n - 1))
            if v <= lo { return truncate(UInt64(bitPattern: Int64(lo)), n) }
            if v >= hi { return truncate(UInt64(bitPattern: n == 64 ? Int64.max : Int64(hi) - 1), n) }
            return truncate(UInt64(bitPattern: Int64(v)), n)
        }
        if v <= 0 { return 0 }
        if v >= pow(2.0, Double(n)) { return truncate(~0, n) }
        return UInt64(v)
    }
}
