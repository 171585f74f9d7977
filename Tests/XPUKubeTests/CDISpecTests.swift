import Foundation
import Testing
import XPUKube

/// The CDI spec's rules as SPEC.md (spec 1.1.0, github.com/cncf-tags/container-device-interface)
/// states them, checked on the JSON we write, independently of our encoder: the fields the JSON
/// schema requires with their types, no key the spec does not define (runtimes refuse unknown
/// fields), names as the parser accepts them, `NAME=value` environment entries (the public
/// schema leaves them unchecked), absolute mount paths, and a `cdiVersion` no lower than the
/// fields need and no higher than needed.
enum CDIRules {
    static func violations(_ data: Data) -> [String] {
        guard let spec = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return ["not a JSON object"] }
        var problems: [String] = []
        let allowedTop: Set = ["cdiVersion", "kind", "devices", "containerEdits", "annotations"]
        problems += Set(spec.keys).subtracting(allowedTop).map { "unknown field \($0)" }
        guard let version = spec["cdiVersion"] as? String else { return problems + ["cdiVersion missing"] }
        guard let kind = spec["kind"] as? String else { return problems + ["kind missing"] }
        let kindParts = kind.split(separator: "/", omittingEmptySubsequences: false)
        if kindParts.count != 2 || !kindParts.allSatisfy({ isVendorOrClass(String($0)) }) { problems.append("kind \(kind) is not vendor/class") }
        if kindParts.count == 2, kindParts[1].contains("."), compare(version, "0.6.0") < 0 { problems.append("dotted class needs 0.6.0") }
        guard let devices = spec["devices"] as? [[String: Any]], !devices.isEmpty else { return problems + ["devices missing or empty"] }
        var needed = "0.3.0"
        for device in devices {
            problems += Set(device.keys).subtracting(["name", "containerEdits", "annotations"]).map { "unknown device field \($0)" }
            guard let name = device["name"] as? String, CDISpec.isValidDeviceName(name) else {
                problems.append("device name missing or invalid")
                continue
            }
            if name.first?.isNumber == true { needed = max(needed, "0.5.0") }
            guard let edits = device["containerEdits"] as? [String: Any] else {
                problems.append("device \(name) has no containerEdits")
                continue
            }
            let allowedEdits: Set = ["env", "deviceNodes", "hooks", "mounts", "intelRdt", "additionalGids", "netDevices"]
            problems += Set(edits.keys).subtracting(allowedEdits).map { "unknown containerEdits field \($0)" }
            for entry in edits["env"] as? [Any] ?? [] {
                guard let text = entry as? String, let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                    problems.append("env entry \(entry) is not NAME=value")
                    continue
                }
            }
            for case let mount as [String: Any] in edits["mounts"] as? [Any] ?? [] {
                problems += Set(mount.keys).subtracting(["hostPath", "containerPath", "options", "type"]).map { "unknown mount field \($0)" }
                for key in ["hostPath", "containerPath"] where !((mount[key] as? String)?.hasPrefix("/") ?? false) {
                    problems.append("mount \(key) missing or not absolute")
                }
                if mount["type"] != nil { needed = max(needed, "0.4.0") }
            }
        }
        if compare(version, needed) < 0 { problems.append("cdiVersion \(version) is lower than the fields need (\(needed))") }
        if compare(version, needed) > 0 { problems.append("cdiVersion \(version) is higher than needed (\(needed)): older runtimes refuse it") }
        return problems
    }

    static func isVendorOrClass(_ text: String) -> Bool {
        guard let first = text.first, let last = text.last, first.isLetter || first.isNumber, last.isLetter || last.isNumber else { return false }
        return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) }
    }

    static func compare(_ a: String, _ b: String) -> Int {
        let x = a.split(separator: ".").compactMap { Int($0) }, y = b.split(separator: ".").compactMap { Int($0) }
        for (p, q) in zip(x, y) where p != q { return p < q ? -1 : 1 }
        return 0
    }
}

@Suite struct CDISpecTests {
    let uid = "0f3a2b1c-7d4e-4f60-9a8b-112233445566"

