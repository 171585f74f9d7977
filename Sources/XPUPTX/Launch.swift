#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Grid or block dimensions.
public struct PTXDim3: Sendable, Hashable {
    public var x: Int
    public var y: Int
    public var z: Int
    public init(_ x: Int, _ y: Int = 1, _ z: Int = 1) {
        self.x = x
        self.y = y
        self.z = z
    }
    public var count: Int { x * y * z }
}

/// One kernel launch, ready to run block by block. `runBlock` may be called concurrently from
/// several threads for different blocks; the caller decides how blocks are spread over threads.
public final class PTXLaunch: @unchecked Sendable {
    public let kernel: PTXKernel
    public let grid: PTXDim3
    public let block: PTXDim3
    public let dynamicSharedBytes: Int
    public let memory: PTXMemoryMap
    /// Where the kernel's `printf` output goes (the context's FIFO); nil discards it.
    public let output: DeviceOutput?
    let parameters: [UInt8]
    let template: [UInt64]
    let smCount: Int

    /// - Parameters:
    ///   - parameters: the parameter buffer, laid out as `kernel.parameters` says (shorter buffers are zero-padded).
    ///   - variableAddresses: device address of each `PTXModule.variables` entry, by index.
    public init(
        kernel: PTXKernel, grid: PTXDim3, block: PTXDim3, dynamicSharedBytes: Int = 0, parameters: [UInt8],
        memory: PTXMemoryMap, variableAddresses: [UInt64] = [], smCount: Int = 1, output: DeviceOutput? = nil
    ) {
        self.kernel = kernel
        self.output = output
        self.grid = grid
        self.block = block
        self.dynamicSharedBytes = dynamicSharedBytes
        self.memory = memory
        var params = parameters
        if params.count < kernel.parameterBufferSize {
            params += Array(repeating: 0, count: kernel.parameterBufferSize - params.count)
        }
        self.parameters = params
        self.smCount = max(1, smCount)
        var template = kernel.initialRegisters
        for r in kernel.relocations {
            let base = r.variable < variableAddresses.count ? variableAddresses[r.variable] : 0
            template[Int(r.register)] = base &+ UInt64(bitPattern: r.offset)
        }
        let s = Compiler.Special.self
        template[Int(s.ntidX.rawValue)] = UInt64(block.x)
        template[Int(s.ntidY.rawValue)] = UInt64(block.y)
        template[Int(s.ntidZ.rawValue)] = UInt64(block.z)
        template[Int(s.nctaidX.rawValue)] = UInt64(grid.x)
        template[Int(s.nctaidY.rawValue)] = UInt64(grid.y)
        template[Int(s.nctaidZ.rawValue)] = UInt64(grid.z)
        template[Int(s.nwarpid.rawValue)] = UInt64((block.count + 31) / 32)
        template[Int(s.nsmid.rawValue)] = UInt64(self.smCount)
        template[Int(s.dynamicSmemSize.rawValue)] = UInt64(dynamicSharedBytes)
        template[Int(s.totalSmemSize.rawValue)] = UInt64(kernel.staticSharedSize + dynamicSharedBytes)
        self.template = template
    }

    public var blockCount: Int { grid.count }

    /// Runs every block in order on the calling thread; returns the first fault.
    public func run() -> PTXFault? {
        for b in 0..<blockCount {
            if let fault = runBlock(b) { return fault }
        }
        return nil
    }

    /// Runs one block (by linear index, x fastest) to completion.
    public func runBlock(_ index: Int) -> PTXFault? {
        var steps = 0
        return runBlock(index, steps: &steps)
    }

