import Foundation

/// The admission webhook's decision for one pod (the fallback for clusters without DRA): a pod
/// annotated `xpu-remote.io/slice: "mem=4GiB,compute=30%"` gets the same variables and shim as a
/// DRA claim would give it, as a JSON patch:
/// - an init container copies the shim from the xpu-remote image into an `emptyDir`
///   (no hostPath: the pod stays within the `restricted` Pod Security level), mounted read-only
///   at `/usr/local/xpu/lib` in every container;
/// - with `xpu-remote.io/token-secret: NAME`, the Secret's `token` key (and, when the webhook has
///   a CA ConfigMap, its `ca.crt`) are projected read-only into `/var/run/xpu-remote`, and
///   `XPU_TOKEN_FILE` names the file: the kubelet mounts it, the webhook never reads the Secret;
/// - the `XPU_*` variables and `LD_LIBRARY_PATH`; a variable the container already sets is kept
///   (the pod's own value wins).
/// Pods without the annotation, and pods already injected (reinvocation), get no patch. Pure.
public struct PodInjection: Sendable {
    public enum Annotation {
        public static let slice = "xpu-remote.io/slice"
        public static let tokenSecret = "xpu-remote.io/token-secret"
        /// `XPU_POOL_WAIT` for the pod (`30s`).
        public static let poolWait = "xpu-remote.io/pool-wait"
        /// Comma-separated container names to inject; absent: every container.
        public static let containers = "xpu-remote.io/containers"
    }

    static let shimVolume = "xpu-remote-shim"
    static let secretsVolume = "xpu-remote-secrets"
    static let shimSource = "/opt/xpu-remote/lib"

    /// The pool directory the pods' slices come from (`XPU_POOL`).
    public var poolAddress: String
    /// The image holding the shim at /opt/xpu-remote/lib (the xpu-remote image).
    public var shimImage: String
    /// A ConfigMap in the pod's namespace holding the servers' CA as `ca.crt`; nil for none.
    public var certificateAuthorityConfigMap: String?

    public init(poolAddress: String, shimImage: String, certificateAuthorityConfigMap: String? = nil) {
        self.poolAddress = poolAddress
        self.shimImage = shimImage
        self.certificateAuthorityConfigMap = certificateAuthorityConfigMap
    }

