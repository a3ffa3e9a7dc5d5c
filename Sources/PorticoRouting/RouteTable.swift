/// How an Ingress path is compared with the request path.
public enum PathType: String, Sendable, Hashable, Codable, CaseIterable {
    /// The request path equals the rule path (case-sensitive).
    case exact = "Exact"
    /// Element-wise prefix: the rule path without one trailing `/` is the request path or
    /// a prefix of it that ends just before a `/`.
    case prefix = "Prefix"
    /// Portico treats this as ``prefix`` (documented in docs/configuration.md).
    case implementationSpecific = "ImplementationSpecific"

    /// The comparison actually used for this path type.
    public var effective: PathType { self == .exact ? .exact : .prefix }
}

/// Which hosts a rule applies to.
public enum HostPattern: Hashable, Sendable, Comparable {
    /// A rule without a host: every host.
    case any
    /// One DNS name, lowercased.
    case exact(String)
    /// `*.suffix`: exactly one label followed by `suffix` (lowercased, without the dot).
    case wildcard(suffix: String)

    /// Parses an Ingress `host` value; the empty string means every host. The value is
    /// assumed to be validated already (see PorticoModel); this only classifies it.
    public init(_ host: String) {
        let lowered = host.lowercased()
        if lowered.isEmpty {
            self = .any
        } else if lowered.hasPrefix("*.") {
            self = .wildcard(suffix: String(lowered.dropFirst(2)))
        } else {
            self = .exact(lowered)
        }
    }

    /// The pattern as written in an Ingress (`""` for every host).
    public var text: String {
        switch self {
        case .any: return ""
        case .exact(let name): return name
        case .wildcard(let suffix): return "*." + suffix
        }
    }

    /// Whether `host` (lowercased, without port) is matched by this pattern.
    public func matches(_ host: Substring) -> Bool {
        switch self {
        case .any:
            return true
        case .exact(let name):
            return host == name[...]
        case .wildcard(let suffix):
            guard let dot = host.firstIndex(of: "."), dot != host.startIndex else { return false }
            return host[host.index(after: dot)...] == suffix[...]
        }
    }
}

/// One path of one Ingress rule, with what it routes to.
public struct RouteRule<Target: Sendable>: Sendable {
    public var host: HostPattern
    public var path: String
    public var pathType: PathType
    public var target: Target
    /// The path is a regular expression (ingress-nginx `use-regex`). As in ingress-nginx, one
    /// such rule turns every non-`Exact` path of its host into a case-insensitive regex
    /// anchored at the start, tried longest path first.
    public var regex: Bool

    public init(host: HostPattern, path: String, pathType: PathType, target: Target, regex: Bool = false) {
        self.host = host
        self.path = path
        self.pathType = pathType
        self.target = target
        self.regex = regex
    }
}

/// Two rules that claim the same host and path; the earlier one (by input order) wins.
public struct RouteConflict: Sendable, Hashable {
    /// Index into the rules given to ``RouteTable/init(rules:defaultTarget:)``.
    public var winner: Int
    /// Index of the rule that is ignored.
    public var loser: Int

    public init(winner: Int, loser: Int) {
        self.winner = winner
        self.loser = loser
    }
}

/// The Ingress route table: host, then path, to a target.
///
/// Matching follows the Kubernetes Ingress rules (see docs/configuration.md):
/// - The host is chosen first, most specific wins: an exact host, else a wildcard host whose
///   suffix follows the request's first label, else the rules without a host. Once a host
///   is chosen, only its paths are considered (as nginx chooses a server, then a location).
/// - Within the host, an `Exact` path equal to the request path wins; otherwise the longest
///   matching `Prefix` path (compared element-wise). Ties on length go to `Exact`.
/// - Nothing matches: the default target, if any.
///
/// A lookup costs two or three hash lookups for the host and one per `/` in the path,
/// whatever the number of hosts and paths.
public struct RouteTable<Target: Sendable>: Sendable {
    /// Rules that lost to an earlier rule for the same host and path.
    public private(set) var conflicts: [RouteConflict] = []
    /// Rules (indices into the input) of regex hosts whose path is not a valid regular
    /// expression, with the parser's message; they are left out of the table.
    public private(set) var invalidPatterns: [(rule: Int, message: String)] = []
    /// The rules in effect (losers removed), in input order.
    public private(set) var rules: [RouteRule<Target>] = []
    public private(set) var defaultTarget: Target?
    /// The targets of ``rules``, by slot: a lookup copies one target, not a whole rule.
    @usableFromInline private(set) var targets: [Target] = []

