import CXPUDriver
import Testing

/// cuMemHostRegister/cuMemHostUnregister: ranges are recorded, so the errors a real driver gives
/// for overlapping registration and for unregistering unknown memory come back; mapping host
/// memory into the device is refused.
@Suite(.serialized) struct HostRegisterTests {
    @Test func aRangeIsRegisteredOnceAndUnregisteredOnce() {
        withContext { _ in
            let memory = UnsafeMutableRawPointer.allocate(byteCount: 8192, alignment: 4096)
            defer { memory.deallocate() }
            check(cuMemHostRegister_v2(memory, 8192, 0x01))
            #expect(cuMemHostRegister_v2(memory + 4096, 16, 0) == CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED)
            #expect(cuMemHostUnregister(memory + 4096) == CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED)
            check(cuMemHostUnregister(memory))
            #expect(cuMemHostUnregister(memory) == CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED)
            check(cuMemHostRegister(memory, 4096, 0))
            check(cuMemHostUnregister(memory))
        }
    }

    @Test func mappedAndUnknownFlagsAreRefused() {
        withContext { _ in
            let memory = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
            defer { memory.deallocate() }
            #expect(cuMemHostRegister_v2(memory, 4096, 0x02) == CUDA_ERROR_NOT_SUPPORTED)
            #expect(cuMemHostRegister_v2(memory, 4096, 0x40) == CUDA_ERROR_INVALID_VALUE)
            #expect(cuMemHostRegister_v2(nil, 4096, 0) == CUDA_ERROR_INVALID_VALUE)
            #expect(cuMemHostUnregister(memory) == CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED)
        }
    }
}
