/// Decides the answer to each HTTP boot request; pure apart from the install ledger it
/// records completions in. The NIO shell (``NetbootHTTPServer``) sends what it says.
///
/// - `GET /boot.ipxe`: chains to the machine's own script by MAC.
/// - `GET /netboot/<mac>/boot.ipxe[?uuid=<uuid>]`: the machine's iPXE script.
/// - `GET /netboot/<mac>/<name>`: the answer file `name` (`kickstart`, `preseed`, any template).
/// - `GET /nocloud/<mac>/user-data`, `meta-data`, `vendor-data`: cloud-init's NoCloud source.
/// - `POST /netboot/<mac>/installed`: the installer reports completion; the machine boots its
///   local disk from then on (recorded in the state directory before the answer).
/// - `GET /assets/<path>`: files under the assets directory, with ranges.
/// - `GET /<name>`: a boot loader (for UEFI HTTP boot).
public struct NetbootHTTPResponder: Sendable {
    /// What to answer.
    public enum Response: Sendable {
        /// A generated body.
        case body(status: Int, contentType: String, bytes: [UInt8], event: Event?)
        /// A file under the assets directory, sent (or a range of it) by the shell.
        case asset(path: String)
    }

    /// A boot step worth a log line and a metric.
    public enum Event: Hashable, Sendable {
        /// An iPXE script was served; `installing` says whether it boots the installer.
        case scriptServed(machine: String, installing: Bool)
        /// An answer file (kickstart, preseed, user-data, ...) was served.
        case answerServed(machine: String, file: String)
        /// A machine reported its install complete.
        case installCompleted(machine: String, installs: Int)
        /// A boot loader was served.
        case bootLoaderServed(file: String)
    }

    /// The content in force.
    public let content: NetbootContent

    /// A responder reading `content`.
    public init(content: NetbootContent) {
        self.content = content
    }

    /// The answer to `method` on `uri`; `now` in seconds since 1970 (for completion records).
    public func respond(method: String, uri: String, now: Int) -> Response {
        let (path, query) = Self.split(uri)
        guard let segments = Self.segments(path) else { return Self.text(400, "bad path\n") }
        let snapshot = self.content.snapshot
        let renderer = snapshot.renderer
        let isRead = method == "GET" || method == "HEAD"
        switch segments.first ?? "" {
        case "boot.ipxe" where segments.count == 1:
            guard isRead else { return Self.methodNotAllowed }
            return Self.text(200, renderer.chainScript)
        case "netboot" where segments.count == 3, "nocloud" where segments.count == 3:
            guard let address = HardwareAddress(segments[1]), address.bytes.count == 6 else {
                return Self.text(400, "not a MAC address: \(segments[1])\n")
            }
            let name = segments[2]
            if segments[0] == "netboot" && name == "installed" {
                guard method == "POST" || method == "PUT" else { return Self.methodNotAllowed }
                return self.completeInstall(address, renderer: renderer, now: now)
            }
            guard isRead else { return Self.methodNotAllowed }
            let records = self.content.ledger.snapshot()
            if segments[0] == "netboot" && name == "boot.ipxe" {
                let uuid = query["uuid"].flatMap { ClientUUID($0) }
                let machine = renderer.inventory.machine(hardwareAddress: address, uuid: uuid)
                let installing =
                    machine.map {
                        BootFileRenderer.installState(of: $0, record: records[$0.hardwareAddress.description])
                            == .install
                    } ?? false
                let outcome = renderer.ipxeScript(hardwareAddress: address, uuid: uuid, records: records)
                return Self.response(
                    outcome,
                    event: .scriptServed(machine: Self.label(machine, address), installing: installing)
                )
            }
            if segments[0] == "nocloud" && !["user-data", "meta-data", "vendor-data", "network-config"].contains(name) {
                return Self.text(404, "not found\n")
            }
            let machine = renderer.inventory.machine(hardwareAddress: address, uuid: nil)
            let outcome = renderer.answerFile(named: name, hardwareAddress: address, records: records)
            return Self.response(outcome, event: .answerServed(machine: Self.label(machine, address), file: name))
        case "assets" where segments.count >= 2:
            guard isRead else { return Self.methodNotAllowed }
            guard let root = snapshot.assetsDirectory,
                let path = try? TFTPPath(sanitizing: segments.dropFirst().joined(separator: "/")),
                let resolved = try? TFTPPathResolver.resolve(path, root: root, inspector: LocalFileSystemInspector())
            else { return Self.text(404, "not found\n") }
            return .asset(path: resolved.path)
        case let name where segments.count == 1:
            guard isRead else { return Self.methodNotAllowed }
            guard let bytes = snapshot.bootLoaders[name] else { return Self.text(404, "not found\n") }
            return .body(
                status: 200,
                contentType: "application/octet-stream",
                bytes: bytes,
                event: .bootLoaderServed(file: name)
            )
        default:
            return Self.text(404, "not found\n")
        }
    }

