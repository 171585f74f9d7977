import Foundation
import Testing
import XPUKube

@Suite struct PodInjectionTests {
    let injection = PodInjection(poolAddress: "xpu-pool.xpu-remote.svc:7071", shimImage: "xpu-remote:test", certificateAuthorityConfigMap: "xpu-remote-ca")

    static func pod(_ annotations: String, containers: String = #"[{"name":"app","image":"cuda"}]"#, volumes: String? = nil) -> JSONValue {
        let volumePart = volumes.map { #","volumes":\#($0)"# } ?? ""
        let json = #"{"metadata":{"name":"p","annotations":\#(annotations)},"spec":{"containers":\#(containers)\#(volumePart)}}"#
        return try! JSONDecoder().decode(JSONValue.self, from: Data(json.utf8))
    }

    /// Applies add operations (RFC 6902 `add`, the only one the webhook emits) to a JSON value.
    static func apply(_ operations: [JSONPatchOperation], to document: JSONValue) -> JSONValue {
        func add(_ tokens: ArraySlice<String>, _ value: JSONValue, into node: JSONValue) -> JSONValue {
            let token = tokens.first!.replacing("~1", with: "/").replacing("~0", with: "~")
            let rest = tokens.dropFirst()
            switch node {
            case .object(var object):
                object[token] = rest.isEmpty ? value : add(rest, value, into: object[token]!)
                return .object(object)
            case .array(var array):
                if token == "-" {
                    array.append(value)
                } else {
                    let index = Int(token)!
                    if rest.isEmpty { array.insert(value, at: index) } else { array[index] = add(rest, value, into: array[index]) }
                }
                return .array(array)
            default:
                Issue.record("path through a scalar")
                return node
            }
        }
        return operations.reduce(document) { document, operation in
            #expect(operation.op == "add")
            return add(operation.path.split(separator: "/").map(String.init)[...], operation.value, into: document)
        }
    }

    @Test func annotatedPodGetsTheShimAndVariables() throws {
        let pod = Self.pod(
            #"{"xpu-remote.io/slice":"mem=4GiB,compute=30%,priority=high","xpu-remote.io/token-secret":"xpu-remote-token"}"#,
            containers: #"[{"name":"app","image":"cuda","env":[{"name":"XPU_LOG","value":"info"},{"name":"XPU_SLICE","value":"mine"}]},{"name":"side","image":"busybox"}]"#)
        let patched = Self.apply(try injection.patch(for: pod), to: pod)
        let spec = try #require(patched["spec"])
        let app = try #require(spec["containers"]?.array?[0])
        let env = Dictionary((app["env"]?.array ?? []).map { ($0["name"]!.string!, $0["value"]!.string!) }, uniquingKeysWith: { first, _ in first })
        #expect(env["XPU_POOL"] == "xpu-pool.xpu-remote.svc:7071")
        #expect(env["XPU_SLICE"] == "mine")  // the pod's own value wins
        #expect(env["XPU_TOKEN_FILE"] == "/var/run/xpu-remote/token")
        #expect(env["XPU_TLS_CA"] == "/var/run/xpu-remote/ca.crt")
        #expect(env["LD_LIBRARY_PATH"] == SliceInjection.ContainerPath.libraryPath)
        #expect(env["XPU_TOKEN"] == nil)
        let side = try #require(spec["containers"]?.array?[1])
        #expect(side["env"]?.array?.contains { $0["name"] == "XPU_SLICE" && $0["value"] == "mem=4GiB,compute=30%,priority=high" } == true)
        let mounts = (app["volumeMounts"]?.array ?? []).compactMap { $0["mountPath"]?.string }
        #expect(mounts == ["/usr/local/xpu/lib", "/var/run/xpu-remote"])
        let volumes = (spec["volumes"]?.array ?? []).compactMap { $0["name"]?.string }
        #expect(volumes == ["xpu-remote-shim", "xpu-remote-secrets"])
        let sources = spec["volumes"]?.array?[1]["projected"]?["sources"]?.array ?? []
        #expect(sources.first?["secret"]?["name"] == "xpu-remote-token")
        let initContainer = try #require(spec["initContainers"]?.array?.first)
        #expect(initContainer["image"] == "xpu-remote:test")
        // Reinvocation: an injected pod gets nothing more.
        #expect(try injection.patch(for: patched).isEmpty)
    }

    @Test func podsWithoutTheAnnotationAreLeftAlone() throws {
        #expect(try injection.patch(for: Self.pod(#"{"other":"x"}"#)).isEmpty)
    }

    @Test func onlyTheNamedContainersAreInjected() throws {
        let pod = Self.pod(
            #"{"xpu-remote.io/slice":"compute=20","xpu-remote.io/containers":"side"}"#,
            containers: #"[{"name":"app","image":"a"},{"name":"side","image":"b"}]"#, volumes: #"[{"name":"data","emptyDir":{}}]"#)
        let patched = Self.apply(try injection.patch(for: pod), to: pod)
        #expect(patched["spec"]?["containers"]?.array?[0]["env"] == nil)
        #expect(patched["spec"]?["containers"]?.array?[1]["env"] != nil)
        #expect(patched["spec"]?["volumes"]?.array?.compactMap { $0["name"]?.string } == ["data", "xpu-remote-shim", "xpu-remote-secrets"])
    }

    @Test func reviewsRefuseBadAnnotationsWithTheReason() throws {
        let review = AdmissionReview(request: .init(uid: "u-1", namespace: "team-a", operation: "CREATE", object: Self.pod(#"{"xpu-remote.io/slice":"mem=lots"}"#)))
        let answer = try #require(injection.review(review).response)
        #expect(answer.uid == "u-1")
        #expect(!answer.allowed)
        #expect(answer.status?.message.contains("mem='lots'") == true)
        let good = AdmissionReview(request: .init(uid: "u-2", object: Self.pod(#"{"xpu-remote.io/slice":"mem=1GiB"}"#)))
        let allowed = try #require(injection.review(good).response)
        #expect(allowed.allowed && allowed.patchType == "JSONPatch")
        let operations = try JSONDecoder().decode([JSONPatchOperation].self, from: Data(base64Encoded: allowed.patch ?? "")!)
        #expect(!operations.isEmpty)
    }
}
