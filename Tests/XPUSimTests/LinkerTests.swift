import CXPUDriver
import Glibc
import Testing

/// The driver's linker (cuLink*) as numba-cuda and cuda.core drive it when nvJitLink is absent:
/// PTX inputs joined into one loadable module, logs written to the caller's buffers, inputs that
/// need a device linker refused with a reason.
@Suite(.serialized) struct LinkerTests {
    /// A kernel that stores `twice(7)` to its argument, calling a function it only declares.
    static let caller = """
        .version 8.5
        .target sm_80
        .address_size 64
        .extern .func  (.param .b32 func_retval0) twice
        (
        \t.param .b32 twice_param_0
        )
        ;
        .visible .entry store_twice(
        \t.param .u64 store_twice_param_0
        )
        {
        \t.reg .b32 %r<3>;
        \t.reg .b64 %rd<3>;
        \tld.param.u64 %rd1, [store_twice_param_0];
        \tcvta.to.global.u64 %rd2, %rd1;
        \tmov.u32 %r1, 7;
        \t{
        \t.param .b32 param0;
        \tst.param.b32 [param0+0], %r1;
        \t.param .b32 retval0;
        \tcall.uni (retval0), twice, (param0);
        \tld.param.b32 %r2, [retval0+0];
        \t}
        \tst.global.u32 [%rd2], %r2;
        \tret;
        }
        """

    /// The definition of `twice`, in a module of its own with a newer PTX version.
    static let callee = """
        .version 8.7
        .target sm_80
        .address_size 64
        .visible .func  (.param .b32 func_retval0) twice(
        \t.param .b32 twice_param_0
        )
        {
        \t.reg .b32 %r<3>;
        \tld.param.u32 %r1, [twice_param_0];
        \tadd.s32 %r2, %r1, %r1;
        \tst.param.b32 [func_retval0+0], %r2;
        \tret;
        }
        """

    /// Log buffers and the option arrays that point at them, alive for one link.
    final class Options {
        let info = UnsafeMutablePointer<CChar>.allocate(capacity: 1024)
        let error = UnsafeMutablePointer<CChar>.allocate(capacity: 1024)
        var keys: [CUjit_option] = [
            CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES, CU_JIT_ERROR_LOG_BUFFER,
            CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, CU_JIT_LOG_VERBOSE,
        ]
        var values: [UnsafeMutableRawPointer?]

        init() {
            info.initialize(repeating: 0x55, count: 1024)
            error.initialize(repeating: 0x55, count: 1024)
            values = [
                UnsafeMutableRawPointer(info), UnsafeMutableRawPointer(bitPattern: 1024), UnsafeMutableRawPointer(error),
                UnsafeMutableRawPointer(bitPattern: 1024), UnsafeMutableRawPointer(bitPattern: 1),
            ]
        }

        deinit {
            info.deallocate()
            error.deallocate()
        }

        var infoLog: String { String(cString: info) }
        var errorLog: String { String(cString: error) }
        /// What the linker reported as written to the error log (NUL included).
        var errorBytes: Int { Int(bitPattern: values[3]) }
    }

    static func add(_ state: CUlinkState?, _ ptx: String, name: String) -> CUresult {
        var bytes = Array(ptx.utf8) + [0]
        return bytes.withUnsafeMutableBytes {
            cuLinkAddData_v2(state, CU_JIT_INPUT_PTX, $0.baseAddress, $0.count, name, 0, nil, nil)
        }
    }

    @Test func ptxInputsJoinIntoOneModuleThatRuns() throws {
        try withContext { _ in
            let options = Options()
            var state: CUlinkState?
            check(cuLinkCreate_v2(UInt32(options.keys.count), &options.keys, &options.values, &state))
            check(Self.add(state, Self.caller, name: "caller.ptx"))
            check(Self.add(state, Self.callee, name: "callee.ptx"))
            var image: UnsafeMutableRawPointer?
            var size = 0
            check(cuLinkComplete(state, &image, &size))
            let linked = try #require(image.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) })
            #expect(size == linked.utf8.count + 1)
            #expect(linked.components(separatedBy: ".version").count == 2, "one header")
            #expect(linked.hasPrefix(".version 8.7\n.target sm_80\n.address_size 64\n"))
            #expect(options.infoLog.contains("caller.ptx"))
            #expect(options.errorLog.isEmpty)

            var module: CUmodule?
            check(cuModuleLoadData(&module, image))
            check(cuLinkDestroy(state))  // the module does not need the linker's image
            var function: CUfunction?
            check(cuModuleGetFunction(&function, module, "store_twice"))
            var output: CUdeviceptr = 0
            check(cuMemAlloc_v2(&output, 4))
            var parameter = output
            withUnsafeMutablePointer(to: &parameter) { pointer in
                var parameters: [UnsafeMutableRawPointer?] = [UnsafeMutableRawPointer(pointer)]
                check(cuLaunchKernel(function, 1, 1, 1, 1, 1, 1, 0, nil, &parameters, nil))
                check(cuCtxSynchronize())
                var value: Int32 = 0
                check(cuMemcpyDtoH_v2(&value, output, 4))
                #expect(value == 14)
            }
            check(cuMemFree_v2(output))
            check(cuModuleUnload(module))
        }
    }

