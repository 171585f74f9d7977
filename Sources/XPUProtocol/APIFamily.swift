/// The accelerator API a server serves and a client speaks: what the pool matches them by.
///
/// A server announces its family to the pool as the label `api=cuda` or `api=opencl` (from its
/// `--device`: `cuda` and `sim` serve CUDA, `opencl` OpenCL); a client's placement request
/// carries the family of the library that asks (`XPU_API`). The pool places a request only on
/// servers of its family.
public enum APIFamily: String, CaseIterable, Hashable, Sendable {
    case cuda
    case opencl

    /// The label's key in a server's pool labels.
    public static let labelKey = "api"

    /// The label a server of this family announces: `api=opencl`.
    public var label: String { "\(Self.labelKey)=\(rawValue)" }

    /// The family a server's labels announce, or nil when one names an unknown family. A server
    /// without an `api=` label serves CUDA (the family every server served before OpenCL).
    public init?(labels: [String]) {
        let prefix = Self.labelKey + "="
        guard let label = labels.last(where: { $0.hasPrefix(prefix) }) else {
            self = .cuda
            return
        }
        self.init(rawValue: String(label.dropFirst(prefix.count)))
    }

    /// The family a placement request names: empty (a client that names none) is CUDA.
    public init?(requested text: String) {
        guard !text.isEmpty else {
            self = .cuda
            return
        }
        self.init(rawValue: text.lowercased())
    }
}
