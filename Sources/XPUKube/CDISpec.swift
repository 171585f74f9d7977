import Foundation

/// A Container Device Interface spec (cdi.k8s.io, github.com/cncf-tags/container-device-interface
/// SPEC.md): the container edits a runtime (containerd, CRI-O) applies for each CDI device a
/// kubelet names. We write only environment variables and bind mounts. `cdiVersion` is the lowest
/// version whose fields the spec uses (`minimumVersion`): runtimes refuse a spec whose version is
/// lower than its fields need, and older runtimes refuse versions they do not know.
public struct CDISpec: Hashable, Sendable, Codable {
    public var cdiVersion: String
    /// `vendor/class`: `xpu-remote.io/slice`.
    public var kind: String
    public var devices: [Device]

    public struct Device: Hashable, Sendable, Codable {
        public var name: String
        public var containerEdits: ContainerEdits
    }

    public struct ContainerEdits: Hashable, Sendable, Codable {
        /// `NAME=value`.
        public var env: [String]?
        public var mounts: [Mount]?
    }

    public struct Mount: Hashable, Sendable, Codable {
        public var hostPath: String
        public var containerPath: String
        public var options: [String]?
    }

    public static let kind = "xpu-remote.io/slice"

    /// One device named `name` carrying the injection's variables and mounts.
    public init(deviceName: String, injection: SliceInjection, mounts: [SliceInjection.Mount]) {
        let edits = ContainerEdits(
            env: injection.variables.map { "\($0.name)=\($0.value)" },
            mounts: mounts.map { Mount(hostPath: $0.hostPath, containerPath: $0.containerPath, options: ["ro", "nosuid", "nodev", "bind"]) })
        kind = Self.kind
        devices = [Device(name: deviceName, containerEdits: edits)]
        cdiVersion = "0.3.0"
        cdiVersion = minimumVersion
    }

    /// The lowest spec version for the fields used (SPEC.md, "Released versions"): 0.5.0 allows
    /// device names that start with a digit (claim UIDs often do); mount `type` (0.4.0),
    /// annotations and dotted class names (0.6.0) and later fields are never written.
    public var minimumVersion: String {
        devices.contains { $0.name.first?.isNumber == true } ? "0.5.0" : "0.3.0"
    }

    /// The fully qualified name a kubelet returns for a device: `xpu-remote.io/slice=NAME`.
    public static func qualifiedName(_ device: String) -> String { "\(kind)=\(device)" }

    /// CDI device names: a letter or digit first and last, then letters, digits, `_ - . :`.
    public static func isValidDeviceName(_ name: String) -> Bool {
        guard let first = name.first, let last = name.last, first.isASCII, last.isASCII,
            first.isLetter || first.isNumber, last.isLetter || last.isNumber
        else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.:".contains($0)) }
    }

    /// The spec as the runtime reads it: JSON, keys sorted so that a rewrite of the same claim
    /// writes the same bytes.
    public var json: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding these plain value types cannot fail.
        return (try? encoder.encode(self)) ?? Data()
    }
}