    /// Where each host's paths lead (slots into ``rules``).
    @usableFromInline private(set) var index = RouteIndex()
    /// Hosts whose paths are regular expressions (kept for ``mapTargets(_:)``).
    private var regexHosts: Set<HostPattern> = []

    /// An empty table: every lookup misses.
    public init() {}

    /// Builds the table. For two rules with the same host, path type and path (after
    /// trimming a trailing `/` for prefixes), the one given first wins and the other is
    /// recorded in ``conflicts``: callers order rules by Ingress age.
    public init(rules: [RouteRule<Target>], defaultTarget: Target?) {
        self.init(rules: rules, defaultTarget: defaultTarget, regexHosts: [])
    }

    private init(rules: [RouteRule<Target>], defaultTarget: Target?, regexHosts knownRegexHosts: Set<HostPattern>) {
        self.defaultTarget = defaultTarget
        let regexHosts = knownRegexHosts.union(rules.filter(\.regex).map(\.host))
        self.regexHosts = regexHosts
        var winners: [Int] = []
        for (index, rule) in rules.enumerated() {
            // Taken out while it changes, so its dictionaries are uniquely referenced (no copies).
            var routes: HostRoutes
            switch rule.host {
            case .any: routes = self.index.anyHost.take() ?? HostRoutes()
            case .exact(let name): routes = self.index.exactHosts.removeValue(forKey: name) ?? HostRoutes()
            case .wildcard(let suffix): routes = self.index.wildcardHosts.removeValue(forKey: suffix) ?? HostRoutes()
            }
            defer {
                switch rule.host {
                case .any: self.index.anyHost = routes
                case .exact(let name): self.index.exactHosts[name] = routes
                case .wildcard(let suffix): self.index.wildcardHosts[suffix] = routes
                }
            }
            let isExact = rule.pathType.effective == .exact
            let isPattern = !isExact && regexHosts.contains(rule.host)
            // Pattern paths are told apart by their text (the prefix dictionary keeps them for that).
            let key = isExact || isPattern ? rule.path[...] : Self.prefixBase(rule.path)
            if let existing = isExact ? routes.exact[key] : routes.prefix[key] {
                conflicts.append(RouteConflict(winner: winners[existing], loser: index))
                continue
            }
            var pattern: PathPattern?
            if isPattern {
                do {
                    pattern = try PathPattern(rule.path)
                } catch {
                    invalidPatterns.append((index, "\(error)"))
                    continue
                }
            }
            let slot = self.rules.count
            self.rules.append(rule)
            self.targets.append(rule.target)
            winners.append(index)
            if isExact {
                routes.exact[key] = slot
            } else {
                routes.prefix[key] = slot
            }
            if let pattern {
                routes.patterns.append((pattern, slot))
                // Longest path first; a stable order for equal lengths (input order).
                let rulesSoFar = self.rules
                routes.patterns.sort {
                    let (left, right) = (rulesSoFar[$0.slot].path.utf8.count, rulesSoFar[$1.slot].path.utf8.count)
                    return left != right ? left > right : $0.slot < $1.slot
                }
            }
        }
    }

    /// The same table with every target transformed (conflicts already resolved stay so).
    public func mapTargets<Other: Sendable>(_ transform: (Target) throws -> Other) rethrows -> RouteTable<Other> {
        var table = RouteTable<Other>(
            rules: try rules.map {
                RouteRule(
                    host: $0.host,
                    path: $0.path,
                    pathType: $0.pathType,
                    target: try transform($0.target),
                    regex: $0.regex
                )
            },
            defaultTarget: try defaultTarget.map(transform),
            regexHosts: regexHosts
        )
        table.conflicts = conflicts
        table.invalidPatterns = invalidPatterns
        return table
    }

    /// The target for a request, or nil (answer 404). Inlinable, so callers get it specialised
    /// for their target type (no generic metadata or witness copies on the request path).
    /// - Parameters:
    ///   - host: the raw `Host` header or `:authority` (a port is stripped, case is folded);
    ///     nil when the request has none.
    ///   - path: the request target's path; a query string is ignored.
    @inlinable
    public func lookup(host: Substring?, path: Substring) -> Target? {
        if let slot = self.index.slot(host: host, path: path) { return self.targets[slot] }
        return self.defaultTarget
    }

    /// Every target a request for `host` can reach: the routes of the host pattern chosen for
    /// it (as ``lookup(host:path:)`` chooses), then the default target, if any.
    public func targets(forHost host: Substring?) -> [Target] {
        var targets = self.index.slots(host: host).map { self.targets[$0] }
        if let defaultTarget { targets.append(defaultTarget) }
        return targets
    }

