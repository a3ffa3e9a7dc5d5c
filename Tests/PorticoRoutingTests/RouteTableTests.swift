import PorticoRouting
import Testing

private func table(_ rules: [(String, String, PathType, String)], default target: String? = nil) -> RouteTable<String> {
    RouteTable(
        rules: rules.map { RouteRule(host: HostPattern($0.0), path: $0.1, pathType: $0.2, target: $0.3) },
        defaultTarget: target
    )
}

private func lookup(_ table: RouteTable<String>, _ host: String?, _ path: String) -> String? {
    table.lookup(host: host?[...], path: path[...])
}

@Suite struct HostMatchingTests {
    @Test func wildcardMatchesExactlyOneLabel() {
        let routes = table([("*.foo.com", "/", .prefix, "wild")])
        #expect(lookup(routes, "bar.foo.com", "/") == "wild")
        #expect(lookup(routes, "baz.bar.foo.com", "/") == nil)
        #expect(lookup(routes, "foo.com", "/") == nil)
        #expect(lookup(routes, ".foo.com", "/") == nil)
    }

    @Test func hostIsComparedWithoutPortAndCaseInsensitively() {
        let routes = table([("Foo.Example.com", "/", .prefix, "a")])
        #expect(lookup(routes, "foo.example.com:8443", "/x") == "a")
        #expect(lookup(routes, "FOO.EXAMPLE.COM", "/x") == "a")
        #expect(lookup(routes, "foo.example.com.", "/x") == "a")
        #expect(lookup(routes, "other.example.com", "/x") == nil)
    }

    @Test func targetsForAHostAreThoseOfTheHostPatternALookupChooses() {
        let routes = table(
            [
                ("a.example.com", "/", .prefix, "a-root"), ("a.example.com", "/x", .exact, "a-x"),
                ("*.example.com", "/", .prefix, "wild"), ("", "/", .prefix, "any"),
            ],
            default: "fallback"
        )
        #expect(Set(routes.targets(forHost: "A.example.com:443")) == ["a-root", "a-x", "fallback"])
        #expect(Set(routes.targets(forHost: "b.example.com")) == ["wild", "fallback"])
        #expect(Set(routes.targets(forHost: "elsewhere.test")) == ["any", "fallback"])
        #expect(Set(routes.targets(forHost: nil)) == ["any", "fallback"])
        #expect(table([("a.example.com", "/", .prefix, "a")]).targets(forHost: "b.test").isEmpty)
    }

    @Test func ipv6LiteralKeepsBrackets() {
        #expect(RouteTable<String>.normalizedHost("[::1]:8080") == "[::1]")
        #expect(RouteTable<String>.normalizedHost("[::1]") == "[::1]")
    }

    @Test func ruleWithoutHostMatchesEveryHostAndMissingHost() {
        let routes = table([("", "/", .prefix, "any")])
        #expect(lookup(routes, "whatever.test", "/a") == "any")
        #expect(lookup(routes, nil, "/a") == "any")
    }

    @Test func exactBeatsWildcardBeatsAny() {
        let routes = table([
            ("", "/", .prefix, "any"),
            ("*.foo.com", "/", .prefix, "wild"),
            ("bar.foo.com", "/", .prefix, "exact"),
        ])
        #expect(lookup(routes, "bar.foo.com", "/x") == "exact")
        #expect(lookup(routes, "qux.foo.com", "/x") == "wild")
        #expect(lookup(routes, "elsewhere.org", "/x") == "any")
    }

    @Test func chosenHostDoesNotFallBackToLessSpecificHosts() {
        let routes = table([
            ("", "/", .prefix, "any"),
            ("bar.foo.com", "/api", .prefix, "api"),
        ])
        #expect(lookup(routes, "bar.foo.com", "/api/v1") == "api")
        #expect(lookup(routes, "bar.foo.com", "/other") == nil)
    }
}

@Suite struct PathMatchingTests {
    @Test func exactIsCaseSensitiveAndSlashSensitive() {
        let routes = table([("", "/foo", .exact, "foo"), ("", "/bar/", .exact, "bar/")])
        #expect(lookup(routes, nil, "/foo") == "foo")
        #expect(lookup(routes, nil, "/foo/") == nil)
        #expect(lookup(routes, nil, "/FOO") == nil)
        #expect(lookup(routes, nil, "/bar/") == "bar/")
        #expect(lookup(routes, nil, "/bar") == nil)
    }

