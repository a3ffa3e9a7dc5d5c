import PorticoAllocation

/// The ingress-nginx annotations Portico reads (prefix `nginx.ingress.kubernetes.io/`),
/// parsed and checked into an ``IngressPolicy``.
public enum IngressAnnotations {
    public static let prefix = "nginx.ingress.kubernetes.io/"

    /// How far Portico supports an annotation.
    public enum Support: Sendable {
        /// Parsed, validated and enforced by the data plane.
        case enforced
        /// Parsed and validated, but this version's data plane does not act on it yet.
        case validatedOnly
    }

    /// Every annotation Portico understands, and how far. Anything else with the prefix is
    /// reported as unsupported.
    public static let known: [String: Support] = [
        "ssl-redirect": .enforced,
        "force-ssl-redirect": .enforced,
        "backend-protocol": .enforced,
        "auth-tls-verify-client": .enforced,
        "auth-tls-secret": .enforced,
        "auth-tls-verify-depth": .enforced,
        "permanent-redirect": .enforced,
        "permanent-redirect-code": .enforced,
        "whitelist-source-range": .enforced,
        "allowlist-source-range": .enforced,
        "proxy-body-size": .enforced,
        "proxy-connect-timeout": .enforced,
        "proxy-read-timeout": .enforced,
        "proxy-send-timeout": .enforced,
        "limit-rps": .enforced,
        "limit-rpm": .enforced,
        "limit-connections": .enforced,
        "limit-whitelist": .enforced,
        "limit-allowlist": .enforced,
        "rewrite-target": .enforced,
        "app-root": .enforced,
        "use-regex": .enforced,
        "affinity": .enforced,
        "session-cookie-name": .enforced,
        "session-cookie-path": .enforced,
        "session-cookie-max-age": .enforced,
        "load-balance": .enforced,
        "auth-url": .enforced,
        "auth-signin": .enforced,
        "auth-response-headers": .enforced,
    ]

