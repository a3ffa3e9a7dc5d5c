#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The recorded allocations: what the previous run decided, fed to the next run so addresses
/// stay put. Stored as versioned JSON with sorted keys and entries sorted by Service, so the
/// same allocations always give the same bytes. This type does no file I/O.
public struct AllocationLock: Hashable, Sendable {
    /// The only format version this module reads and writes.
    public static let formatVersion = 1

    /// The entries, sorted by Service (at most one per Service).
    public private(set) var entries: [Entry]

    /// A lock; entries are sorted by Service, and only the first entry of a Service is kept.
    public init(entries: [Entry] = []) {
        var seen: Set<ServiceKey> = []
        self.entries = entries.filter { seen.insert($0.service).inserted }.sorted { $0.service < $1.service }
    }

    /// The entry of `service`, if any.
    public subscript(service: ServiceKey) -> Entry? {
        entries.first { $0.service == service }
    }

    /// One Service's recorded allocation, with what its sharing depended on.
    public struct Entry: Hashable, Sendable, Codable {
        /// The Service.
        public var service: ServiceKey
        /// Its addresses.
        public var ips: [IPAddress]
        /// The pool they came from.
        public var pool: String
        /// `metallb.io/allow-shared-ip` at the time, if any.
        public var sharingKey: String?
        /// The backend key at the time, if not empty (Local policy).
        public var backendKey: String?
        /// The (protocol, port) pairs at the time, sorted.
        public var ports: [ServicePort]

        /// An entry; an empty sharing or backend key is stored as absent and ports are sorted.
        public init(
            service: ServiceKey,
            ips: [IPAddress],
            pool: String,
            sharingKey: String? = nil,
            backendKey: String? = nil,
            ports: [ServicePort] = []
        ) {
            self.service = service
            self.ips = ips
            self.pool = pool
            self.sharingKey = sharingKey == "" ? nil : sharingKey
            self.backendKey = backendKey == "" ? nil : backendKey
            self.ports = Array(Set(ports)).sorted()
        }
    }

    private struct Document: Codable {
        var version: Int
        var allocations: [Entry]
    }

    /// The lock as pretty-printed JSON with sorted keys and a final newline.
    public func encode() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Encoding plain strings, numbers and arrays cannot fail.
        let data = try! encoder.encode(Document(version: AllocationLock.formatVersion, allocations: entries))
        return Array(data) + [UInt8(ascii: "\n")]
    }
}
