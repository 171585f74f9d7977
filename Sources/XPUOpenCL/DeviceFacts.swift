import CXPUOpenCL

/// What the library changes in the server's device answers so that a device offers only what
/// the library serves. Its extensions are those of the server's device that are all kernel
/// language (built-in functions, types, pragmas) and so work through any ICD; an extension that
/// adds host calls or objects this library does not serve (images, SPIR and IL programs, command
/// buffers, sub-groups' kernel queries, vendor calls) is left out of CL_DEVICE_EXTENSIONS and
/// CL_DEVICE_EXTENSIONS_WITH_VERSION, so a program that checks the list does not reach for them.
/// Shared virtual memory is not served: CL_DEVICE_SVM_CAPABILITIES is 0.
enum DeviceFacts {
    static let kernelLanguage: Set<String> = [
        "cl_khr_byte_addressable_store",
        "cl_khr_fp16", "cl_khr_fp64",
        "cl_khr_global_int32_base_atomics", "cl_khr_global_int32_extended_atomics",
        "cl_khr_local_int32_base_atomics", "cl_khr_local_int32_extended_atomics",
        "cl_khr_int64_base_atomics", "cl_khr_int64_extended_atomics",
        "cl_khr_extended_bit_ops", "cl_khr_expect_assume", "cl_khr_kernel_clock",
        "cl_khr_subgroup_extended_types", "cl_khr_subgroup_non_uniform_vote", "cl_khr_subgroup_ballot",
        "cl_khr_subgroup_non_uniform_arithmetic", "cl_khr_subgroup_shuffle", "cl_khr_subgroup_shuffle_relative",
        "cl_khr_subgroup_clustered_reduce", "cl_khr_subgroup_rotate",
        "cl_khr_work_group_uniform_arithmetic",
        "cl_ext_cxx_for_opencl",
    ]

    /// Rewrites a device's answers as above; the extensions keep the device's order.
    static func serve(_ facts: inout [cl_uint: [UInt8]]) {
        if facts[cl_uint(CL_DEVICE_SVM_CAPABILITIES)] != nil {
            facts[cl_uint(CL_DEVICE_SVM_CAPABILITIES)] = Info.bytes(of: UInt64(0))
        }
        let listKey = cl_uint(CL_DEVICE_EXTENSIONS)
        if let list = facts[listKey] {
            let names = String(decoding: list.prefix { $0 != 0 }, as: UTF8.self).split(separator: " ")
            facts[listKey] = Info.string(names.filter { kernelLanguage.contains(String($0)) }.joined(separator: " "))
        }
        // CL_DEVICE_EXTENSIONS_WITH_VERSION: cl_name_version entries, a cl_version and a
        // NUL-padded 64-byte name each.
        let versionedKey = cl_uint(CL_DEVICE_EXTENSIONS_WITH_VERSION)
        let entryBytes = MemoryLayout<cl_uint>.size + 64
        if let entries = facts[versionedKey], entries.count % entryBytes == 0 {
            var kept: [UInt8] = []
            for start in stride(from: 0, to: entries.count, by: entryBytes) {
                let name = entries[(start + MemoryLayout<cl_uint>.size)..<(start + entryBytes)].prefix { $0 != 0 }
                if kernelLanguage.contains(String(decoding: name, as: UTF8.self)) { kept += entries[start..<(start + entryBytes)] }
            }
            facts[versionedKey] = kept
        }
    }
}