    /// Parses the annotations of one Ingress. Problems are returned as diagnostics that
    /// point at the annotation's value.
    public static func policy(for metadata: ObjectMeta, hasTLS: Bool) -> (IngressPolicy, [Diagnostic]) {
        var policy = IngressPolicy()
        policy.sslRedirect = hasTLS
        var diagnostics: [Diagnostic] = []
        let subject = "Ingress \(metadata.key)"

        func report(_ severity: Diagnostic.Severity, _ name: String, _ message: String) {
            diagnostics.append(
                Diagnostic(
                    severity,
                    at: metadata.location(ofAnnotation: prefix + name),
                    "\(subject): metadata.annotations[\(prefix)\(name)]: \(message)"
                )
            )
        }

        func boolean(_ name: String) -> Bool? {
            guard let value = metadata.annotations[prefix + name] else { return nil }
            switch value {
            case "true": return true
            case "false": return false
            default:
                report(.error, name, "\"\(value)\" must be \"true\" or \"false\"")
                return nil
            }
        }

        func integer(_ name: String, _ range: ClosedRange<Int>) -> Int? {
            guard let value = metadata.annotations[prefix + name] else { return nil }
            guard let number = Int(value), range.contains(number) else {
                report(
                    .error,
                    name,
                    "\"\(value)\" must be a whole number from \(range.lowerBound) to \(range.upperBound)"
                )
                return nil
            }
            return number
        }

        for (key, value) in metadata.annotations.sorted(by: { $0.key < $1.key }) where key.hasPrefix(prefix) {
            let name = String(key.dropFirst(prefix.count))
            if name.hasSuffix("-snippet") || name == "configuration-snippet" {
                report(
                    .warning,
                    name,
                    "snippets inject raw nginx configuration and are not supported; this annotation is ignored"
                )
            } else if let support = known[name] {
                if support == .validatedOnly {
                    report(
                        .warning,
                        name,
                        "understood and validated, but not yet enforced by this version of Portico's data plane"
                    )
                }
            } else {
                report(.warning, name, "not supported by Portico; ignored (value \"\(value)\")")
            }
        }

        if let value = boolean("ssl-redirect") { policy.sslRedirect = value }
        if let value = boolean("force-ssl-redirect") { policy.forceSSLRedirect = value }
        if let value = metadata.annotations[prefix + "backend-protocol"] {
            if let parsed = IngressPolicy.BackendProtocol(rawValue: value.uppercased()) {
                policy.backendProtocol = parsed
            } else {
                report(.error, "backend-protocol", "\"\(value)\" must be HTTP, HTTPS, GRPC or GRPCS")
            }
        }
        if let value = metadata.annotations[prefix + "auth-tls-verify-client"] {
            switch value {
            case "on", "optional", "optional_no_ca", "off":
                policy.clientCertificate = value == "off" ? nil : .init(mode: value, secret: "", depth: 1)
            default:
                report(.error, "auth-tls-verify-client", "\"\(value)\" must be on, off, optional or optional_no_ca")
            }
        }
        if policy.clientCertificate != nil {
            if let secret = metadata.annotations[prefix + "auth-tls-secret"] {
                let parts = secret.split(separator: "/", omittingEmptySubsequences: false)
                if parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty {
                    policy.clientCertificate?.secret = secret
                } else if parts.count == 1, !secret.isEmpty {
                    policy.clientCertificate?.secret = "\(metadata.namespace)/\(secret)"
                } else {
                    report(.error, "auth-tls-secret", "\"\(secret)\" must be namespace/name of a Secret with ca.crt")
                }
            } else if policy.clientCertificate?.mode != "optional_no_ca" {
                report(
                    .error,
                    "auth-tls-verify-client",
                    "client certificate verification needs auth-tls-secret naming a Secret with ca.crt"
                )
            }
            if let depth = integer("auth-tls-verify-depth", 1...16) { policy.clientCertificate?.depth = depth }
        }
        if let value = metadata.annotations[prefix + "permanent-redirect"] {
            if value.hasPrefix("http://") || value.hasPrefix("https://") || value.hasPrefix("/") {
                policy.permanentRedirect = value
            } else {
                report(.error, "permanent-redirect", "\"\(value)\" must be an absolute http(s) URL or a path")
            }
        }
        if let code = integer("permanent-redirect-code", 300...308) { policy.permanentRedirectCode = code }
        func ranges(_ names: [String]) -> [String] {
            var result: [String] = []
            for name in names {
                guard let value = metadata.annotations[prefix + name] else { continue }
                for item in value.split(separator: ",").map({ $0.trimmedSpaces() }) {
                    if CIDR(item) != nil || IPAddress(item) != nil {
                        result.append(item)
                    } else {
                        report(.error, name, "\"\(item)\" is not a CIDR such as 192.168.0.0/16")
                    }
                }
            }
            return result
        }
        policy.allowedSourceRanges = ranges(["whitelist-source-range", "allowlist-source-range"])
        policy.limitExemptRanges = ranges(["limit-whitelist", "limit-allowlist"])
        if let value = metadata.annotations[prefix + "proxy-body-size"] {
            if let bytes = ByteSize.parse(value) {
                policy.maximumBodySize = bytes == 0 ? nil : bytes
            } else {
                report(.error, "proxy-body-size", "\"\(value)\" must be a size such as 8m, 512k or 0 (unlimited)")
            }
        }
        if let seconds = integer("proxy-connect-timeout", 1...3600) { policy.connectTimeoutSeconds = seconds }
        if let seconds = integer("proxy-read-timeout", 1...86400) { policy.readTimeoutSeconds = seconds }
        if let seconds = integer("proxy-send-timeout", 1...86400) { policy.sendTimeoutSeconds = seconds }
        policy.limitRPS = integer("limit-rps", 1...1_000_000)
        policy.limitRPM = integer("limit-rpm", 1...60_000_000)
        policy.limitConnections = integer("limit-connections", 1...1_000_000)
        if let value = metadata.annotations[prefix + "rewrite-target"] {
            if value.isEmpty || value.contains(where: \.isWhitespace) {
                report(.error, "rewrite-target", "\"\(value)\" must be a path such as /$2, without spaces")
            } else {
                policy.rewriteTarget = value
            }
        }
        if let value = metadata.annotations[prefix + "app-root"] {
            if value.hasPrefix("/") && value != "/" && !value.contains(where: \.isWhitespace) {
                policy.appRoot = value
            } else {
                report(.error, "app-root", "\"\(value)\" must be a path other than / such as /app1, without spaces")
            }
        }
        if let value = boolean("use-regex") { policy.useRegex = value }
        if let value = metadata.annotations[prefix + "affinity"] {
            if value == "cookie" {
                let name = metadata.annotations[prefix + "session-cookie-name"] ?? "INGRESSCOOKIE"
                let separators = Set("()<>@,;:\\\"/[]?={} \t")
                if name.isEmpty || name.contains(where: { separators.contains($0) || !$0.isASCII || $0.isNewline }) {
                    report(.error, "session-cookie-name", "\"\(name)\" is not a cookie name (RFC 6265 token)")
                } else {
                    policy.affinityCookie = name
                }
                if let path = metadata.annotations[prefix + "session-cookie-path"] {
                    if path.hasPrefix("/") && !path.contains(where: { $0 == ";" || $0.isWhitespace }) {
                        policy.affinityCookiePath = path
                    } else {
                        report(
                            .error,
                            "session-cookie-path",
                            "\"\(path)\" must be a path starting with /, without ; or spaces"
                        )
                    }
                }
                policy.affinityCookieMaxAge = integer("session-cookie-max-age", 1...315_360_000)
            } else {
                report(.error, "affinity", "\"\(value)\": only \"cookie\" affinity exists")
            }
        }
        if let value = metadata.annotations[prefix + "load-balance"] {
            switch value {
            case "round_robin", "ewma": policy.loadBalance = value
            default: report(.error, "load-balance", "\"\(value)\" must be round_robin or ewma")
            }
        }
        if let value = metadata.annotations[prefix + "auth-url"] {
            if value.hasPrefix("http://") || value.hasPrefix("https://") {
                policy.authURL = value
            } else {
                report(.error, "auth-url", "\"\(value)\" must be an absolute http(s) URL")
            }
        }
        policy.authSignin = metadata.annotations[prefix + "auth-signin"]
        policy.authResponseHeaders =
            metadata.annotations[prefix + "auth-response-headers"]?.split(separator: ",")
            .map { $0.trimmedSpaces() } ?? []
        return (policy, diagnostics)
    }
}

