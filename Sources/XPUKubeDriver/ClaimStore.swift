import Foundation
import XPUKube

/// The node's record of prepared claims, on disk so that a restarted plugin answers the kubelet
/// the same (prepare is idempotent across restarts): per claim UID, a directory
/// `<state>/claims/<uid>/` with `prepared.json` (what the kubelet was told), the tenant's `token`
/// and the servers' `ca.crt` (the files the CDI spec mounts), and the CDI spec
/// `<cdi>/xpu-remote.io-<uid>.json`. The state directory belongs on tmpfs (`/run`): tokens never
/// reach the node's disk, and a rebooted node has no pods whose claims it would need.
/// Every file is written to a temporary name and renamed, so a crash leaves the old or the new.
public struct ClaimStore: Sendable {
    public var stateDirectory: String
    public var cdiDirectory: String

    public init(stateDirectory: String, cdiDirectory: String) {
        self.stateDirectory = stateDirectory
        self.cdiDirectory = cdiDirectory
    }

    /// What the kubelet was told for one claim.
    public struct Prepared: Hashable, Sendable, Codable {
        public struct Device: Hashable, Sendable, Codable {
            public var requestNames: [String]
            public var poolName: String
            public var deviceName: String
            public var cdiDeviceIDs: [String]
            public var shareID: String?
        }
        public var devices: [Device]
    }

    func claimDirectory(_ uid: String) -> String { "\(stateDirectory)/claims/\(uid)" }
    public func tokenPath(_ uid: String) -> String { claimDirectory(uid) + "/token" }
    public func certificateAuthorityPath(_ uid: String) -> String { claimDirectory(uid) + "/ca.crt" }
    public func specPath(_ uid: String) -> String { "\(cdiDirectory)/xpu-remote.io-\(uid).json" }

    public func load(_ uid: String) -> Prepared? {
        guard let data = FileManager.default.contents(atPath: claimDirectory(uid) + "/prepared.json") else { return nil }
        return try? JSONDecoder().decode(Prepared.self, from: data)
    }

    /// Writes the claim's files; `prepared.json` last, so its presence means the rest is there.
    public func save(
        _ uid: String, prepared: Prepared, spec: CDISpec, token: Data?, certificateAuthority: Data?
    ) throws(KubeError) {
        guard CDISpec.isValidDeviceName(uid), !uid.contains("/"), !uid.hasPrefix(".") else { throw KubeError(.badClaim, "claim uid '\(uid)' is not usable as a name") }
        let directory = claimDirectory(uid)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try FileManager.default.createDirectory(atPath: cdiDirectory, withIntermediateDirectories: true)
        } catch {
            throw KubeError(.io, "cannot create \(directory): \(error)")
        }
        // Readable by the container's user, whoever it is; the directory keeps other host users out.
        if let token { try Self.write(token, to: tokenPath(uid), mode: 0o444) }
        if let certificateAuthority { try Self.write(certificateAuthority, to: certificateAuthorityPath(uid), mode: 0o444) }
        try Self.write(spec.json, to: specPath(uid), mode: 0o644)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        try Self.write((try? encoder.encode(prepared)) ?? Data(), to: directory + "/prepared.json", mode: 0o600)
    }

    /// Removes everything of the claim; a claim never prepared (or removed already) is fine.
    public func remove(_ uid: String) throws(KubeError) {
        guard CDISpec.isValidDeviceName(uid), !uid.contains("/") else { return }
        for path in [specPath(uid), claimDirectory(uid)] where FileManager.default.fileExists(atPath: path) {
            do {
                try FileManager.default.removeItem(atPath: path)
            } catch {
                throw KubeError(.io, "cannot remove \(path): \(error)")
            }
        }
    }

    static func write(_ data: Data, to path: String, mode: Int) throws(KubeError) {
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: mode]) else {
            throw KubeError(.io, "cannot write \(temporary)")
        }
        guard rename(temporary, path) == 0 else { throw KubeError(.io, "cannot rename \(temporary) to \(path): errno \(errno)") }
    }
}
