import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// One line per request (off unless configured): JSON or logfmt, to standard output or a file.
///
/// Lines are appended to a buffer under a lock and written by a background thread every
/// 200 ms, or at once when the buffer passes 64 KB, so event loops never wait on the disk
/// for more than a memory copy in the common case. ``close()`` writes what is left.
public final class AccessLog: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        case json
        case logfmt
    }

    public let format: Format
    private let descriptor: Int32
    private let ownsDescriptor: Bool
    private let buffer = NIOLockedValueBox<[UInt8]>([])
    private let stopped = NIOLockedValueBox(false)
    private static let flushThreshold = 64 * 1024

    /// Opens `path` for appending (created with mode 0644), or standard output for `-`.
    public init(path: String, format: Format) throws {
        self.format = format
        if path == "-" {
            self.descriptor = 1
            self.ownsDescriptor = false
        } else {
            let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw AccessLogError.cannotOpen(path, errno) }
            self.descriptor = descriptor
            self.ownsDescriptor = true
        }
        let thread = Thread { [self] in
            while !self.stopped.withLockedValue({ $0 }) {
                Thread.sleep(forTimeInterval: 0.2)
                self.flush()
            }
        }
        thread.name = "portico-access-log"
        thread.start()
    }

    /// Writes buffered lines and stops the flushing thread.
    public func close() {
        self.stopped.withLockedValue { $0 = true }
        self.flush()
        if self.ownsDescriptor { _ = Foundation.close(self.descriptor) }
    }

    func record(_ entry: AccessLogEntry) {
        let line = self.format == .json ? entry.json() : entry.logfmt()
        let full = self.buffer.withLockedValue { buffer in
            buffer.append(contentsOf: line.utf8)
            buffer.append(UInt8(ascii: "\n"))
            return buffer.count >= Self.flushThreshold
        }
        if full { self.flush() }
    }

    func flush() {
        let bytes = self.buffer.withLockedValue { buffer -> [UInt8] in
            defer { buffer.removeAll(keepingCapacity: true) }
            return buffer
        }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(self.descriptor, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            offset += written
        }
    }
}

public enum AccessLogError: Error, CustomStringConvertible {
    case cannotOpen(String, Int32)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let code):
            return "cannot open access log \(path): \(String(cString: strerror(code)))"
        }
    }
}

/// What is known of one request when its line is written.
struct AccessLogEntry {
    var started: NIODeadline
    var time: Date
    var client: String
    var method: String
    var uri: String
    var host: String
    var httpVersion: String
    var service: String
    var status = 0
    var bytesSent = 0
    var upstream = ""

    private var durationMilliseconds: String {
        let microseconds = (NIODeadline.now() - self.started).nanoseconds / 1000
        let fraction = microseconds % 1000
        return "\(microseconds / 1000)." + (fraction < 10 ? "00" : fraction < 100 ? "0" : "") + "\(fraction)"
    }

    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-26T23:45:01.123Z`.
    private static func timestamp(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        var whole = time_t(seconds.rounded(.down))
        let milliseconds = Int((seconds - Double(whole)) * 1000)
        var parts = tm()
        gmtime_r(&whole, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millis =
            milliseconds < 10 ? "00\(milliseconds)" : milliseconds < 100 ? "0\(milliseconds)" : "\(milliseconds)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(millis)Z"
    }

    /// The line's fields in order; `number` ones are written unquoted in JSON.
    private var fields: [(key: String, value: String, number: Bool)] {
        [
            ("time", Self.timestamp(self.time), false),
            ("client", self.client, false),
            ("method", self.method, false),
            ("host", self.host, false),
            ("uri", self.uri, false),
            ("protocol", self.httpVersion, false),
            ("status", String(self.status), true),
            ("bytes_sent", String(self.bytesSent), true),
            ("duration_ms", self.durationMilliseconds, true),
            ("service", self.service, false),
            ("upstream", self.upstream, false),
        ]
    }

    func json() -> String {
        "{" + self.fields.map { "\"\($0.key)\":\($0.number ? $0.value : Self.quoted($0.value))" }.joined(separator: ",")
            + "}"
    }

    func logfmt() -> String {
        self.fields.map { field in
            let plain =
                !field.value.isEmpty
                && field.value.utf8.allSatisfy {
                    $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "=")
                        && $0 != UInt8(ascii: "\\")
                }
            return "\(field.key)=\(plain ? field.value : Self.quoted(field.value))"
        }.joined(separator: " ")
    }

    /// A JSON string literal (also used for logfmt values that need quoting).
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7f:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}

extension AccessLogEntry {
    /// The line of a request that starts now; status, bytes, service and upstream are filled
    /// in as the exchange goes (the engine's and the fast lane's lines are the same).
    init(starting head: HTTPRequestHead, host: String?, client: String, http2: Bool = false) {
        self.init(method: head.method, uri: head.uri, version: head.version, host: host, client: client, http2: http2)
    }

    init(method: HTTPMethod, uri: String, version: HTTPVersion, host: String?, client: String, http2: Bool = false) {
        self.init(
            started: .now(),
            time: Date(),
            client: client,
            method: method.rawValue,
            uri: uri,
            host: host ?? "",
            httpVersion: http2 ? "HTTP/2" : "HTTP/\(version.major).\(version.minor)",
            service: ""
        )
    }
}
