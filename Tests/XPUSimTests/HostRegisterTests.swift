import CXPUDriver
import Testing

/// cuMemHostRegister/cuMemHostUnregister: ranges are recorded, so the errors a real driver gives
/// for overlapping registration and for unregistering unknown memory come back; a range mapped
/// into the device (DEVICEMAP) gets a device pointer that kernels and copies use.
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

    @Test func aMappedRangeHasADevicePointerThatCopiesReach() {
        withContext { _ in
            let memory = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
            defer { memory.deallocate() }
            memory.storeBytes(of: 0xA5A5_0001, as: UInt32.self)
            check(cuMemHostRegister_v2(memory, 4096, 0x02))
            var device: CUdeviceptr = 0
            check(cuMemHostGetDevicePointer_v2(&device, memory, 0))
            #expect(device != 0)
            // A copy from the device side sees what the host wrote before it.
            var read: UInt32 = 0
            check(cuMemcpyDtoH_v2(&read, device, 4))
            #expect(read == 0xA5A5_0001)
            // A synchronous memset of the device side is seen by the host when it returns.
            check(cuMemsetD8_v2(device + 4, 0x7F, 4))
            #expect(memory.load(fromByteOffset: 4, as: UInt32.self) == 0x7F7F_7F7F)
            check(cuMemHostUnregister(memory))
            #expect(cuMemHostGetDevicePointer_v2(&device, memory, 0) == CUDA_ERROR_INVALID_VALUE)
        }
    }

    @Test func ioMemoryAndUnknownFlagsAreRefused() {
        withContext { _ in
            let memory = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
            defer { memory.deallocate() }
            #expect(cuMemHostRegister_v2(memory, 4096, 0x04) == CUDA_ERROR_NOT_SUPPORTED)
            #expect(cuMemHostRegister_v2(memory, 4096, 0x40) == CUDA_ERROR_INVALID_VALUE)
            #expect(cuMemHostRegister_v2(nil, 4096, 0) == CUDA_ERROR_INVALID_VALUE)
            #expect(cuMemHostUnregister(memory) == CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED)
        }
    }
}