/// What an Ingress's annotations ask of the data plane.
public struct IngressPolicy: Hashable, Sendable, Codable {
    public enum BackendProtocol: String, Hashable, Sendable, Codable {
        case http = "HTTP"
        case https = "HTTPS"
        case grpc = "GRPC"
        case grpcs = "GRPCS"
    }

    public struct ClientCertificate: Hashable, Sendable, Codable {
        /// `on`, `optional` or `optional_no_ca`.
        public var mode: String
        /// `namespace/name` of the Secret whose `ca.crt` verifies clients.
        public var secret: String
        public var depth: Int

        public init(mode: String, secret: String, depth: Int) {
            self.mode = mode
            self.secret = secret
            self.depth = depth
        }
    }

    /// Redirect plain HTTP to HTTPS (308). Defaults to true when the Ingress has TLS.
    public var sslRedirect = false
    /// Redirect to HTTPS even without TLS on the Ingress.
    public var forceSSLRedirect = false
    public var backendProtocol: BackendProtocol = .http
    public var clientCertificate: ClientCertificate?
    public var permanentRedirect: String?
    public var permanentRedirectCode = 301
    public var allowedSourceRanges: [String] = []
    /// Largest request body in bytes; nil is unlimited. ingress-nginx's default is 1 MiB.
    public var maximumBodySize: Int? = 1_048_576
    public var connectTimeoutSeconds = 5
    public var readTimeoutSeconds = 60
    public var sendTimeoutSeconds = 60
    public var limitRPS: Int?
    public var limitRPM: Int?
    public var limitConnections: Int?
    /// Clients exempt from the limit-* annotations (`limit-whitelist` / `limit-allowlist`).
    public var limitExemptRanges: [String] = []
    public var rewriteTarget: String?
    public var appRoot: String?
    public var useRegex = false
    /// The cookie name for sticky sessions, when `affinity: cookie`.
    public var affinityCookie: String?
    /// `session-cookie-path`; nil = `/`.
    public var affinityCookiePath: String?
    /// `session-cookie-max-age` in seconds; nil = a session cookie.
    public var affinityCookieMaxAge: Int?
    /// `load-balance`: `round_robin` (nil) or `ewma` (served as least requests in progress).
    public var loadBalance: String?
    public var authURL: String?
    public var authSignin: String?
    public var authResponseHeaders: [String] = []

    public init() {}
}

/// Sizes as nginx writes them: `512`, `8k`, `50m`, `1g` (case-insensitive).
public enum ByteSize {
    public static func parse(_ text: String) -> Int? {
        let lowered = text.lowercased().trimmedSpaces()
        guard let last = lowered.last else { return nil }
        let multiplier: Int
        var digits = Substring(lowered)
        switch last {
        case "k": multiplier = 1024
        case "m": multiplier = 1024 * 1024
        case "g": multiplier = 1024 * 1024 * 1024
        default: multiplier = 1
        }
        if multiplier != 1 { digits = digits.dropLast() }
        guard !digits.isEmpty, digits.allSatisfy(\.isNumber), let value = Int(digits) else { return nil }
        let (result, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : result
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    public func trimmedSpaces() -> String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
