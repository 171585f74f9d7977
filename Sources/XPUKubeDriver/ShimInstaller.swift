import Foundation
import XPUKube

/// Puts the shim where containers mount it from: `libcuda.so.1` and `libnvidia-ml.so.1` in a
/// directory of the node, copied from the plugin's image at start (each written to a temporary
/// name and renamed, so a container starting meanwhile mounts the old file or the new, never half
/// of one).
public enum ShimInstaller {
    public static let files = ["libcuda.so.1", "libnvidia-ml.so.1"]

    public static func install(from source: String, into directory: String) throws(KubeError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw KubeError(.io, "cannot create \(directory): \(error)")
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: source + "/" + file) else {
                throw KubeError(.io, "cannot read the shim \(source)/\(file)")
            }
            let target = directory + "/" + file
            if FileManager.default.contents(atPath: target) != data { try ClaimStore.write(data, to: target, mode: 0o755) }
        }
    }
}
