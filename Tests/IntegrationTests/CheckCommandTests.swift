import Foundation
import Testing

private let ingressClass = """
    apiVersion: networking.k8s.io/v1
    kind: IngressClass
    metadata: {name: nginx}
    spec: {controller: portico.dev/ingress}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: web}
    spec:
      ports: [{name: http, port: 80}]

    """

@Suite(.serialized) struct CheckCommandTests {
    @Test func validManifestsExitZero() throws {
        let directory = try ManifestDirectory([
            "base.yaml": ingressClass,
            "nested/app.yml": """
            apiVersion: networking.k8s.io/v1
            kind: Ingress
            metadata: {name: app}
            spec:
              ingressClassName: nginx
              rules:
              - host: app.example.test
                http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}]}
            """,
            "notes.txt": "not a manifest: ignored",
        ])
        let output = try PorticoProcess.run(["check", directory.path])
        #expect(output.status == 0, "\(output.stdout)\(output.stderr)")
        #expect(output.stdout == "")
        #expect(output.stderr.contains("0 errors, 0 warnings"))
    }

    /// Each broken manifest: the line and column it must point at, and words the message must hold.
    @Test(arguments: [
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: web2}\nspec:\n  ports: [{port: 99999}]\n",
            "5:18", "spec.ports[0].port: 99999 is not a valid port"
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: a}\nspec:\n  ingressClassName: nginx\n  rules:\n  - host: \"*.*.example.com\"\n",
            "7:11", "spec.rules[0].host: \"*.*.example.com\": only the first label may be a wildcard"
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: a}\nspec:\n  ingressClassName: nginx\n  rules:\n  - http:\n      paths:\n      - path: /\n        backend: {service: {name: web, port: {number: 80}}}\n",
            "9:9", "spec.rules[0].http.paths[0].pathType: required field is missing"
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: Web\nspec: {ports: [{port: 80}]}\n",
            "4:9", "metadata.name: \"Web\" must consist of lowercase letters"
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: x\n",
            "4:1", "invalid YAML"
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: a}\nspec:\n  ingressClassName: nginx\n  defaultBackend: {service: {name: web, port: {number: 8080}}}\n",
            "6:19", "Service \"default/web\" has no port 8080; it has http (80)"
        ),
    ])
    func brokenManifestPointsAtTheLine(text: String, position: String, words: String) throws {
        let directory = try ManifestDirectory(["base.yaml": ingressClass, "broken.yaml": text])
        let output = try PorticoProcess.run(["check", directory.path])
        #expect(output.status == 1, "\(output.stdout)")
        let prefix = directory.path + "/broken.yaml:" + position + ": error: "
        #expect(
            output.lines.contains { $0.hasPrefix(prefix) && $0.contains(words) },
            "expected a line starting \(prefix) containing \(words), got:\n\(output.stdout)"
        )
    }

    @Test func binaryEmptyAndHugeFiles() throws {
        let directory = try ManifestDirectory(["empty.yaml": "\n\n"])
        try directory.write("binary.yaml", Data([0x61, 0x3A, 0x20, 0x00, 0xFF, 0x10]))
        try directory.write("huge.yaml", Data(repeating: 0x61, count: 9 * 1024 * 1024))
        let output = try PorticoProcess.run(["check", directory.path])
        #expect(output.status == 1)
        let text = output.stdout
        #expect(text.contains("/binary.yaml:1:4: error: file contains a NUL byte"))
        #expect(text.contains("/empty.yaml:1:1: warning: file is empty"))
        #expect(text.contains("/huge.yaml:1:1: error: file is 9 MiB; manifest files over 8 MiB are refused"))
    }

    @Test func usageErrorsExitTwo() throws {
        #expect(try PorticoProcess.run(["check"]).status == 2)
        #expect(try PorticoProcess.run(["plan", "--format", "xml", "."]).status == 2)
        #expect(try PorticoProcess.run(["frobnicate"]).status == 2)
    }

    @Test func missingPathIsAnError() throws {
        let output = try PorticoProcess.run(["check", "/nonexistent/portico"])
        #expect(output.status == 1)
        #expect(output.stdout.contains("/nonexistent/portico:1:1: error: no such file or directory"))
    }

    @Test func versionPrints() throws {
        let output = try PorticoProcess.run(["version"])
        #expect(output.status == 0)
        #expect(output.stdout.hasPrefix("portico "))
    }
}
