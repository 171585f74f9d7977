import CXPUDriver
import CXPURuntimeSupport
import Glibc
import Testing
import XPUSim

/// Which PTX the simulated device (compute capability 9.0) runs from a fatbinary: the newest
/// entry not above 9.0, else CUDA_ERROR_NO_BINARY_FOR_GPU. The fatbinaries are built here entry
/// by entry in the layout FatBinary reads (16-byte container header, 64-byte entry headers).
@Suite struct FatBinarySelectionTests {
    /// A PTX module with one empty kernel named `name`.
    static func ptx(kernel name: String) -> String {
        """
        .version 8.5
        .target sm_75
        .address_size 64
        .visible .entry \(name)()
        {
        \tret;
        }
        """
    }

    /// An uncompressed fatbinary container holding, in order, PTX entries for these architectures.
    static func fatbinary(_ entries: [(architecture: Int, kernel: String)], cubinFor cubinArchitecture: Int? = nil) -> [UInt8] {
        func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }
        func entry(kind: UInt16, architecture: Int, payload: [UInt8]) -> [UInt8] {
            var padded = payload
            while padded.count % 8 != 0 { padded.append(0) }
            var header: [UInt8] = []
            append(kind, to: &header)  // 0: kind (1 PTX, 2 cubin)
            append(UInt16(0x0101), to: &header)  // 2: version
            append(UInt32(64), to: &header)  // 4: header size
            append(UInt64(padded.count), to: &header)  // 8: padded payload size
            append(UInt32(payload.count), to: &header)  // 16: stored size
            append(UInt32(0), to: &header)  // 20
            append(UInt32(0), to: &header)  // 24
            append(UInt32(architecture), to: &header)  // 28: architecture
            append(UInt64(0), to: &header)  // 32
            append(UInt64(0x11), to: &header)  // 40: flags (64-bit, no compression)
            append(UInt64(0), to: &header)  // 48
            append(UInt64(0), to: &header)  // 56: uncompressed size
            return header + padded
        }
        var body: [UInt8] = []
        for (architecture, kernel) in entries {
            body += entry(kind: 1, architecture: architecture, payload: Array(ptx(kernel: kernel).utf8) + [0])
        }
        if let cubinArchitecture {
            body += entry(kind: 2, architecture: cubinArchitecture, payload: [0x7F, 0x45, 0x4C, 0x46, 2, 1, 1, 0])
        }
        var container: [UInt8] = []
        append(UInt32(0xBA55_ED50), to: &container)
        append(UInt16(1), to: &container)
        append(UInt16(16), to: &container)
        append(UInt64(body.count), to: &container)
        return container + body
    }

    /// Loads `image` and reports the load's result and which of `kernels` the module holds.
    static func load(_ image: [UInt8], kernels: [String]) -> (CUresult, [String]) {
        var result = CUDA_SUCCESS
        var found: [String] = []
        withContext { _ in
            var module: CUmodule?
            result = image.withUnsafeBytes { cuModuleLoadData(&module, $0.baseAddress) }
            guard result == CUDA_SUCCESS else { return }
            for kernel in kernels {
                var function: CUfunction?
                if cuModuleGetFunction(&function, module, kernel) == CUDA_SUCCESS { found.append(kernel) }
            }
            check(cuModuleUnload(module))
        }
        return (result, found)
    }

    @Test func theNewestPTXNotAboveTheDeviceRuns() {
        let image = Self.fatbinary([(75, "k75"), (100, "k100"), (86, "k86")], cubinFor: 90)
        let (result, found) = Self.load(image, kernels: ["k75", "k86", "k100"])
        #expect(result == CUDA_SUCCESS)
        #expect(found == ["k86"])
    }

    @Test func ptxForTheDevicesOwnArchitectureRuns() {
        let (result, found) = Self.load(Self.fatbinary([(90, "k90"), (75, "k75")]), kernels: ["k75", "k90"])
        #expect(result == CUDA_SUCCESS)
        #expect(found == ["k90"])
    }

    @Test func ptxOnlyForNewerArchitecturesIsNoBinaryForTheGPU() {
        let (result, _) = Self.load(Self.fatbinary([(100, "k100"), (120, "k120")]), kernels: [])
        #expect(result == CUDA_ERROR_NO_BINARY_FOR_GPU)
    }

    /// Containers back to back form one image: the choice is made among the entries of all of
    /// them, as for one container.
    @Test func severalContainersAreChosenFromAsOne() {
        let first = Self.fatbinary([(75, "k75")], cubinFor: 90)
        let image = first + Self.fatbinary([(86, "k86")]) + Self.fatbinary([(100, "k100")]) + [UInt8](repeating: 0, count: 16)
        let (result, found) = Self.load(image, kernels: ["k75", "k86", "k100"])
        #expect(result == CUDA_SUCCESS)
        #expect(found == ["k86"])
        #expect(first.count % 8 == 0)
        image.withUnsafeBytes { bytes in
            #expect(xpu_fatbinary_extent(bytes.baseAddress) == image.count - 16)
            xpu_fatbinary_single_begin()
            #expect(xpu_fatbinary_extent(bytes.baseAddress) == first.count)
            xpu_fatbinary_single_end()
        }
    }

    /// A wrapper (what host code registers with the runtime) names one translation unit's
    /// container; the containers after it in the section are other units' and are not loaded.
    @Test func aWrapperLoadsOnlyTheContainerItPointsAt() {
        let section = Self.fatbinary([(75, "unit1")]) + Self.fatbinary([(86, "unit2")]) + [UInt8](repeating: 0, count: 16)
        section.withUnsafeBytes { bytes in
            var wrapper: [UInt8] = []
            withUnsafeBytes(of: UInt32(0x4662_43B1).littleEndian) { wrapper.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt32(1).littleEndian) { wrapper.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt(bitPattern: bytes.baseAddress)) { wrapper.append(contentsOf: $0) }
            wrapper += [UInt8](repeating: 0, count: 8)
            let (result, found) = Self.load(wrapper, kernels: ["unit1", "unit2"])
            #expect(result == CUDA_SUCCESS)
            #expect(found == ["unit1"])
        }
    }

    /// An image that ends exactly where the mapping ends: the look for a following container must
    /// not read the unmapped page after it.
    @Test func anImageEndingAtAnUnmappedPageIsMeasuredWithoutReadingIt() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let mapping = try #require(mmap(nil, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        #expect(mapping != MAP_FAILED)
        defer { munmap(mapping, page) }
        #expect(munmap(mapping + page, page) == 0)
        let image = Self.fatbinary([(75, "k75")])
        let start = mapping + page - image.count
        image.withUnsafeBytes { start.copyMemory(from: $0.baseAddress!, byteCount: image.count) }
        #expect(xpu_fatbinary_extent(start) == image.count)
    }

    @Test func cubinsAloneAreNoBinaryForTheGPU() {
        let (result, _) = Self.load(Self.fatbinary([], cubinFor: 90), kernels: [])
        #expect(result == CUDA_ERROR_NO_BINARY_FOR_GPU)
    }
}