    /// Runs one block and adds the thread-instructions it executed to `steps`.
    ///
    /// Execution model: the lanes of a warp run one after another, each until it exits, waits at a
    /// block barrier, or reaches a warp collective (`shfl`, `vote`, `activemask`, `bar.warp.sync`,
    /// `redux`, `match`). The lanes waiting at the same collective then execute it together, so
    /// values move between lanes as on a GPU, and go on. This is the independent-thread scheduling
    /// of Volta and later: between collectives the order of lanes is unobservable to correct code.
    /// When every thread of the block waits at a barrier or has exited, the barrier opens.
    public func runBlock(_ index: Int, steps: inout Int) -> PTXFault? {
        let threads = block.count
        let registerCount = kernel.registerFileSize
        let sharedSize = ((kernel.staticSharedSize + 15) / 16 * 16) + dynamicSharedBytes
        let localSize = kernel.localSize
        let registers = UnsafeMutablePointer<UInt64>.allocate(capacity: threads * registerCount)
        defer { registers.deallocate() }
        let shared = UnsafeMutableRawPointer.allocate(byteCount: max(sharedSize, 16), alignment: 16)
        defer { shared.deallocate() }
        shared.initializeMemory(as: UInt8.self, repeating: 0, count: max(sharedSize, 16))
        let local = UnsafeMutableRawPointer.allocate(byteCount: max(localSize * threads, 16), alignment: 16)
        defer { local.deallocate() }
        local.initializeMemory(as: UInt8.self, repeating: 0, count: max(localSize * threads, 16))

        let bx = index % grid.x
        let by = (index / grid.x) % grid.y
        let bz = index / (grid.x * grid.y)
        let s = Compiler.Special.self
        template.withUnsafeBufferPointer { t in
            for thread in 0..<threads {
                let r = registers + thread * registerCount
                r.initialize(from: t.baseAddress!, count: registerCount)
                r[Int(s.tidX.rawValue)] = UInt64(thread % block.x)
                r[Int(s.tidY.rawValue)] = UInt64((thread / block.x) % block.y)
                r[Int(s.tidZ.rawValue)] = UInt64(thread / (block.x * block.y))
                r[Int(s.ctaidX.rawValue)] = UInt64(bx)
                r[Int(s.ctaidY.rawValue)] = UInt64(by)
                r[Int(s.ctaidZ.rawValue)] = UInt64(bz)
                r[Int(s.laneid.rawValue)] = UInt64(thread % 32)
                r[Int(s.warpid.rawValue)] = UInt64(thread / 32)
                r[Int(s.smid.rawValue)] = UInt64(index % smCount)
            }
        }

        return kernel.code.withUnsafeBufferPointer { code in
            kernel.vectorOperands.withUnsafeBufferPointer { vectors in
                parameters.withUnsafeBytes { params in
                    var machine = Machine(
                        code: code.baseAddress!, vectors: vectors.baseAddress, params: params.baseAddress,
                        paramSize: params.count, shared: shared, sharedSize: sharedSize, local: local,
                        localSize: localSize, memory: memory, output: output)
                    // Buffers, not arrays: an array of `Stop?` looks its type up in the runtime's
                    // generic metadata cache on every launch, which cost more than an empty block.
                    let pcs = UnsafeMutableBufferPointer<Int>.allocate(capacity: threads)
                    pcs.initialize(repeating: 0)
                    defer { pcs.deallocate() }
                    let stops = UnsafeMutableBufferPointer<Machine.Stop?>.allocate(capacity: threads)
                    stops.initialize(repeating: nil)
                    defer { stops.deallocate() }
                    let warps = (threads + 31) / 32
                    while true {
                        for warp in 0..<warps {
                            let first = warp * 32
                            let lanes = first..<min(first + 32, threads)
                            while true {
                                for thread in lanes where stops[thread] == nil {
                                    do throws(PTXFault) {
                                        machine.enterThread(
                                            local + thread * localSize, registers: registers + thread * registerCount,
                                            frameShiftRegister: kernel.frameShiftRegister)
                                        (pcs[thread], stops[thread]) = try machine.run(
                                            pc: pcs[thread], registers: registers + thread * registerCount, steps: &steps)
                                    } catch {
                                        var fault = error
                                        fault.kernel = kernel.name
                                        return fault
                                    }
                                }
                                // The lanes at the earliest collective execute it together.
                                var pc = Int.max
                                for thread in lanes where stops[thread] == .warp { pc = min(pc, pcs[thread]) }
                                if pc == Int.max { break }
                                var group: UInt32 = 0
                                for thread in lanes where stops[thread] == .warp && pcs[thread] == pc {
                                    group |= 1 << UInt32(thread - first)
                                }
                                WarpCollective.execute(
                                    code[pc], lanes: group, firstThread: first, threads: threads, registers: registers,
                                    registerCount: registerCount)
                                steps &+= group.nonzeroBitCount
                                for thread in lanes where group & (1 << UInt32(thread - first)) != 0 {
                                    pcs[thread] = pc + 1
                                    stops[thread] = nil
                                }
                            }
                        }
                        // Every thread waits at a barrier or has exited.
                        var waiting = false
                        for thread in 0..<threads where stops[thread] == .barrier { waiting = true; break }
                        if !waiting { return nil }
                        BarrierReduction.apply(
                            code: code.baseAddress!, pcs: pcs, stops: stops, registers: registers, registerCount: registerCount)
                        for thread in 0..<threads where stops[thread] == .barrier { stops[thread] = nil }
                    }
                }
            }
        }
    }
}
