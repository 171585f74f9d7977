import CXPUDriver
import XPUProtocol

extension Session {
    /// `ModuleLoad`: loads the image and keeps it in the server's module cache for the next client
    /// that names it by digest.
    func loadAndCacheModule(_ request: ModuleLoadRequest) -> CallOutcome {
        perform { () throws(CallFailure) in
            let reply = try loadModule(request.image)
            ModuleImageCache.shared.insert(request.image)
            return reply
        }
    }

    /// `ModuleLoadCached`: the image named by its SHA-256, from the cache; CUDA_ERROR_NOT_FOUND
    /// when the server does not have it (the client then sends it with `ModuleLoad`).
    func loadCachedModule(_ request: ModuleLoadCachedRequest) -> CallOutcome {
        perform { () throws(CallFailure) in
            guard request.digest.count == 32, let image = ModuleImageCache.shared.image(for: request.digest) else {
                throw CallFailure(CUDA_ERROR_NOT_FOUND)
            }
            logger.debug("module cache hit", metadata: ["bytes": "\(image.count)"])
            let reply = try loadModule(image)
            return ModuleLoadCachedReply(module: reply.module, kernels: reply.kernels)
        }
    }
}
