import Crypto
import XPUAdmission

/// A presented token is checked against the policy's `tokenSHA256` digests (SHA-256 from
/// swift-crypto).
extension AccessPolicy {
    /// The tenant whose token digest equals SHA-256(`token`). Every tenant is compared, each in
    /// constant time, so the time taken tells nothing about which digest came close.
    func tenant(presenting token: String) -> Tenant? {
        let digest = tokenDigest(token)
        var found: Tenant?
        for tenant in tenants {
            if let stored = tenant.tokenDigest, digest == stored, found == nil { found = tenant }
        }
        return found
    }
}

/// SHA-256 of a token as presented (its UTF-8 bytes): what a policy file stores for it.
/// Comparing the result with `==` against bytes takes time that depends only on their lengths.
func tokenDigest(_ token: String) -> SHA256.Digest {
    SHA256.hash(data: Array(token.utf8))
}