    @Test func prefixIsElementWise() {
        let routes = table([("", "/foo/bar", .prefix, "fb")])
        #expect(lookup(routes, nil, "/foo/bar") == "fb")
        #expect(lookup(routes, nil, "/foo/bar/") == "fb")
        #expect(lookup(routes, nil, "/foo/bar/baz") == "fb")
        #expect(lookup(routes, nil, "/foo/barbaz") == nil)
        #expect(lookup(routes, nil, "/foo") == nil)
    }

    @Test func prefixWithTrailingSlashMatchesWithAndWithoutIt() {
        let routes = table([("", "/aaa/bbb/", .prefix, "ab")])
        #expect(lookup(routes, nil, "/aaa/bbb") == "ab")
        #expect(lookup(routes, nil, "/aaa/bbb/") == "ab")
        #expect(lookup(routes, nil, "/aaa/bbb/ccc") == "ab")
        #expect(lookup(routes, nil, "/aaa/bbbxyz") == nil)
    }

    @Test func rootPrefixMatchesEverything() {
        let routes = table([("", "/", .prefix, "root")])
        for path in ["/", "/a", "/a/b/c", "/a/"] {
            #expect(lookup(routes, nil, path) == "root")
        }
    }

    @Test func implementationSpecificIsPrefix() {
        let routes = table([("", "/docs", .implementationSpecific, "docs")])
        #expect(lookup(routes, nil, "/docs/intro") == "docs")
        #expect(lookup(routes, nil, "/docsx") == nil)
    }

    @Test func longestPathWinsAndExactWinsTies() {
        let routes = table([
            ("", "/", .prefix, "root"),
            ("", "/foo", .prefix, "foo-prefix"),
            ("", "/foo/bar", .prefix, "foobar"),
            ("", "/foo", .exact, "foo-exact"),
        ])
        #expect(lookup(routes, nil, "/foo") == "foo-exact")
        #expect(lookup(routes, nil, "/foo/") == "foo-prefix")
        #expect(lookup(routes, nil, "/foo/bar/x") == "foobar")
        #expect(lookup(routes, nil, "/foo/baz") == "foo-prefix")
        #expect(lookup(routes, nil, "/zzz") == "root")
    }

    @Test func queryStringIsIgnored() {
        let routes = table([("", "/search", .exact, "s")])
        #expect(lookup(routes, nil, "/search?q=1") == "s")
    }
}

@Suite struct ConflictAndDefaultTests {
    @Test func firstRuleWinsDuplicateHostAndPath() {
        let routes = table([
            ("a.test", "/x", .prefix, "older"),
            ("a.test", "/x/", .prefix, "newer"),
            ("a.test", "/x", .exact, "exact"),
        ])
        #expect(lookup(routes, "a.test", "/x/y") == "older")
        #expect(routes.conflicts == [RouteConflict(winner: 0, loser: 1)])
        #expect(routes.rules.count == 2)
    }

    @Test func defaultTargetCatchesUnmatched() {
        let routes = table([("a.test", "/x", .prefix, "x")], default: "fallback")
        #expect(lookup(routes, "a.test", "/y") == "fallback")
        #expect(lookup(routes, "b.test", "/") == "fallback")
        #expect(lookup(routes, "a.test", "/x") == "x")
        #expect(routes.matchingRule(host: "b.test", path: "/") == nil)
    }

    @Test func emptyTableMisses() {
        #expect(RouteTable<String>().lookup(host: "a", path: "/") == nil)
    }

    @Test func manyHostsAllResolve() {
        var rules: [(String, String, PathType, String)] = []
        for index in 0..<2000 {
            rules.append(("h\(index).example.com", "/", .prefix, "root\(index)"))
            rules.append(("h\(index).example.com", "/api", .exact, "api\(index)"))
        }
        let routes = table(rules)
        #expect(lookup(routes, "h1234.example.com", "/api") == "api1234")
        #expect(lookup(routes, "h1999.example.com", "/zz") == "root1999")
        #expect(lookup(routes, "h2000.example.com", "/") == nil)
    }
}