    /// The patch for `pod` (a Pod object as JSON); empty for a pod that asks for no slice or was
    /// injected already. Throws for a bad annotation: the pod is refused with the reason.
    public func patch(for pod: JSONValue) throws(KubeError) -> [JSONPatchOperation] {
        let annotations = pod["metadata"]?["annotations"]
        guard let sliceText = annotations?[Annotation.slice]?.string else { return [] }
        let volumes = pod["spec"]?["volumes"]?.array ?? []
        guard !volumes.contains(where: { $0["name"]?.string == Self.shimVolume }) else { return [] }
        let shape = try SliceShape(annotation: sliceText)
        let tokenSecret = annotations?[Annotation.tokenSecret]?.string
        if let tokenSecret, !Self.isDNSSubdomain(tokenSecret) {
            throw KubeError(.badSlice, "\(Annotation.tokenSecret)='\(tokenSecret)' is not a Secret name")
        }
        let poolWait = annotations?[Annotation.poolWait]?.string
        let wanted = annotations?[Annotation.containers]?.string.map { Set($0.split(separator: ",").map { $0.trimmingCharacters(" ") }) }

        let containers = pod["spec"]?["containers"]?.array ?? []
        let chosen = containers.indices.filter { index in wanted.map { $0.contains(containers[index]["name"]?.string ?? "") } ?? true }
        guard !chosen.isEmpty else { throw KubeError(.badSlice, "\(Annotation.containers) names no container of the pod") }

        let hasSecrets = tokenSecret != nil || certificateAuthorityConfigMap != nil
        let injection = SliceInjection(
            target: .pool(poolAddress), shape: shape, poolWait: poolWait, hasToken: tokenSecret != nil,
            hasCertificateAuthority: certificateAuthorityConfigMap != nil)

        var operations: [JSONPatchOperation] = []
        func append(_ element: JSONValue, to path: String, exists: Bool) {
            operations.append(exists ? .add(path + "/-", element) : .add(path, [element]))
        }
        var volumesExist = pod["spec"]?["volumes"] != nil
        append([ "name": .string(Self.shimVolume), "emptyDir": ["sizeLimit": "64Mi"] ], to: "/spec/volumes", exists: volumesExist)
        volumesExist = true
        if hasSecrets {
            var sources: [JSONValue] = []
            if let tokenSecret {
                sources.append(["secret": ["name": .string(tokenSecret), "items": [["key": "token", "path": "token"]]]])
            }
            if let certificateAuthorityConfigMap {
                sources.append(["configMap": ["name": .string(certificateAuthorityConfigMap), "items": [["key": "ca.crt", "path": "ca.crt"]]]])
            }
            append(["name": .string(Self.secretsVolume), "projected": ["defaultMode": 0o444, "sources": .array(sources)]], to: "/spec/volumes", exists: true)
        }
        let copy: JSONValue = [
            "name": "xpu-remote-shim",
            "image": .string(shimImage),
            "command": ["cp", "-a", .string(Self.shimSource + "/libcuda.so.1"), .string(Self.shimSource + "/libnvidia-ml.so.1"), "/xpu-shim/"],
            "volumeMounts": [["name": .string(Self.shimVolume), "mountPath": "/xpu-shim"]],
            "resources": ["requests": ["cpu": "10m", "memory": "16Mi"], "limits": ["memory": "64Mi"]],
            "securityContext": [
                "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "runAsNonRoot": true, "runAsUser": 65532,
                "capabilities": ["drop": ["ALL"]], "seccompProfile": ["type": "RuntimeDefault"],
            ],
        ]
        append(copy, to: "/spec/initContainers", exists: pod["spec"]?["initContainers"] != nil)

        for index in chosen {
            let container = containers[index]
            let path = "/spec/containers/\(index)"
            let existing = Set((container["env"]?.array ?? []).compactMap { $0["name"]?.string })
            var envExists = container["env"] != nil
            for variable in injection.variables where !existing.contains(variable.name) {
                append(["name": .string(variable.name), "value": .string(variable.value)], to: path + "/env", exists: envExists)
                envExists = true
            }
            var mountsExist = container["volumeMounts"] != nil
            append(["name": .string(Self.shimVolume), "mountPath": .string(SliceInjection.ContainerPath.library), "readOnly": true],
                to: path + "/volumeMounts", exists: mountsExist)
            mountsExist = true
            if hasSecrets {
                append(["name": .string(Self.secretsVolume), "mountPath": .string(SliceInjection.ContainerPath.secrets), "readOnly": true],
                    to: path + "/volumeMounts", exists: true)
            }
        }
        return operations
    }

    /// What the webhook answers for one review: allowed, with the patch when there is one;
    /// refused (400) with the reason for a bad annotation.
    public func review(_ review: AdmissionReview) -> AdmissionReview {
        guard let request = review.request else {
            return AdmissionReview(response: .init(uid: "", allowed: false, status: .init(code: 400, message: "AdmissionReview without a request")))
        }
        guard let pod = request.object else {
            return AdmissionReview(response: .init(uid: request.uid, allowed: true))
        }
        do {
            let operations = try patch(for: pod)
            guard !operations.isEmpty else { return AdmissionReview(response: .init(uid: request.uid, allowed: true)) }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let patch = (try? encoder.encode(operations)) ?? Data()
            return AdmissionReview(
                response: .init(uid: request.uid, allowed: true, patchType: "JSONPatch", patch: patch.base64EncodedString()))
        } catch {
            return AdmissionReview(
                response: .init(uid: request.uid, allowed: false, status: .init(code: 400, message: "xpu-remote: \(error.message)")))
        }
    }

    static func isDNSSubdomain(_ name: String) -> Bool {
        guard !name.isEmpty, name.count <= 253, let first = name.first, let last = name.last,
            first.isASCII && (first.isLowercase || first.isNumber), last.isASCII && (last.isLowercase || last.isNumber)
        else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == ".") }
    }
}
