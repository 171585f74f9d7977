import XPUPlacement
import XPUProtocol

/// Preemption (`xpu-pool --preempt`): a high-priority request that fits nowhere may end
/// low-priority slices on one device (`Preemption` chooses which). The directory cannot end a
/// session itself: it queues the order for the server, which receives it in the reply to its
/// next heartbeat, ends the sessions (their clients get `CUDA_ERROR_DEVICE_UNAVAILABLE` with the
/// reason) and beats again at once; that heartbeat shows the capacity free, and the request,
/// first in the queue, is placed there. Requests of several slices (`XPU_DEVICES`) do not preempt.
extension Directory {
    /// Chooses victims for `ask` and queues the orders to their server (lock held); the event to
    /// log, or nil when nothing may or need be preempted.
    func orderPreemption(for ask: Ask, in state: inout State) -> Event? {
        guard ask.count == 1, Preemption.allows(ask.wanted.priority, toPreempt: .bestEffort) else { return nil }
        let (cluster, index) = Self.cluster(of: state)
        var running: [RunningSlice] = []
        var slices: [UInt64: PoolSlice] = [:]
        for (node, (server, device)) in index.enumerated() {
            guard let heartbeat = state.servers[server]?.heartbeat else { continue }
            let ending = state.ending[server] ?? []
            for slice in heartbeat.slices where Int(slice.device) == device && !ending.contains(slice.session) {
                let memoryMiB = Int((slice.memory + (1 << 20) - 1) >> 20)
                running.append(
                    RunningSlice(
                        id: slice.session, node: node, gpu: 0, cpuMilli: memoryMiB, memoryMiB: memoryMiB,
                        gpuMilli: Int(slice.computeMilli), priority: Priority(Int(slice.priority))))
                slices[slice.session] = slice
            }
        }
        guard let (node, victims) = Preemption.victims(for: ask.wanted, in: cluster, running: running) else { return nil }
        let (server, device) = index[node]
        let reason = "preempted by the pool for a high-priority request ('\(ask.text)' from \(ask.client))"
        for victim in victims {
            state.orders[server, default: []].append(PoolPreemption(session: victim.id, reason: reason))
            state.ending[server, default: []].insert(victim.id)
        }
        state.preemptions += victims.count
        return .preempting(ask, server: server, device: device, victims: victims.compactMap { slices[$0.id] }, total: state.preemptions)
    }
}
