/// Execution of the instructions at which the lanes of a warp meet. All lanes of `lanes` (a bit
/// per lane of the warp starting at `firstThread`) are stopped at the same instruction; the
/// collective reads every lane's sources before writing any destination, as the hardware does.
enum WarpCollective {
    static func execute(
        _ inst: Instruction, lanes: UInt32, firstThread: Int, threads: Int, registers: UnsafeMutablePointer<UInt64>,
        registerCount: Int
    ) {
        @inline(__always) func reg(_ lane: Int, _ r: Int32) -> UnsafeMutablePointer<UInt64> {
            registers + (firstThread + lane) * registerCount + Int(r)
        }
        let warpLanes = min(32, threads - firstThread)
        switch inst.opcode {
        case .shfl:
            // PTX ISA, shfl.sync: c packs the clamp value (bits 0-4) and the segment mask (bits 8-12).
            var values = [UInt64](repeating: 0, count: 32)
            var valid = [Bool](repeating: false, count: 32)
            let mode = ShuffleMode(rawValue: inst.mode)!
            for lane in 0..<warpLanes where lanes & (1 << UInt32(lane)) != 0 {
                let b = Int(reg(lane, inst.b).pointee & 0x1F)
                let c = reg(lane, inst.c).pointee
                let clamp = Int(c & 0x1F)
                let segmentMask = Int((c >> 8) & 0x1F)
                let maxLane = (lane & segmentMask) | (clamp & ~segmentMask)
                let minLane = lane & segmentMask
                var source: Int
                var inRange: Bool
                switch mode {
                case .up:
                    source = lane - b
                    inRange = source >= maxLane
                case .down:
                    source = lane + b
                    inRange = source <= maxLane
                case .bfly:
                    source = lane ^ b
                    inRange = source <= maxLane
                case .idx:
                    source = minLane | (b & ~segmentMask)
                    inRange = source <= maxLane
                }
                if !inRange || source < 0 || source >= warpLanes { source = lane }
                // A source lane outside the group gives what its register holds (undefined in PTX).
                values[lane] = reg(source, inst.a).pointee
                valid[lane] = inRange
            }
            for lane in 0..<warpLanes where lanes & (1 << UInt32(lane)) != 0 {
                reg(lane, inst.d).pointee = values[lane]
                if inst.d2 >= 0 { reg(lane, inst.d2).pointee = valid[lane] ? 1 : 0 }
            }
        case .vote:
            var ballot: UInt32 = 0
            for lane in 0..<warpLanes where lanes & (1 << UInt32(lane)) != 0 {
                let p = reg(lane, inst.a).pointee & 1 != 0
                if p != (inst.flags & 1 != 0) { ballot |= 1 << UInt32(lane) }
            }
            let result: UInt64
            switch VoteMode(rawValue: inst.mode)! {
            case .all: result = ballot == lanes ? 1 : 0
            case .any: result = ballot != 0 ? 1 : 0
            case .uni: result = ballot == 0 || ballot == lanes ? 1 : 0
            case .ballot: result = UInt64(ballot)
            }
            for lane in 0..<warpLanes where lanes & (1 << UInt32(lane)) != 0 { reg(lane, inst.d).pointee = result }
        case .activemask:
            for lane in 0..<warpLanes where lanes & (1 << UInt32(lane)) != 0 { reg(lane, inst.d).pointee = UInt64(lanes) }
        case .redux:
            let op = AtomicOp(rawValue: inst.mode)!
            let signed = inst.type == .s32
            var acc: UInt64?
            for lane in 0..<warpLanes where lanes & (1 << UInt32(lane)) != 0 {
                let v = reg(lane, inst.a).pointee & 0xFFFF_FFFF
                guard let a = acc else { acc = v; continue }
                switch op {
                case .add: acc = (a &+ v) & 0xFFFF_FFFF
                case .and: acc = a & v
                case .or: acc = a | v
                case .xor: acc = a ^ v
                case .min: acc = signed ? (Int32(truncatingIfNeeded: v) < Int32(truncatingIfNeeded: a) ? v : a) : Swift.min(a, v)
                default: acc = signed ? (Int32(truncatingIfNeeded: v) > Int32(truncatingIfNeeded: a) ? v : a) : Swift.max(a, v)
                }
            }
            for lane in 0..<warpLanes where lanes & (1 << UInt32(lane)) != 0 {
                reg(lane, inst.d).pointee = signed ? UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: acc ?? 0))) & 0xFFFF_FFFF : acc ?? 0
            }
        case .matchAny:
            let width = inst.type.bits
            var masks = [UInt64](repeating: 0, count: 32)
            for lane in 0..<warpLanes where lanes & (1 << UInt32(lane)) != 0 {
                let v = truncate(reg(lane, inst.a).pointee, width)
                var mask: UInt32 = 0
                for other in 0..<warpLanes where lanes & (1 << UInt32(other)) != 0 {
                    if truncate(reg(other, inst.a).pointee, width) == v { mask |= 1 << UInt32(other) }
                }
                masks[lane] = UInt64(mask)
            }
            for lane in 0..<warpLanes where lanes & (1 << UInt32(lane)) != 0 { reg(lane, inst.d).pointee = masks[lane] }
        default:
            // bar.warp.sync: meeting is all it does.
            break
        }
    }
}

extension BarrierReduction {
    /// Computes `bar.red` results when a barrier opens: every thread waiting at a `bar.red`
    /// receives the reduction of the predicates of all threads waiting at one.
    static func apply(
        code: UnsafePointer<Instruction>, pcs: UnsafeMutableBufferPointer<Int>,
        stops: UnsafeMutableBufferPointer<Machine.Stop?>, registers: UnsafeMutablePointer<UInt64>,
        registerCount: Int
    ) {
        var count: UInt64 = 0
        var all = true
        var any = false
        var reducing: [Int] = []
        for thread in 0..<pcs.count where stops[thread] == .barrier {
            let inst = code[pcs[thread] - 1]
            guard inst.mode != BarrierReduction.none.rawValue else { continue }
            reducing.append(thread)
            let p = (registers[thread * registerCount + Int(inst.a)] & 1 != 0) != (inst.flags & 1 != 0)
            if p { count += 1; any = true } else { all = false }
        }
        for thread in reducing {
            let inst = code[pcs[thread] - 1]
            let result: UInt64
            switch BarrierReduction(rawValue: inst.mode)! {
            case .popc: result = count
            case .and: result = all ? 1 : 0
            default: result = any ? 1 : 0
            }
            registers[thread * registerCount + Int(inst.d)] = result
        }
    }
}
