#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Why a lock could not be read. Every case says what is wrong and where.
public enum AllocationLockError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Not JSON, or JSON of the wrong shape.
    case invalidJSON(String)
    /// No `version` field.
    case missingVersion
    /// A version this build does not know.
    case unsupportedVersion(Int)
    /// No `allocations` field.
    case missingAllocations
    /// An entry is incomplete or holds a value that does not parse.
    case invalidEntry(index: Int, message: String)
    /// Two entries for the same Service.
    case duplicateService(ServiceKey)
    /// Two Services hold the same address in a way sharing forbids.
    case conflictingClaims(address: IPAddress, first: ServiceKey, second: ServiceKey, message: String)

    public var description: String {
        let tail = "; fix or delete the lock file (addresses are then allocated afresh)"
        switch self {
        case .invalidJSON(let message): return "allocation lock is not valid: \(message)\(tail)"
        case .missingVersion: return "allocation lock has no \"version\"\(tail)"
        case .unsupportedVersion(let version):
            return "allocation lock has version \(version), but this Portico reads only version "
                + "\(AllocationLock.formatVersion)\(tail)"
        case .missingAllocations: return "allocation lock has no \"allocations\"\(tail)"
        case .invalidEntry(let index, let message): return "allocation lock: allocations[\(index)]: \(message)\(tail)"
        case .duplicateService(let service): return "allocation lock lists \"\(service)\" twice\(tail)"
        case .conflictingClaims(let address, let first, let second, let message):
            return "allocation lock gives \"\(address)\" to both \"\(first)\" and \"\(second)\", "
                + "but \(message)\(tail)"
        }
    }
}

extension AllocationLock {
    private struct RawDocument: Decodable {
        var version: Int?
        var allocations: [RawEntry]?
    }

    private struct RawEntry: Decodable {
        var service: String?
        var ips: [String]?
        var pool: String?
        var sharingKey: String?
        var backendKey: String?
        var ports: [String]?
    }

    /// Reads a lock written by `encode()` (or edited by hand), rejecting anything that
    /// `encode()` could not have produced from a valid state.
    public static func decode(_ bytes: [UInt8]) throws(AllocationLockError) -> AllocationLock {
        let document: RawDocument
        do {
            document = try JSONDecoder().decode(RawDocument.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw .invalidJSON(describe(error))
        } catch {
            throw .invalidJSON("\(error)")
        }
        guard let version = document.version else { throw .missingVersion }
        guard version == formatVersion else { throw .unsupportedVersion(version) }
        guard let rawEntries = document.allocations else { throw .missingAllocations }

        var entries: [Entry] = []
        var services: Set<ServiceKey> = []
        for (index, raw) in rawEntries.enumerated() {
            let entry = try decodeEntry(raw, index: index)
            guard services.insert(entry.service).inserted else { throw .duplicateService(entry.service) }
            entries.append(entry)
        }
        try checkClaims(entries)
        return AllocationLock(entries: entries)
    }

    private static func decodeEntry(_ raw: RawEntry, index: Int) throws(AllocationLockError) -> Entry {
        func invalid(_ message: String) -> AllocationLockError { .invalidEntry(index: index, message: message) }
        guard let serviceText = raw.service else { throw invalid("missing \"service\"") }
        guard let service = ServiceKey(serviceText) else {
            throw invalid("service \"\(serviceText)\" is not namespace/name")
        }
        guard let ipTexts = raw.ips, !ipTexts.isEmpty else { throw invalid("\"\(service)\" has no \"ips\"") }
        var ips: [IPAddress] = []
        for text in ipTexts {
            guard let ip = IPAddress(text) else { throw invalid("\"\(text)\" is not an IP address") }
            ips.append(ip)
        }
        guard ips.count <= 2, Set(ips.map(\.family)).count == ips.count else {
            throw invalid("\"\(service)\" holds \(ipTexts): at most one IP per family")
        }
        guard let pool = raw.pool, !pool.isEmpty else { throw invalid("\"\(service)\" has no \"pool\"") }
        var ports: [ServicePort] = []
        for text in raw.ports ?? [] {
            guard let port = ServicePort(text) else { throw invalid("\"\(text)\" is not a port like 53/UDP") }
            ports.append(port)
        }
        return Entry(
            service: service,
            ips: ips,
            pool: pool,
            sharingKey: raw.sharingKey,
            backendKey: raw.backendKey,
            ports: ports
        )
    }

    /// Rejects two entries holding one address unless sharing allows it (rule 8).
    private static func checkClaims(_ entries: [Entry]) throws(AllocationLockError) {
        var holders: [IPAddress: Entry] = [:]
        var portsInUse: [IPAddress: [ServicePort: ServiceKey]] = [:]
        for entry in entries {
            for ip in entry.ips {
                if let first = holders[ip] {
                    func conflict(_ message: String) -> AllocationLockError {
                        .conflictingClaims(address: ip, first: first.service, second: entry.service, message: message)
                    }
                    guard let key = first.sharingKey, key == entry.sharingKey else {
                        throw conflict(
                            "their sharing keys differ (\(quoted(first.sharingKey)) and \(quoted(entry.sharingKey)))"
                        )
                    }
                    guard first.backendKey == entry.backendKey else {
                        throw conflict(
                            "their backend keys differ (\(quoted(first.backendKey)) and \(quoted(entry.backendKey)))"
                        )
                    }
                } else {
                    holders[ip] = entry
                }
                for port in entry.ports {
                    if let user = portsInUse[ip, default: [:]][port] {
                        throw .conflictingClaims(
                            address: ip,
                            first: user,
                            second: entry.service,
                            message: "both use port \(port)"
                        )
                    }
                    portsInUse[ip, default: [:]][port] = entry.service
                }
            }
        }
    }

    private static func quoted(_ key: String?) -> String {
        key.map { "\"\($0)\"" } ?? "none"
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            var text = ""
            for key in context.codingPath {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return text.isEmpty ? "top level" : text
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "at \(path(context)): expected \(type)"
        case .valueNotFound(let type, let context):
            return "at \(path(context)): expected \(type), found null"
        case .keyNotFound(let key, let context):
            return "at \(path(context)): missing \"\(key.stringValue)\""
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty
                ? "not JSON (\(context.debugDescription))" : "at \(path(context)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}
