import PorticoRouting
import Testing

/// ingress-nginx `use-regex`: one regex rule makes every non-Exact path of its host a
/// case-insensitive regex anchored at the start, tried longest path first; Exact stays exact.
@Suite struct RegexRouteTests {
    private func table(_ rules: [(String, String, PathType, String, Bool)]) -> RouteTable<String> {
        RouteTable(
            rules: rules.map {
                RouteRule(host: HostPattern($0.0), path: $0.1, pathType: $0.2, target: $0.3, regex: $0.4)
            },
            defaultTarget: nil
        )
    }

    private func lookup(_ table: RouteTable<String>, _ host: String, _ path: String) -> String? {
        table.lookup(host: host[...], path: path[...])
    }

    @Test func oneRegexRuleTurnsEveryPathOfItsHostIntoARegex() {
        // city-guesser of the reference homelab: the API by regex, the web app on "/" from another Ingress.
        let routes = self.table([
            ("game.example.com", "/", .prefix, "web", false),
            ("game.example.com", "/api/v[0-9]+/", .implementationSpecific, "api", true),
            ("game.example.com", "/health", .exact, "health", false),
            ("other.example.com", "/foo", .prefix, "other", false),
        ])
        #expect(self.lookup(routes, "game.example.com", "/api/v2/scores") == "api")
        #expect(self.lookup(routes, "game.example.com", "/API/V10/x?q=1") == "api")
        #expect(self.lookup(routes, "game.example.com", "/api/vX/") == "web")
        #expect(self.lookup(routes, "game.example.com", "/anything") == "web")
        #expect(self.lookup(routes, "game.example.com", "/health") == "health")
        // The "/" Prefix rule became "^/": no longer element-wise on this host...
        #expect(self.lookup(routes, "game.example.com", "/HEALTHZ") == "web")
        // ...but other hosts are untouched.
        #expect(self.lookup(routes, "other.example.com", "/foo/bar") == "other")
        #expect(self.lookup(routes, "other.example.com", "/foobar") == nil)
        #expect(self.lookup(routes, "other.example.com", "/FOO") == nil)
    }

    @Test func longestPatternFirstNotInputOrder() {
        let routes = self.table([
            ("a.test", "/app", .prefix, "short", true),
            ("a.test", "/app/admin", .prefix, "long", true),
        ])
        #expect(self.lookup(routes, "a.test", "/app/admin/users") == "long")
        #expect(self.lookup(routes, "a.test", "/application") == "short")
    }

    @Test func invalidPatternsAreReportedAndLeftOut() {
        let routes = self.table([
            ("a.test", "/ok(/|$)(.*)", .prefix, "ok", true),
            ("a.test", "/broken(", .prefix, "broken", true),
        ])
        #expect(routes.invalidPatterns.map(\.rule) == [1])
        #expect(self.lookup(routes, "a.test", "/ok/x") == "ok")
        // mapTargets keeps the host in regex mode even though its only other rule was dropped.
        let mapped = routes.mapTargets { $0.uppercased() }
        #expect(mapped.lookup(host: "a.test", path: "/OK") == "OK")
    }

    @Test func capturesForRewriteTargets() throws {
        let pattern = try PathPattern("/something(/|$)(.*)")
        #expect(
            pattern.captures(in: "/something/new/path")?.map(String.init) == ["/something/new/path", "/", "new/path"]
        )
        #expect(pattern.captures(in: "/something")?.map(String.init) == ["/something", "", ""])
        #expect(pattern.captures(in: "/other") == nil)
    }
}
