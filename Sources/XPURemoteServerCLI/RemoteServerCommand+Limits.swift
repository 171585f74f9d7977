import ArgumentParser
import Foundation
import XPUAdmission
import XPUServer

extension RemoteServerCommand {
    /// The limits the flags set (`--max-tenants-per-device`, `--slice-*`), over the policy file's
    /// `limits` where both say something: the command line wins.
    func serverLimits(policy: AccessPolicy?) throws -> ServerLimits {
        func size(_ text: String?, _ flag: String) throws -> UInt64? {
            guard let text else { return nil }
            guard let bytes = ByteSize.parse(text) else { throw ValidationError("\(flag) must be a size like 512MiB or 8GiB, got '\(text)'") }
            return bytes
        }
        func list<T: RawRepresentable>(_ text: String?, _ flag: String) throws -> Set<T>? where T.RawValue == String {
            guard let text else { return nil }
            var values: Set<T> = []
            for item in text.split(separator: ",") {
                let name = item.trimmingCharacters(in: .whitespaces)
                guard let value = T(rawValue: name) else { throw ValidationError("\(flag): '\(name)' is not one of the allowed words") }
                values.insert(value)
            }
            return values
        }
        let flags = ServerLimits(
            maxTenantsPerDevice: maxTenantsPerDevice, minMemoryBytes: try size(sliceMinMemory, "--slice-min-memory"),
            maxMemoryBytes: try size(sliceMaxMemory, "--slice-max-memory"), minComputePercent: sliceMinCompute,
            maxComputePercent: sliceMaxCompute, computeStepPercent: sliceComputeStep,
            priorities: try list(slicePriorities, "--slice-priorities (low, normal, high)"),
            modes: try list(sliceModes, "--slice-modes (guaranteed, capped)"))
        let limits = (policy?.limits ?? ServerLimits()).overridden(by: flags)
        if let inconsistency = limits.inconsistency { throw ValidationError(inconsistency) }
        return limits
    }
}
