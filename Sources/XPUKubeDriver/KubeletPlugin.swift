import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import ServiceLifecycle
import XPUKube
import XPUKubeletAPI

/// The DRA kubelet plugin: two gRPC servers on Unix sockets.
/// - `<kubelet>/plugins/<driver>/dra.sock` serves DRAPlugin (prepare, unprepare) in `dra/v1`
///   (kubelets 1.34 and later) and `dra/v1beta1` (kubelets 1.32 and 1.33);
/// - `<kubelet>/plugins_registry/<driver>-reg.sock` serves `pluginregistration` Registration.
///   The kubelet watches that directory, calls GetInfo, and connects to dra.sock. A kubelet that
///   restarts (or an operator) may delete the socket: the plugin watches the directory (inotify)
///   and, at each change, checks that its socket is still the one it created (same inode and
///   change time); when not, it creates a new one, so the kubelet registers it again. Nothing
///   wakes it while the directory is unchanged; only where inotify cannot be used does it look
///   every `watchInterval` instead.
public struct KubeletPlugin: Service {
    public struct Settings: Sendable {
        public var driver: String
        public var kubeletDirectory: String
        /// How often the registration socket is looked at where inotify cannot be used.
        public var watchInterval: Duration

        public init(driver: String, kubeletDirectory: String = "/var/lib/kubelet", watchInterval: Duration = .seconds(1)) {
            self.driver = driver
            self.kubeletDirectory = kubeletDirectory
            self.watchInterval = watchInterval
        }

        public var pluginSocket: String { "\(kubeletDirectory)/plugins/\(driver)/dra.sock" }
        public var registrationSocket: String { "\(kubeletDirectory)/plugins_registry/\(driver)-reg.sock" }
    }

    public let settings: Settings
    let preparer: ClaimPreparer
    let logger: Logger

    public init(settings: Settings, preparer: ClaimPreparer, logger: Logger) {
        self.settings = settings
        self.preparer = preparer
        self.logger = logger
    }

    public func run() async throws {
        for socket in [settings.pluginSocket, settings.registrationSocket] {
            try FileManager.default.createDirectory(
                atPath: (socket as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            unlink(socket)  // left by an earlier run
        }
        let plugin = GRPCServer(
            transport: .http2NIOPosix(address: .unixDomainSocket(path: settings.pluginSocket), transportSecurity: .plaintext),
            services: [DRAService(preparer: preparer, logger: logger), DRAv1beta1Service(preparer: preparer, logger: logger)])
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await plugin.serve() }
                _ = try await plugin.transport.listeningAddress
                logger.info("DRA plugin \(settings.driver) serving on \(settings.pluginSocket)")
                try await registerWhileRunning()
                plugin.beginGracefulShutdown()
            }
        } onGracefulShutdown: {
            plugin.beginGracefulShutdown()
        }
    }

    /// Serves the registration socket, and again whenever it disappears, until shutdown.
    func registerWhileRunning() async throws {
        let info = Registration_PluginInfo.with {
            $0.type = "DRAPlugin"
            $0.name = settings.driver
            $0.endpoint = settings.pluginSocket
            $0.supportedVersions = ["v1.DRAPlugin", "v1beta1.DRAPlugin"]
        }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            unlink(settings.registrationSocket)
            let registration = GRPCServer(
                transport: .http2NIOPosix(address: .unixDomainSocket(path: settings.registrationSocket), transportSecurity: .plaintext),
                services: [RegistrationService(info: info, logger: logger)])
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await registration.serve() }
                _ = try await registration.transport.listeningAddress
                // Watched before the socket is first looked at: a change after the look is an event.
                let watch = DirectoryWatch(directory: (settings.registrationSocket as NSString).deletingLastPathComponent)
                let created = Self.inode(settings.registrationSocket)
                logger.info("registration socket \(settings.registrationSocket) ready")
                await withGracefulShutdownHandler {
                    while !Task.isCancelled && !Task.isShuttingDownGracefully, let now = Self.inode(settings.registrationSocket), now == created {
                        if let watch {
                            await watch.nextChange()
                        } else {
                            try? await Task.sleep(for: settings.watchInterval)
                        }
                    }
                } onGracefulShutdown: {
                    watch?.cancel()
                }
                registration.beginGracefulShutdown()
            }
            if !Task.isCancelled && !Task.isShuttingDownGracefully {
                logger.warning("registration socket \(settings.registrationSocket) was removed; registering again")
            }
        }
    }

    /// What tells our socket from a later file at the same path: its inode and change time
    /// (an inode number alone may be reused at once).
    static func inode(_ path: String) -> [Int]? {
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        return [Int(status.st_ino), status.st_ctim.tv_sec, status.st_ctim.tv_nsec]
    }
}

