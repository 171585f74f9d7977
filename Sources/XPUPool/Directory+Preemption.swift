import XPUPlacement
import XPUProtocol

/// Preemption (`xpu-pool --preempt`): a high-priority request that fits nowhere may end
/// low-priority slices (`Preemption` chooses which). The directory cannot end a session itself: it
/// queues the order for the server, which receives it in the reply to its next heartbeat, ends the
/// sessions (their clients get `CUDA_ERROR_DEVICE_UNAVAILABLE` with the reason) and beats again at
/// once; that heartbeat shows the capacity free, and the request, first in the queue, is placed
/// there. A request of several slices (`XPU_DEVICES`) gets a device for each, as its placement
/// does: one where a slice fits as things are, or one where ending slices makes room; all or none.
extension Directory {
    /// Chooses victims for `ask` and queues the orders to their servers (lock held); the events to
    /// log, one per device, or none when nothing may or need be preempted.
    func orderPreemption(for ask: Ask, in state: inout State) -> [Event] {
        guard Preemption.allows(ask.wanted.priority, toPreempt: .bestEffort) else { return [] }
        let (cluster, index) = Self.cluster(of: state, family: ask.api)
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
        // A device for each slice; a device once chosen is out of the running for the others.
        var open = cluster
        var chosen: [(node: Int, victims: [RunningSlice])] = []
        for _ in 0..<ask.count {
            let taken = Set(chosen.map(\.node))
            if let node = open.nodes.indices.first(where: { !taken.contains($0) && Preemption.fits(ask.wanted, on: open.nodes[$0], without: []) }) {
                chosen.append((node, []))
            } else if let (node, victims) = Preemption.victims(
                for: ask.wanted, in: open, running: running.filter { !taken.contains($0.node) })
            {
                chosen.append((node, victims))
            } else {
                return []
            }
            let node = chosen[chosen.count - 1].node
            open.nodes[node].takeOut()
        }
        let reason = "preempted by the pool for a high-priority request ('\(ask.text)' from \(ask.client))"
        var events: [Event] = []
        for (node, victims) in chosen where !victims.isEmpty {
            let (server, device) = index[node]
            for victim in victims {
                state.orders[server, default: []].append(PoolPreemption(session: victim.id, reason: reason))
                state.ending[server, default: []].insert(victim.id)
            }
            state.preemptions += victims.count
            events.append(
                .preempting(ask, server: server, device: device, victims: victims.compactMap { slices[$0.id] }, total: state.preemptions))
        }
        return events
    }
}