    func spec(target: SliceInjection.Target, token: Bool) -> CDISpec {
        let injection = SliceInjection(
            target: target, shape: SliceShape(memoryBytes: 4 << 30, computePercent: 30, priority: .high), hasToken: token)
        var mounts = SliceInjection.shimMounts(shimDirectory: "/var/lib/xpu-remote/lib")
        if token { mounts.append(.init(hostPath: "/run/xpu-remote/claims/\(uid)/token", containerPath: SliceInjection.ContainerPath.token)) }
        return CDISpec(deviceName: uid, injection: injection, mounts: mounts)
    }

    @Test func poolSliceSpecFollowsTheRules() throws {
        let spec = spec(target: .pool("xpu-pool.xpu-remote.svc:7071"), token: true)
        #expect(CDIRules.violations(spec.json) == [])
        #expect(spec.cdiVersion == "0.5.0")  // the claim UID starts with a digit
        let env = try #require(spec.devices.first?.containerEdits.env)
        #expect(env.contains("XPU_POOL=xpu-pool.xpu-remote.svc:7071"))
        #expect(env.contains("XPU_SLICE=mem=4GiB,compute=30%,priority=high"))
        #expect(env.contains("XPU_TOKEN_FILE=/var/run/xpu-remote/token"))
        #expect(env.contains("LD_LIBRARY_PATH=/usr/local/xpu/lib:/usr/local/nvidia/lib:/usr/local/nvidia/lib64"))
        #expect(!env.contains { $0.hasPrefix("XPU_TOKEN=") })
        let mounts = try #require(spec.devices.first?.containerEdits.mounts).map(\.containerPath)
        #expect(mounts == ["/usr/local/xpu/lib/libcuda.so.1", "/usr/local/xpu/lib/libnvidia-ml.so.1", "/var/run/xpu-remote/token"])
        #expect(CDISpec.qualifiedName(uid) == "xpu-remote.io/slice=\(uid)")
    }

    @Test func pinnedSliceNamesTheServerAndDevice() throws {
        let spec = spec(target: .server("tls://10.0.0.5:7070", device: 1), token: false)
        #expect(CDIRules.violations(spec.json) == [])
        let env = try #require(spec.devices.first?.containerEdits.env)
        #expect(env.contains("XPU_SERVER=tls://10.0.0.5:7070"))
        #expect(env.contains("XPU_SLICE=mem=4GiB,compute=30%,priority=high,device=1"))
        #expect(!env.contains { $0.hasPrefix("XPU_TOKEN_FILE=") })
    }

    @Test func aLetterFirstNameNeedsOnlyTheFirstVersion() {
        let injection = SliceInjection(target: .pool("p:1"), shape: SliceShape(computePercent: 10))
        let spec = CDISpec(deviceName: "abc-1", injection: injection, mounts: [])
        #expect(spec.cdiVersion == "0.3.0")
        #expect(CDIRules.violations(spec.json) == [])
    }

    @Test func theRulesCatchWhatRuntimesRefuse() {
        let bad: [String] = [
            #"{"cdiVersion":"0.3.0","kind":"xpu-remote.io/slice","devices":[{"name":"1abc","containerEdits":{}}]}"#,
            #"{"cdiVersion":"0.5.0","kind":"xpu-remote.io/slice","devices":[{"name":"a","containerEdits":{"env":["NOEQUALS"]}}]}"#,
            #"{"cdiVersion":"0.5.0","kind":"slice","devices":[{"name":"a","containerEdits":{}}]}"#,
            #"{"cdiVersion":"0.3.0","kind":"a.io/b","devices":[{"name":"a","containerEdits":{"mounts":[{"hostPath":"x","containerPath":"/y"}]}}]}"#,
            #"{"cdiVersion":"0.3.0","kind":"a.io/b","devices":[{"name":"a","containerEdits":{"envs":[]}}]}"#,
        ]
        for text in bad { #expect(!CDIRules.violations(Data(text.utf8)).isEmpty, "\(text)") }
    }
}
