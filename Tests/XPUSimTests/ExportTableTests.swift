import CXPUDriver
import CXPURuntimeSupport
import Glibc
import Testing
import XPUSim

/// The export tables of cuGetExportTable (Sources/CXPURuntimeSupport, proto/EXPORT-TABLES.md), one
/// test per table, answered by the simulated device's copy of the shared component (the shim links
/// the same code). Part of the simulated device's serialized suite: the tables retain and reset
/// device 0's primary context, whose reference count its tests check.
extension SimulatedDeviceTests {
    static func uuid(_ bytes: [UInt8]) -> CUuuid {
        var id = CUuuid()
        withUnsafeMutableBytes(of: &id.bytes) { $0.copyBytes(from: bytes) }
        return id
    }

    static let cudartInterface = uuid([0x6b, 0xd5, 0xfb, 0x6c, 0x5b, 0xf4, 0xe7, 0x4a, 0x89, 0x87, 0xd9, 0x39, 0x12, 0xfd, 0x9d, 0xf9])
    static let toolsTLS = uuid([0x42, 0xd8, 0x5a, 0x81, 0x23, 0xf6, 0xcb, 0x47, 0x82, 0x98, 0xf6, 0xe7, 0x8a, 0x3a, 0xec, 0xdc])
    static let callbackHooks = uuid([0xa0, 0x94, 0x79, 0x8c, 0x2e, 0x74, 0x2e, 0x74, 0x93, 0xf2, 0x08, 0x00, 0x20, 0x0c, 0x0a, 0x66])
    static let contextLocalStorage = uuid([0xc6, 0x93, 0x33, 0x6e, 0x11, 0x21, 0xdf, 0x11, 0xa8, 0xc3, 0x68, 0xf3, 0x55, 0xd8, 0x95, 0x93])
    static let ctxCreateBypass = uuid([0x0c, 0xa5, 0x0b, 0x8c, 0x10, 0x04, 0x92, 0x9a, 0x89, 0xa7, 0xd0, 0xdf, 0x10, 0xe7, 0x72, 0x86])
    static let heapAccess = uuid([0x19, 0x5b, 0xcb, 0xf4, 0xd6, 0x7d, 0x02, 0x4a, 0xac, 0xc5, 0x1d, 0x29, 0xce, 0xa6, 0x31, 0xae])
    static let deviceExtended = uuid([0xb1, 0x05, 0x41, 0xe1, 0xf7, 0xc7, 0xc7, 0x4a, 0x9f, 0x64, 0xf2, 0x23, 0xbe, 0x99, 0xf1, 0xe2])
    static let integrityCheck = uuid([0xd4, 0x08, 0x20, 0x55, 0xbd, 0xe6, 0x70, 0x4b, 0x8d, 0x34, 0xba, 0x12, 0x3c, 0x66, 0xe1, 0xf2])
    static let contextChecks = uuid([0x26, 0x3e, 0x88, 0x60, 0x7c, 0xd2, 0x61, 0x43, 0x92, 0xf6, 0xbb, 0xd5, 0x00, 0x6d, 0xfa, 0x7e])
    static let toolsContext = uuid([0x21, 0x31, 0x8c, 0x60, 0x97, 0x14, 0x32, 0x48, 0x8c, 0xa6, 0x41, 0xff, 0x73, 0x24, 0xc8, 0xf2])
    static let skipInit = uuid([0xf8, 0xcf, 0xf9, 0x51, 0x21, 0x46, 0x8b, 0x4e, 0xb9, 0xe2, 0xfb, 0x46, 0x9e, 0x7c, 0x0d, 0xd9])

    /// The table's entries (slot 0 is the size word, except in context-local storage).
    static func table(_ id: CUuuid) throws -> UnsafePointer<UnsafeRawPointer?> {
        var id = id
        var table: UnsafeRawPointer?
        #expect(cuGetExportTable(&table, &id) == CUDA_SUCCESS)
        return try #require(table).assumingMemoryBound(to: UnsafeRawPointer?.self)
    }

