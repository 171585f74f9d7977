/// The kinds of driver object a session can name.
enum HandleKind: Hashable, Sendable {
    case context, stream, event, module, function
}

/// A session's driver objects by the ids it was given. Ids are minted per session and never
/// reused, so a session can name only its own objects and a stale id never aliases a new one.
/// Each session mints from its own range (the session id in bits 32-55, wrapping after 2^24
/// sessions; bits 56-62 are left to clients that hold sessions on several servers), so an id another
/// session was given is never one of this session's: naming it fails instead of reaching an
/// object of one's own that happens to carry the same number.
struct HandleTable {
    struct Entry {
        var kind: HandleKind
        var pointer: OpaquePointer
        /// The context that owns the object (for a context, itself).
        var context: UInt64
        /// The module a function belongs to (0 otherwise).
        var module: UInt64
    }

    private(set) var entries: [UInt64: Entry] = [:]
    /// Counts removals: a lookup remembered with this count holds while it is unchanged (no id
    /// it found can have gone; a client-minted id names something new only after a removal).
    private(set) var removals: UInt64 = 0
    /// Starts above the driver's special stream values (0 NULL, 1 legacy, 2 per-thread).
    private var nextID: UInt64

    init(session: UInt64) {
        nextID = (session & 0xFF_FFFF) << 32 | 0x1000
    }

    mutating func insert(_ kind: HandleKind, _ pointer: OpaquePointer, context: UInt64, module: UInt64 = 0) -> UInt64 {
        let id = nextID
        nextID += 1
        entries[id] = Entry(kind: kind, pointer: pointer, context: kind == .context ? id : context, module: module)
        return id
    }

    /// Handles the client mints itself (streams, events) carry the top bit, so they never meet
    /// the ids minted here.
    static func isClientMinted(_ id: UInt64) -> Bool { id & (1 << 63) != 0 }

    /// Registers an object under the id the client chose; false if that id is not the client's
    /// to choose or already names something.
    mutating func insert(_ kind: HandleKind, _ pointer: OpaquePointer, context: UInt64, clientID: UInt64) -> Bool {
        guard Self.isClientMinted(clientID), entries[clientID] == nil else { return false }
        entries[clientID] = Entry(kind: kind, pointer: pointer, context: context, module: 0)
        return true
    }

    func lookup(_ kind: HandleKind, _ id: UInt64) -> OpaquePointer? {
        guard let entry = entries[id], entry.kind == kind else { return nil }
        return entry.pointer
    }

    /// The id of a driver object, for answers that name one (cuPointerGetAttribute's context).
    func id(of pointer: OpaquePointer, kind: HandleKind) -> UInt64? {
        entries.first { $0.value.kind == kind && $0.value.pointer == pointer }?.key
    }

    /// Forgets an object and everything it owns (a context's objects, a module's functions).
    mutating func remove(_ id: UInt64) {
        guard let entry = entries.removeValue(forKey: id) else { return }
        removals += 1
        switch entry.kind {
        case .context: entries = entries.filter { $0.value.context != id }
        case .module: entries = entries.filter { $0.value.module != id }
        default: break
        }
    }

    /// Objects of one kind, for cleanup.
    func all(_ kind: HandleKind) -> [(UInt64, Entry)] {
        entries.filter { $0.value.kind == kind }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}
