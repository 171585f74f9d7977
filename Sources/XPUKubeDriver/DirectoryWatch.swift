import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Tells when an entry of one directory is created, removed or renamed (inotify), so that the
/// kubelet plugin notices its registration socket disappear without looking every second.
///
/// `nextChange` sleeps on a thread of its own in `poll` with no timeout, until inotify reports a
/// change or `cancel` is called; after `cancel` every wait returns at once. Nil from `init` when
/// inotify cannot be used here (the caller then looks at the path itself from time to time).
final class DirectoryWatch: Sendable {
    private let inotify: Int32
    /// A pipe whose write end `cancel` writes to; its read end is polled beside inotify.
    private let cancelRead: Int32
    private let cancelWrite: Int32

    init?(directory: String) {
        let inotify = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard inotify >= 0 else { return nil }
        let events = UInt32(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF)
        var pipeEnds: [Int32] = [-1, -1]
        guard inotify_add_watch(inotify, directory, events) >= 0, pipe(&pipeEnds) == 0 else {
            close(inotify)
            return nil
        }
        for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        self.inotify = inotify
        cancelRead = pipeEnds[0]
        cancelWrite = pipeEnds[1]
    }

    deinit {
        close(inotify)
        close(cancelRead)
        close(cancelWrite)
    }

    /// Returns once an entry of the directory changed since the last call (or since `init`), or
    /// the task is cancelled, or `cancel` was called.
    func nextChange() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let thread = Thread { [self] in
                    waitForChange()
                    continuation.resume()
                }
                thread.name = "xpu-dir-watch"
                thread.start()
            }
        } onCancel: {
            cancel()
        }
    }

    /// Ends the current wait and every later one.
    func cancel() {
        var byte: UInt8 = 1
        _ = write(cancelWrite, &byte, 1)
    }

    /// Blocks until inotify has events (then reads them all) or the cancel pipe is readable.
    private func waitForChange() {
        var descriptors = [pollfd(fd: inotify, events: Int16(POLLIN), revents: 0), pollfd(fd: cancelRead, events: Int16(POLLIN), revents: 0)]
        while poll(&descriptors, 2, -1) < 0, errno == EINTR {}
        guard descriptors[0].revents != 0 else { return }
        // The events themselves do not matter (the caller looks at the path): drain them.
        withUnsafeTemporaryAllocation(byteCount: 4096, alignment: 8) { buffer in
            while read(inotify, buffer.baseAddress, buffer.count) > 0 {}
        }
    }
}