    private func completeInstall(_ address: HardwareAddress, renderer: BootFileRenderer, now: Int) -> Response {
        guard let machine = renderer.inventory.machine(hardwareAddress: address, uuid: nil) else {
            return Self.text(404, "unknown machine \(address)\n")
        }
        do {
            let record = try self.content.ledger.recordCompletion(
                of: machine.hardwareAddress,
                request: machine.reinstallRequest,
                now: now
            )
            return .body(
                status: 200,
                contentType: "text/plain; charset=utf-8",
                bytes: Array("recorded: \(machine.hardwareAddress) boots its local disk from now on\n".utf8),
                event: .installCompleted(machine: Self.label(machine, address), installs: record.completedInstalls)
            )
        } catch {
            return Self.text(500, "\(error)\n")
        }
    }

    private static let methodNotAllowed = Response.body(
        status: 405,
        contentType: "text/plain; charset=utf-8",
        bytes: Array("method not allowed\n".utf8),
        event: nil
    )

    private static func label(_ machine: Machine?, _ address: HardwareAddress) -> String {
        guard let machine, !machine.name.isEmpty else { return address.description }
        return machine.name
    }

    private static func text(_ status: Int, _ text: String) -> Response {
        .body(status: status, contentType: "text/plain; charset=utf-8", bytes: Array(text.utf8), event: nil)
    }

    private static func response(_ outcome: BootFileRenderer.Outcome, event: Event) -> Response {
        switch outcome {
        case .rendered(let text):
            return .body(status: 200, contentType: "text/plain; charset=utf-8", bytes: Array(text.utf8), event: event)
        case .unknownMachine:
            return text(404, "unknown machine\n")
        case .noSuchTemplate:
            return text(404, "the machine's profile has no such template\n")
        case .undefined(let names):
            return text(500, "the template uses undefined variables: \(names.joined(separator: ", "))\n")
        }
    }

    /// The path and the query parameters of a request target.
    static func split(_ uri: String) -> (path: String, query: [String: String]) {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var query: [String: String] = [:]
        if parts.count == 2 {
            for pair in parts[1].split(separator: "&") {
                let keyValue = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                query[String(keyValue[0])] = keyValue.count == 2 ? String(keyValue[1]) : ""
            }
        }
        return (String(parts.first ?? ""), query)
    }

    /// Percent-decoded path segments; `nil` for a path that is not absolute, holds `..`,
    /// control characters or bad escapes.
    static func segments(_ path: String) -> [String]? {
        guard path.hasPrefix("/") else { return nil }
        var result: [String] = []
        for raw in path.split(separator: "/") {
            guard let segment = percentDecoded(raw), segment != "..", segment != ".",
                !segment.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0 == "/" })
            else { return nil }
            result.append(segment)
        }
        return result
    }

    private static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                    let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}

/// A `Range: bytes=...` request header applied to a file of a known size (one range; several
/// are answered with the whole file, as RFC 9110 allows).
public enum ByteRangeRequest: Hashable, Sendable {
    /// Send the whole file (no header, or one that is ignored).
    case whole
    /// Send these bytes with 206.
    case partial(Range<Int>)
    /// 416: the range starts past the end.
    case unsatisfiable

    /// Reads `header` for a file of `size` bytes.
    public init(header: String?, size: Int) {
        guard let header, header.hasPrefix("bytes="), !header.contains(",") else {
            self = .whole
            return
        }
        let spec = header.dropFirst("bytes=".count).trimmingSpaces()
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            self = .whole
            return
        }
        if parts[0].isEmpty {
            guard let suffix = Int(parts[1]), suffix >= 0 else {
                self = .whole
                return
            }
            guard suffix > 0, size > 0 else {
                self = .unsatisfiable
                return
            }
            self = .partial(max(size - suffix, 0)..<size)
            return
        }
        guard let start = Int(parts[0]), start >= 0 else {
            self = .whole
            return
        }
        guard start < size else {
            self = .unsatisfiable
            return
        }
        if parts[1].isEmpty {
            self = .partial(start..<size)
        } else if let end = Int(parts[1]), end >= start {
            self = .partial(start..<min(end + 1, size))
        } else {
            self = .whole
        }
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var text = self
        while text.first == " " { text = text.dropFirst() }
        while text.last == " " { text = text.dropLast() }
        return text
    }
}