    static func slot<F>(_ id: CUuuid, _ index: Int, as type: F.Type) throws -> F {
        unsafeBitCast(try #require(try table(id)[index]), to: type)
    }

    @Test(arguments: [
        ("TOOLS_CONTEXT", toolsContext, 95), ("CUDART_INTERFACE", cudartInterface, 13), ("TOOLS_TLS", toolsTLS, 4), ("TOOLS_RUNTIME_CALLBACK_HOOKS", callbackHooks, 7),
        ("CTX_CREATE_BYPASS", ctxCreateBypass, 2), ("HEAP_ACCESS", heapAccess, 3), ("DEVICE_EXTENDED_RT", deviceExtended, 26),
        ("INTEGRITY_CHECK", integrityCheck, 3), ("CONTEXT_CHECKS", contextChecks, 17),
    ])
    func sizeWordAndEverySlotCallable(name: String, id: CUuuid, entries: Int) throws {
        let table = try Self.table(id)
        #expect(Int(bitPattern: table[0]) == entries * 8, "\(name)")
        #expect(xpu_runtime_export_table_entries([id]) == entries)
        for index in 1..<entries { #expect(table[index] != nil, "\(name)[\(index)]") }
        // The address never changes: the runtime keeps it.
        #expect(try Self.table(id) == table)
    }

    @Test func unknownAndSkipInitTablesAreRefusedWithoutADriver() {
        // Neither needs cuInit (the tables are the library's own); the skip-init probe must read
        // "not found", or the runtime would skip its own start-up.
        var table: UnsafeRawPointer? = UnsafeRawPointer(bitPattern: 1)
        var skip = Self.skipInit
        #expect(cuGetExportTable(&table, &skip) == CUDA_ERROR_NOT_FOUND)
        #expect(table == nil)
        var unknown = Self.uuid(Array(repeating: 0xAB, count: 16))
        #expect(cuGetExportTable(&table, &unknown) == CUDA_ERROR_INVALID_VALUE)
        #expect(cuGetExportTable(&table, &unknown) == CUDA_ERROR_INVALID_VALUE)
        #expect(cuGetExportTable(nil, &unknown) == CUDA_ERROR_INVALID_VALUE)
        #expect(xpu_runtime_export_table_entries([unknown]) == 0)
    }

    typealias ModuleFromWrapper = @convention(c) (UnsafeMutablePointer<CUmodule?>?, UnsafeRawPointer?) -> CUresult
    typealias ModuleFromWrapperExt = @convention(c) (UnsafeMutablePointer<CUmodule?>?, UnsafeRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UInt32) -> CUresult
    typealias ModuleFromFatbinary = @convention(c) (UnsafeRawPointer?, UnsafeMutablePointer<CUmodule?>?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UInt32) -> CUresult
    typealias PrimaryContext = @convention(c) (UnsafeMutablePointer<CUcontext?>?, CUdevice) -> CUresult

    @Test func cudartInterfaceLoadsFatbinariesAndGivesThePrimaryContext() throws {
        try withContext { _ in
            try FatbinaryFixture.withWrapper(ptx: vectorAdd) { wrapper, fatbinary in
                var modules: [CUmodule?] = [nil, nil, nil]
                check(try Self.slot(Self.cudartInterface, 1, as: ModuleFromWrapper.self)(&modules[0], wrapper))
                check(try Self.slot(Self.cudartInterface, 6, as: ModuleFromWrapperExt.self)(&modules[1], wrapper, nil, nil, 0))
                check(try Self.slot(Self.cudartInterface, 8, as: ModuleFromFatbinary.self)(fatbinary, &modules[2], nil, nil, 0))
                for module in modules {
                    var function: CUfunction?
                    check(cuModuleGetFunction(&function, module, "vecAdd"))
                    check(cuModuleUnload(module))
                }
                // Not a wrapper: refused, nothing loaded.
                var module: CUmodule?
                #expect(try Self.slot(Self.cudartInterface, 1, as: ModuleFromWrapper.self)(&module, fatbinary) == CUDA_ERROR_INVALID_IMAGE)
            }
        }
        var primary: CUcontext?
        check(try Self.slot(Self.cudartInterface, 2, as: PrimaryContext.self)(&primary, 0))
        var again: CUcontext?
        check(try Self.slot(Self.cudartInterface, 2, as: PrimaryContext.self)(&again, 0))
        var retained: CUcontext?
        check(cuDevicePrimaryCtxRetain(&retained, 0))
        #expect(primary != nil && primary == again && primary == retained)
        check(cuDevicePrimaryCtxRelease_v2(0))
        #expect(try Self.slot(Self.cudartInterface, 2, as: PrimaryContext.self)(&again, 999) == CUDA_ERROR_INVALID_DEVICE)
        // A reset destroys it (whatever its count); the next request retains a new one.
        check(cuDevicePrimaryCtxReset_v2(0))
        var fresh: CUcontext?
        check(try Self.slot(Self.cudartInterface, 2, as: PrimaryContext.self)(&fresh, 0))
        var flags: UInt32 = 0
        var active: Int32 = 0
        check(cuDevicePrimaryCtxGetState(0, &flags, &active))
        #expect(fresh != nil && active == 1)
        check(cuDevicePrimaryCtxReset_v2(0))
        // The slots whose use is not public answer NOT_SUPPORTED instead of crashing.
        typealias Opaque = @convention(c) () -> CUresult
        #expect(try Self.slot(Self.cudartInterface, 3, as: Opaque.self)() == CUDA_ERROR_NOT_SUPPORTED)
        #expect(try Self.slot(Self.cudartInterface, 12, as: Opaque.self)() == CUDA_SUCCESS)
    }

    @Test func toolsTablesAreNoOpsWithBuffers() throws {
        typealias NoOp = @convention(c) () -> CUresult
        for index in 1...3 { #expect(try Self.slot(Self.toolsTLS, index, as: NoOp.self)() == CUDA_SUCCESS) }
        typealias Buffer = @convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafeMutablePointer<Int>?) -> Void
        var large: UnsafeMutableRawPointer?, small: UnsafeMutableRawPointer?
        var largeSize = 0, smallSize = 0
        try Self.slot(Self.callbackHooks, 2, as: Buffer.self)(&large, &largeSize)
        try Self.slot(Self.callbackHooks, 6, as: Buffer.self)(&small, &smallSize)
        #expect(large != nil && small != nil && large != small)
        #expect(largeSize == 1024 && smallSize == 14)
        // The buffers are writable for as many 32-bit words as reported.
        large?.storeBytes(of: 7, toByteOffset: (largeSize - 1) * 4, as: UInt32.self)
        for index in [1, 3, 4, 5] { #expect(try Self.slot(Self.callbackHooks, index, as: NoOp.self)() == CUDA_SUCCESS) }
    }

    typealias Destructor = @convention(c) (CUcontext?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void
    typealias Put = @convention(c) (CUcontext?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, Destructor?) -> CUresult
    typealias Delete = @convention(c) (CUcontext?, UnsafeMutableRawPointer?) -> CUresult
    typealias Get = @convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>?, CUcontext?, UnsafeMutableRawPointer?) -> CUresult

    /// Destructor calls seen, as (key, value) pairs.
    nonisolated(unsafe) static var destroyed: [(UInt, UInt)] = []

    @Test func contextLocalStorageRunsDestructorsAtTeardown() throws {
        let table = try Self.table(Self.contextLocalStorage)
        #expect(table[3] == nil)
        let put = try Self.slot(Self.contextLocalStorage, 0, as: Put.self)
        let delete = try Self.slot(Self.contextLocalStorage, 1, as: Delete.self)
        let get = try Self.slot(Self.contextLocalStorage, 2, as: Get.self)
        let destructor: Destructor = { _, key, value in
            SimulatedDeviceTests.destroyed.append((UInt(bitPattern: key), UInt(bitPattern: value)))
        }
        let key1 = UnsafeMutableRawPointer(bitPattern: 0x1000), key2 = UnsafeMutableRawPointer(bitPattern: 0x2000)
        Self.destroyed = []
        withContext { ctx in
            // NULL means the current context.
            check(put(nil, key1, UnsafeMutableRawPointer(bitPattern: 0xA), destructor))
            check(put(ctx, key2, UnsafeMutableRawPointer(bitPattern: 0xB), destructor))
            check(put(ctx, key1, UnsafeMutableRawPointer(bitPattern: 0xC), destructor))  // replaces
            var value: UnsafeMutableRawPointer?
            check(get(&value, ctx, key1))
            #expect(value == UnsafeMutableRawPointer(bitPattern: 0xC))
            // An explicit delete forgets without running the destructor.
            check(delete(nil, key2))
            #expect(get(&value, ctx, key2) == CUDA_ERROR_NOT_FOUND)
            #expect(value == nil)
            #expect(Self.destroyed.isEmpty)
        }
        // cuCtxDestroy ran the one destructor left, once.
        #expect(Self.destroyed.count == 1 && Self.destroyed.first?.0 == 0x1000 && Self.destroyed.first?.1 == 0xC)

        // A primary context's reset runs them too.
        Self.destroyed = []
        var primary: CUcontext?
        check(cuDevicePrimaryCtxRetain(&primary, 0))
        check(put(primary, key2, UnsafeMutableRawPointer(bitPattern: 0xD), destructor))
        check(cuDevicePrimaryCtxReset_v2(0))
        #expect(Self.destroyed.count == 1 && Self.destroyed.first?.1 == 0xD)
        // With no context current, NULL names nothing.
        var value: UnsafeMutableRawPointer?
        #expect(get(&value, nil, key1) == CUDA_ERROR_INVALID_CONTEXT)
    }

    @Test func ctxCreateBypassCreatesAContext() throws {
        _ = simulator
        typealias Create = @convention(c) (UnsafeMutablePointer<CUcontext?>?, UInt32, CUdevice) -> CUresult
        var ctx: CUcontext?
        check(try Self.slot(Self.ctxCreateBypass, 1, as: Create.self)(&ctx, 0, 0))
        #expect(ctx != nil)
        var device: CUdevice = -1
        check(cuCtxGetDevice(&device))
        #expect(device == 0)
        check(cuCtxDestroy_v2(ctx))
    }

    @Test func heapAccessAndDeviceExtendedTables() throws {
        typealias Opaque = @convention(c) () -> CUresult
        #expect(try Self.slot(Self.heapAccess, 1, as: Opaque.self)() == CUDA_ERROR_NOT_SUPPORTED)
        #expect(try Self.slot(Self.heapAccess, 2, as: Opaque.self)() == CUDA_ERROR_NOT_SUPPORTED)
        typealias Flag = @convention(c) (UnsafeMutablePointer<UInt8>?, CUdevice) -> CUresult
        var flag: UInt8 = 0xFF
        check(try Self.slot(Self.deviceExtended, 13, as: Flag.self)(&flag, 0))
        #expect(flag == 0)
        #expect(try Self.slot(Self.deviceExtended, 5, as: Opaque.self)() == CUDA_ERROR_NOT_SUPPORTED)
    }

    @Test func contextChecksReportUnwrappedContexts() throws {
        typealias Check = @convention(c) (CUcontext?, UnsafeMutablePointer<UInt32>?, UnsafeMutablePointer<UnsafeRawPointer?>?) -> CUresult
        var wrapped: UInt32 = 9
        var unwrapped = UnsafeRawPointer(bitPattern: 0x55)
        check(try Self.slot(Self.contextChecks, 2, as: Check.self)(nil, &wrapped, &unwrapped))
        #expect(wrapped == 0 && unwrapped == UnsafeRawPointer(bitPattern: 0x55))
        typealias Flags = @convention(c) () -> UInt32
        #expect(try Self.slot(Self.contextChecks, 3, as: Flags.self)() == 0)
    }

    typealias Integrity = @convention(c) (UInt32, UInt64, UnsafeMutablePointer<UInt64>?) -> CUresult

    @Test func md2MatchesRFC1319() {
        func hex(_ text: String) -> String {
            var digest = [UInt8](repeating: 0, count: 16)
            xpu_md2(text, strlen(text), &digest)
            return digest.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        }
        #expect(hex("") == "8350e5a3e24c153df2275c9f80692773")
        #expect(hex("abc") == "da853b0d3f88d99b30283a69e6ded6bb")
        #expect(hex("message digest") == "ab4f496bfb2a530b219ff33031fe06b0")
        #expect(hex(String(repeating: "1234567890", count: 8)) == "d5976f79d83d3a0dc9806c3c66f3efd8")
    }

    @Test func integrityCheckHashesProcessTablesAndDevices() throws {
        _ = simulator
        let check = try Self.slot(Self.integrityCheck, 1, as: Integrity.self)
        var out: [UInt64] = [0, 0]
        // Versions ending in 0 and 1 have fixed answers.
        #expect(check(13050, 1, &out) == CUDA_SUCCESS)
        #expect(out == [0x3341_181C_03CB_675C, 0x8ED3_83AA_1F4C_D1E8])
        #expect(check(13051, 1, &out) == CUDA_SUCCESS)
        #expect(out == [0x1841_181C_03CB_675C, 0x8ED3_83AA_1F4C_D1E8])
        // Otherwise HMAC-MD2 over the process record and one record per device, built here from
        // the driver's own answers.
        let seconds: UInt64 = 1_765_000_000
        #expect(check(13052, seconds, &out) == CUDA_SUCCESS)
        var message: [UInt8] = []
        func append<T>(_ value: T) { withUnsafeBytes(of: value) { message += $0 } }
        var driverVersion: Int32 = 0, count: Int32 = 0
        #expect(cuDriverGetVersion(&driverVersion) == CUDA_SUCCESS)
        #expect(cuDeviceGetCount(&count) == CUDA_SUCCESS)
        append(UInt32(driverVersion))
        append(UInt32(13052))
        append(UInt32(getpid()))
        append(UInt32(truncatingIfNeeded: pthread_self()))
        append(try Self.table(Self.cudartInterface))
        append(try Self.table(Self.integrityCheck))
        append(try #require(try Self.table(Self.integrityCheck)[1]))
        append(seconds)
        #expect(message.count == 48)
        for ordinal in 0..<count {
            var uuid = CUuuid()
            #expect(cuDeviceGetUuid_v2(&uuid, ordinal) == CUDA_SUCCESS)
            append(uuid)
            for attribute in [CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID] {
                var value: Int32 = 0
                #expect(cuDeviceGetAttribute(&value, attribute, ordinal) == CUDA_SUCCESS)
                append(value)
            }
        }
        #expect(message.count == 48 + 28 * Int(count))
        let key: [UInt8] = [0x14, 0x6A, 0xDD, 0xAE, 0x53, 0xA9, 0xA7, 0x52, 0xAA, 0x08, 0x41, 0x36, 0x0B, 0xF5, 0x5A, 0x9F]
        var expected = [UInt64](repeating: 0, count: 2)
        expected.withUnsafeMutableBytes { digest in
            xpu_hmac_md2(key, message, message.count, digest.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        #expect(out == expected)
        // The time is part of the hash.
        var later: [UInt64] = [0, 0]
        #expect(check(13052, seconds + 1, &later) == CUDA_SUCCESS)
        #expect(later != out)
    }
}

/// Libraries and kernels emulated on modules (Sources/CXPURuntimeSupport/library.c).
@Suite struct LibraryTests {
    @Test func libraryFromAWrapperLaunchesThroughItsKernelHandle() throws {
        try withContext { _ in
            try FatbinaryFixture.withWrapper(ptx: vectorAdd) { wrapper, _ in
                var library: CUlibrary?
                check(cuLibraryLoadData(&library, wrapper, nil, nil, 0, nil, nil, 0))
                var kernel: CUkernel?
                check(cuLibraryGetKernel(&kernel, library, "vecAdd"))
                #expect(cuLibraryGetKernel(&kernel, library, "missing") == CUDA_ERROR_NOT_FOUND)
                check(cuLibraryGetKernel(&kernel, library, "vecAdd"))
                var function: CUfunction?
                check(cuKernelGetFunction(&function, kernel))
                var module: CUmodule?
                check(cuLibraryGetModule(&module, library))
                var viaModule: CUfunction?
                check(cuModuleGetFunction(&viaModule, module, "vecAdd"))
                #expect(function == viaModule)
                var threads: Int32 = 0
                check(cuKernelGetAttribute(&threads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, kernel, 0))
                #expect(threads > 0)

                // The kernel handle launches where a function handle is expected.
                let n: Int32 = 300
                var a = (0..<Int(n)).map { Float($0) }, b = (0..<Int(n)).map { Float(2 * $0) }
                var c = [Float](repeating: 0, count: Int(n))
                var da: CUdeviceptr = 0, db: CUdeviceptr = 0, dc: CUdeviceptr = 0
                check(cuMemAlloc_v2(&da, Int(n) * 4))
                check(cuMemAlloc_v2(&db, Int(n) * 4))
                check(cuMemAlloc_v2(&dc, Int(n) * 4))
                check(cuMemcpyHtoD_v2(da, &a, Int(n) * 4))
                check(cuMemcpyHtoD_v2(db, &b, Int(n) * 4))
                var count = n
                var parameters: [UnsafeMutableRawPointer?] = [
                    withUnsafeMutableBytes(of: &da) { $0.baseAddress }, withUnsafeMutableBytes(of: &db) { $0.baseAddress },
                    withUnsafeMutableBytes(of: &dc) { $0.baseAddress }, withUnsafeMutableBytes(of: &count) { $0.baseAddress },
                ]
                check(cuLaunchKernel(kernel, 3, 1, 1, 128, 1, 1, 0, nil, &parameters, nil))
                check(cuMemcpyDtoH_v2(&c, dc, Int(n) * 4))
                #expect(c == (0..<Int(n)).map { Float(3 * $0) })
                for pointer in [da, db, dc] { check(cuMemFree_v2(pointer)) }

                check(cuLibraryUnload(library))
                #expect(cuLibraryUnload(library) == CUDA_ERROR_INVALID_HANDLE)
                #expect(cuLibraryGetModule(&module, library) == CUDA_ERROR_INVALID_HANDLE)
            }
        }
    }

    @Test func libraryGlobalsWithEitherOutputOmitted() throws {
        let ptx = """
            .version 8.5
            .target sm_75
            .address_size 64
            .visible .global .align 4 .u32 counter[3];
            .visible .entry touch() { ret; }
            """
        withContext { _ in
            var library: CUlibrary?
            check(ptx.withCString { cuLibraryLoadData(&library, $0, nil, nil, 0, nil, nil, 0) })
            var address: CUdeviceptr = 0
            var bytes = 0
            check(cuLibraryGetGlobal(&address, &bytes, library, "counter"))
            #expect(address != 0 && bytes == 12)
            var again: CUdeviceptr = 0
            check(cuLibraryGetGlobal(&again, nil, library, "counter"))
            #expect(again == address)
            bytes = 0
            check(cuLibraryGetGlobal(nil, &bytes, library, "counter"))
            #expect(bytes == 12)
            #expect(cuLibraryGetGlobal(&again, nil, library, "missing") == CUDA_ERROR_NOT_FOUND)
            check(cuLibraryUnload(library))
        }
    }

    @Test func libraryFromFileAndFatBinaryModule() throws {
        try withContext { _ in
            let path = "/tmp/xpu-library-\(getpid()).ptx"
            #expect(FileManagerless.write(vectorAdd, to: path))
            defer { unlink(path) }
            var library: CUlibrary?
            check(cuLibraryLoadFromFile(&library, path, nil, nil, 0, nil, nil, 0))
            var kernel: CUkernel?
            check(cuLibraryGetKernel(&kernel, library, "spin"))
            check(cuLibraryUnload(library))
            #expect(cuLibraryLoadFromFile(&library, "/nonexistent/xpu.ptx", nil, nil, 0, nil, nil, 0) == CUDA_ERROR_FILE_NOT_FOUND)
            try FatbinaryFixture.withWrapper(ptx: vectorAdd) { wrapper, fatbinary in
                for image in [wrapper, fatbinary] {
                    var module: CUmodule?
                    check(cuModuleLoadFatBinary(&module, image))
                    check(cuModuleUnload(module))
                }
            }
        }
    }
}

/// Writes a file with plain system calls (no Foundation in this target).
enum FileManagerless {
    static func write(_ text: String, to path: String) -> Bool {
        let file = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard file >= 0 else { return false }
        defer { close(file) }
        return text.utf8CString.withUnsafeBytes { Glibc.write(file, $0.baseAddress, $0.count - 1) == $0.count - 1 }
    }
}

/// A fatbinary with one uncompressed PTX entry (compute_75), and the wrapper host code registers.
enum FatbinaryFixture {
    static func fatbinary(ptx: String) -> [UInt8] {
        func bytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
        var payload = Array(ptx.utf8) + [0]
        while payload.count % 8 != 0 { payload.append(0) }
        var entry = [UInt8](repeating: 0, count: 64)
        func put(_ value: [UInt8], at offset: Int) { entry.replaceSubrange(offset..<(offset + value.count), with: value) }
        put(bytes(UInt16(1)), at: 0)  // PTX
        put(bytes(UInt32(64)), at: 4)  // header size
        put(bytes(UInt64(payload.count)), at: 8)
        put(bytes(UInt32(75)), at: 28)
        return [0x50, 0xED, 0x55, 0xBA, 1, 0, 16, 0] + bytes(UInt64(64 + payload.count)) + entry + payload
    }

    static func withWrapper(ptx: String, _ body: (UnsafeRawPointer, UnsafeRawPointer) throws -> Void) throws {
        let image = fatbinary(ptx: ptx)
        try image.withUnsafeBytes { fatbinary in
            var wrapper: [UInt64] = [UInt64(0x4662_43B1) | 1 << 32, UInt64(UInt(bitPattern: fatbinary.baseAddress)), 0]
            try wrapper.withUnsafeMutableBytes { try body(UnsafeRawPointer($0.baseAddress!), fatbinary.baseAddress!) }
        }
    }
}
