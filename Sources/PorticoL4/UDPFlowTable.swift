import NIOCore

/// The flows of one UDP listener: client address -> flow, with idle expiry and a hard capacity.
///
/// Pure: time is passed in. A full table refuses new clients (``insert(_:_:now:)`` returns
/// `false`) and leaves existing flows alone; expiry happens in ``expire(now:)``, which the
/// listener calls from a periodic timer. Lookups that find a flow mark it active.
struct UDPFlowTable<Key: Hashable, Flow> {
    private struct Entry {
        var flow: Flow
        var lastActivity: NIODeadline
    }

    private var entries: [Key: Entry] = [:]
    /// The most flows held at once. Lowering it does not evict: it only refuses new clients.
    var capacity: Int
    /// A flow without activity for this long expires.
    var idleTimeout: TimeAmount

    init(capacity: Int, idleTimeout: TimeAmount) {
        self.capacity = capacity
        self.idleTimeout = idleTimeout
        self.entries.reserveCapacity(min(capacity, 1024))
    }

    var count: Int { self.entries.count }
    var isFull: Bool { self.entries.count >= self.capacity }

    /// The flow of `key`, marked active at `now` (one hash lookup).
    mutating func lookup(_ key: Key, now: NIODeadline) -> Flow? {
        guard let index = self.entries.index(forKey: key) else { return nil }
        self.entries.values[index].lastActivity = now
        return self.entries.values[index].flow
    }

    /// The flow of `key`, without marking it active.
    func peek(_ key: Key) -> Flow? {
        self.entries[key]?.flow
    }

    /// Marks the flow of `key` active (a reply went through it).
    mutating func touch(_ key: Key, now: NIODeadline) {
        guard let index = self.entries.index(forKey: key) else { return }
        self.entries.values[index].lastActivity = now
    }

    /// Adds a flow; `false` when the table is full or the key is taken.
    mutating func insert(_ key: Key, _ flow: Flow, now: NIODeadline) -> Bool {
        guard !self.isFull, self.entries[key] == nil else { return false }
        self.entries[key] = Entry(flow: flow, lastActivity: now)
        return true
    }

    /// Removes one flow (its upstream failed, or it is being closed).
    @discardableResult
    mutating func evict(_ key: Key) -> Flow? {
        self.entries.removeValue(forKey: key)?.flow
    }

    /// Removes and returns the flows idle for at least ``idleTimeout`` at `now`.
    mutating func expire(now: NIODeadline) -> [(key: Key, flow: Flow)] {
        let cutoff = now - self.idleTimeout
        var expired: [(key: Key, flow: Flow)] = []
        for (key, entry) in self.entries where entry.lastActivity <= cutoff {
            expired.append((key, entry.flow))
        }
        for (key, _) in expired {
            self.entries.removeValue(forKey: key)
        }
        return expired
    }

    /// Removes and returns every flow.
    mutating func removeAll() -> [Flow] {
        defer { self.entries.removeAll() }
        return self.entries.values.map(\.flow)
    }
}