/// pluginregistration: tells the kubelet who we are and hears whether it accepted us.
struct RegistrationService: Registration_Registration.SimpleServiceProtocol {
    let info: Registration_PluginInfo
    let logger: Logger

    func getInfo(request: Registration_InfoRequest, context: ServerContext) async throws -> Registration_PluginInfo { info }

    func notifyRegistrationStatus(
        request: Registration_RegistrationStatus, context: ServerContext
    ) async throws -> Registration_RegistrationStatusResponse {
        if request.pluginRegistered {
            logger.info("the kubelet registered the plugin")
        } else {
            logger.error("the kubelet refused the plugin: \(request.error)")
        }
        return Registration_RegistrationStatusResponse()
    }
}

/// dra/v1: prepare and unprepare, claim by claim; a claim that fails carries its error and the
/// others are still answered.
struct DRAService: DRA_DRAPlugin.SimpleServiceProtocol {
    let preparer: ClaimPreparer
    let logger: Logger

    func nodePrepareResources(request: DRA_NodePrepareResourcesRequest, context: ServerContext) async throws -> DRA_NodePrepareResourcesResponse {
        var response = DRA_NodePrepareResourcesResponse()
        for claim in request.claims {
            let reference = ClaimPreparer.ClaimReference(namespace: claim.namespace, uid: claim.uid, name: claim.name)
            var answer = DRA_NodePrepareResourceResponse()
            switch await preparer.prepare(reference) {
            case .success(let prepared):
                answer.devices = prepared.devices.map { device in
                    DRA_Device.with {
                        $0.requestNames = device.requestNames
                        $0.poolName = device.poolName
                        $0.deviceName = device.deviceName
                        $0.cdiDeviceIds = device.cdiDeviceIDs
                        if let share = device.shareID { $0.shareID = share }
                    }
                }
            case .failure(let error):
                answer.error = error.description
            }
            response.claims[claim.uid] = answer
        }
        return response
    }

    func nodeUnprepareResources(
        request: DRA_NodeUnprepareResourcesRequest, context: ServerContext
    ) async throws -> DRA_NodeUnprepareResourcesResponse {
        var response = DRA_NodeUnprepareResourcesResponse()
        for claim in request.claims {
            let reference = ClaimPreparer.ClaimReference(namespace: claim.namespace, uid: claim.uid, name: claim.name)
            var answer = DRA_NodeUnprepareResourceResponse()
            if let error = await preparer.unprepare(reference) { answer.error = error.description }
            response.claims[claim.uid] = answer
        }
        return response
    }
}

/// dra/v1beta1, for kubelets 1.32 and 1.33: the same calls as dra/v1, whose messages it shares
/// but for the device's share ID (consumable capacity, which those kubelets do not have).
struct DRAv1beta1Service: DRAv1beta1_DRAPlugin.SimpleServiceProtocol {
    let preparer: ClaimPreparer
    let logger: Logger

    var v1: DRAService { DRAService(preparer: preparer, logger: logger) }

    func nodePrepareResources(
        request: DRAv1beta1_NodePrepareResourcesRequest, context: ServerContext
    ) async throws -> DRAv1beta1_NodePrepareResourcesResponse {
        let answer = try await v1.nodePrepareResources(request: .with { $0.claims = request.claims.map(\.v1) }, context: context)
        return .with {
            $0.claims = answer.claims.mapValues { claim in
                DRAv1beta1_NodePrepareResourceResponse.with {
                    $0.error = claim.error
                    $0.devices = claim.devices.map { device in
                        DRAv1beta1_Device.with {
                            $0.requestNames = device.requestNames
                            $0.poolName = device.poolName
                            $0.deviceName = device.deviceName
                            $0.cdiDeviceIds = device.cdiDeviceIds
                        }
                    }
                }
            }
        }
    }

    func nodeUnprepareResources(
        request: DRAv1beta1_NodeUnprepareResourcesRequest, context: ServerContext
    ) async throws -> DRAv1beta1_NodeUnprepareResourcesResponse {
        let answer = try await v1.nodeUnprepareResources(request: .with { $0.claims = request.claims.map(\.v1) }, context: context)
        return .with { $0.claims = answer.claims.mapValues { claim in .with { $0.error = claim.error } } }
    }
}

extension DRAv1beta1_Claim {
    var v1: DRA_Claim {
        .with {
            $0.namespace = namespace
            $0.uid = uid
            $0.name = name
        }
    }
}