    /// The matching rule, or nil when only the default target (if any) applies.
    public func matchingRule(host: Substring?, path: Substring) -> RouteRule<Target>? {
        index.slot(host: host, path: path).map { rules[$0] }
    }

    /// The host without a port, lowercased; a bracketed IPv6 literal keeps its brackets.
    public static func normalizedHost(_ raw: Substring) -> String {
        RouteIndex.normalizedHost(raw)
    }

    /// The stored key of a prefix path: the path without one trailing `/` (`/` becomes ``).
    static func prefixBase(_ path: String) -> Substring {
        path.hasSuffix("/") ? path.dropLast() : path[...]
    }
}

/// The lookup structure of a ``RouteTable``: slots into its rules by host and path. It does not
/// depend on the target type, so the lookup is compiled once here instead of running through
/// generic metadata on every request (measured: 3% of a proxied request's CPU before).
@usableFromInline
struct RouteIndex: Sendable {
    var exactHosts: [String: HostRoutes] = [:]
    var wildcardHosts: [String: HostRoutes] = [:]
    var anyHost: HostRoutes?

    @usableFromInline
    func slot(host rawHost: Substring?, path rawPath: Substring) -> Int? {
        // Work on UTF-8 code units: '/', '?' and '#' are ASCII, and Substring shares its
        // indices with its UTF-8 view, so no Character (grapheme) is ever formed.
        let bytes = rawPath.utf8
        let path =
            bytes.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }).map {
                rawPath[..<$0]
            } ?? rawPath
        guard let routes = hostRoutes(for: rawHost) else { return nil }
        if !routes.exact.isEmpty, let slot = routes.exact[path] {
            return slot
        }
        if !routes.patterns.isEmpty {
            return routes.patterns.first { $0.pattern.matches(path) }?.slot
        }
        if routes.prefix.isEmpty {
            return nil
        }
        // Candidates, longest first: the whole path, then each prefix ending before a `/`.
        if let slot = routes.prefix[path] {
            return slot
        }
        let pathBytes = path.utf8
        var end = pathBytes.endIndex
        while end > pathBytes.startIndex {
            end = pathBytes.index(before: end)
            if pathBytes[end] == UInt8(ascii: "/"), let slot = routes.prefix[path[..<end]] {
                return slot
            }
        }
        return nil
    }

    /// The slots of every path of the host pattern chosen for `rawHost`.
    func slots(host rawHost: Substring?) -> [Int] {
        guard let routes = self.hostRoutes(for: rawHost) else { return [] }
        return Array(routes.exact.values) + Array(routes.prefix.values)
    }

    private func hostRoutes(for rawHost: Substring?) -> HostRoutes? {
        guard let rawHost, !rawHost.isEmpty, !(exactHosts.isEmpty && wildcardHosts.isEmpty) else { return anyHost }
        let host = Self.normalizedHost(rawHost)
        if !exactHosts.isEmpty, let routes = exactHosts[host] {
            return routes
        }
        if !wildcardHosts.isEmpty, let dot = host.utf8.firstIndex(of: UInt8(ascii: ".")), dot != host.startIndex {
            if let routes = wildcardHosts[String(host[host.utf8.index(after: dot)...])] {
                return routes
            }
        }
        return anyHost
    }

    static func normalizedHost(_ raw: Substring) -> String {
        let bytes = raw.utf8
        var end = bytes.endIndex
        if bytes.first == UInt8(ascii: "[") {
            if let close = bytes.firstIndex(of: UInt8(ascii: "]")) { end = bytes.index(after: close) }
        } else if let colon = bytes.lastIndex(of: UInt8(ascii: ":")) {
            end = colon
        }
        if end > bytes.startIndex, bytes[bytes.index(before: end)] == UInt8(ascii: ".") {
            end = bytes.index(before: end)
        }
        let host = bytes[bytes.startIndex..<end]
        if !host.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) {
            return String(raw[host.startIndex..<host.endIndex])
        }
        return String(
            decoding: host.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 | 0x20 : $0 },
            as: UTF8.self
        )
    }
}

/// The routes of one host pattern. Prefix paths are stored by their base (the rule path
/// without one trailing `/`), so a lookup walks the request path's `/` boundaries.
struct HostRoutes: Sendable {
    var exact: [Substring: Int] = [:]
    var prefix: [Substring: Int] = [:]
    /// Regex hosts: every non-Exact path, longest first (then input order).
    var patterns: [(pattern: PathPattern, slot: Int)] = []
}
