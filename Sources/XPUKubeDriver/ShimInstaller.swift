import Foundation
import XPUKube

/// Puts the shim where containers mount it from: `<directory>/libcuda.so.1` on the node, copied
/// from the plugin's image at start (written to a temporary name and renamed, so a container
/// starting meanwhile mounts the old file or the new, never half of one).
public enum ShimInstaller {
    /// Returns the installed shim's path.
    public static func install(from source: String, into directory: String) throws(KubeError) -> String {
        let target = directory + "/libcuda.so.1"
        guard let data = FileManager.default.contents(atPath: source) else { throw KubeError(.io, "cannot read the shim \(source)") }
        if FileManager.default.contents(atPath: target) == data { return target }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw KubeError(.io, "cannot create \(directory): \(error)")
        }
        try ClaimStore.write(data, to: target, mode: 0o755)
        return target
    }
}