    @Test func oneCubinPassesThroughAndObjectsAreRefusedWithAReason() {
        withContext { _ in
            let options = Options()
            var state: CUlinkState?
            check(cuLinkCreate_v2(UInt32(options.keys.count), &options.keys, &options.values, &state))
            var object: [UInt8] = [0x7F, 0x45, 0x4C, 0x46, 2, 1, 1, 0]
            let refused = object.withUnsafeMutableBytes {
                cuLinkAddData_v2(state, CU_JIT_INPUT_OBJECT, $0.baseAddress, $0.count, "kernel.o", 0, nil, nil)
            }
            #expect(refused == CUDA_ERROR_NOT_SUPPORTED)
            #expect(options.errorLog.contains("kernel.o"))
            #expect(options.errorBytes == options.errorLog.utf8.count + 1)

            let added = object.withUnsafeMutableBytes {
                cuLinkAddData_v2(state, CU_JIT_INPUT_CUBIN, $0.baseAddress, $0.count, "kernel.cubin", 0, nil, nil)
            }
            check(added)
            var image: UnsafeMutableRawPointer?
            var size = 0
            check(cuLinkComplete(state, &image, &size))
            #expect(size == object.count)
            #expect(image.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } == object)
            check(cuLinkDestroy(state))
            #expect(cuLinkDestroy(state) == CUDA_ERROR_INVALID_HANDLE)
        }
    }

    @Test func ptxMixedWithACubinIsRefused() {
        withContext { _ in
            let options = Options()
            var state: CUlinkState?
            check(cuLinkCreate(UInt32(options.keys.count), &options.keys, &options.values, &state))
            check(Self.add(state, Self.caller, name: "caller.ptx"))
            var cubin: [UInt8] = [0x7F, 0x45, 0x4C, 0x46, 2, 1, 1, 0]
            check(cubin.withUnsafeMutableBytes { cuLinkAddData(state, CU_JIT_INPUT_CUBIN, $0.baseAddress, $0.count, "k.cubin", 0, nil, nil) })
            var image: UnsafeMutableRawPointer?
            var size = 0
            #expect(cuLinkComplete(state, &image, &size) == CUDA_ERROR_NOT_SUPPORTED)
            #expect(options.errorLog.contains("not PTX"))
            check(cuLinkDestroy(state))
        }
    }

    @Test func filesAreReadAndAMissingFileIsNamedInTheLog() throws {
        try withContext { _ in
            let path = "/tmp/xpu-linker-test-\(getpid()).ptx"
            let file = try #require(fopen(path, "w"))
            fputs(Self.callee, file)
            fclose(file)
            defer { unlink(path) }
            let options = Options()
            var state: CUlinkState?
            check(cuLinkCreate_v2(UInt32(options.keys.count), &options.keys, &options.values, &state))
            check(cuLinkAddFile_v2(state, CU_JIT_INPUT_PTX, path, 0, nil, nil))
            #expect(cuLinkAddFile_v2(state, CU_JIT_INPUT_PTX, path + ".missing", 0, nil, nil) == CUDA_ERROR_FILE_NOT_FOUND)
            #expect(options.errorLog.contains(".missing"))
            var image: UnsafeMutableRawPointer?
            var size = 0
            check(cuLinkComplete(state, &image, &size))
            let linked = image.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) } ?? ""
            #expect(linked.contains(".visible .func  (.param .b32 func_retval0) twice("))
            check(cuLinkDestroy(state))
        }
    }

    @Test func aLinkNeedsACurrentContext() {
        _ = simulator
        var state: CUlinkState?
        var current: CUcontext?
        check(cuCtxGetCurrent(&current))
        if current == nil {
            #expect(cuLinkCreate_v2(0, nil, nil, &state) == CUDA_ERROR_INVALID_CONTEXT)
        }
        #expect(cuLinkCreate_v2(0, nil, nil, nil) == CUDA_ERROR_INVALID_VALUE)
    }
}
