import PorticoAllocation

/// Kubernetes' validation rules for names, labels and ports (apimachinery's validation
/// package), restated. Each returns nil when valid, or the rule that failed.
public enum KubernetesNames {
    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isLowerAlphanumeric(byte) || (byte >= 0x41 && byte <= 0x5A)
    }

    /// RFC 1123 label: at most 63 lowercase alphanumerics or '-', starting and ending alphanumeric.
    public static func dns1123LabelProblem(_ value: String) -> String? {
        let bytes = Array(value.utf8)
        if bytes.isEmpty { return "must not be empty" }
        if bytes.count > 63 { return "must be at most 63 characters (RFC 1123 label)" }
        let valid =
            bytes.allSatisfy { isLowerAlphanumeric($0) || $0 == 0x2D }
            && isLowerAlphanumeric(bytes.first!) && isLowerAlphanumeric(bytes.last!)
        return valid
            ? nil
            : "must consist of lowercase letters, digits and '-', and start and end with a letter or digit (RFC 1123 label)"
    }

    /// RFC 1123 subdomain: at most 253 characters, dot-separated RFC 1123 labels.
    public static func dns1123SubdomainProblem(_ value: String) -> String? {
        if value.isEmpty { return "must not be empty" }
        if value.utf8.count > 253 { return "must be at most 253 characters (RFC 1123 subdomain)" }
        for label in value.split(separator: ".", omittingEmptySubsequences: false)
        where dns1123LabelProblem(String(label)) != nil {
            return
                "must consist of lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit (RFC 1123 subdomain)"
        }
        return nil
    }

    /// RFC 1035 label (Service names): an RFC 1123 label that starts with a letter.
    public static func dns1035LabelProblem(_ value: String) -> String? {
        if let problem = dns1123LabelProblem(value) { return problem }
        if let first = value.utf8.first, first >= 0x30 && first <= 0x39 {
            return "must start with a lowercase letter (RFC 1035 label)"
        }
        return nil
    }

    /// A label or annotation key: optional DNS subdomain prefix and '/', then a name of at
    /// most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric.
    public static func qualifiedNameProblem(_ value: String) -> String? {
        let parts = value.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count > 2 { return "must be a name with an optional prefix and one '/'" }
        if parts.count == 2, let problem = dns1123SubdomainProblem(String(parts[0])) {
            return "prefix \(problem)"
        }
        let name = Array(parts.last!.utf8)
        if name.isEmpty { return "name part must not be empty" }
        if name.count > 63 { return "name part must be at most 63 characters" }
        let valid =
            name.allSatisfy { isAlphanumeric($0) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }
            && isAlphanumeric(name.first!) && isAlphanumeric(name.last!)
        return valid ? nil : "name part must be alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
    }

    /// A label value: empty, or at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric.
    public static func labelValueProblem(_ value: String) -> String? {
        let bytes = Array(value.utf8)
        if bytes.isEmpty { return nil }
        if bytes.count > 63 { return "must be at most 63 characters" }
        let valid =
            bytes.allSatisfy { isAlphanumeric($0) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }
            && isAlphanumeric(bytes.first!) && isAlphanumeric(bytes.last!)
        return valid ? nil : "must be alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
    }

    /// IANA service name (named ports): at most 15 lowercase alphanumerics or '-', with at
    /// least one letter, no '--', not starting or ending with '-'.
    public static func ianaServiceNameProblem(_ value: String) -> String? {
        let bytes = Array(value.utf8)
        if bytes.isEmpty { return "must not be empty" }
        if bytes.count > 15 { return "must be at most 15 characters (IANA service name)" }
        if !bytes.allSatisfy({ isLowerAlphanumeric($0) || $0 == 0x2D }) {
            return "must be lowercase letters, digits and '-' (IANA service name)"
        }
        if !bytes.contains(where: { $0 >= 0x61 && $0 <= 0x7A }) { return "must contain at least one letter" }
        if bytes.first == 0x2D || bytes.last == 0x2D || value.contains("--") {
            return "must not start or end with '-' or contain '--'"
        }
        return nil
    }

    /// A TCP/UDP port number.
    public static func portProblem(_ value: Int) -> String? {
        (1...65535).contains(value) ? nil : "\(value) is not a valid port; it must be between 1 and 65535"
    }

    /// An Ingress rule or TLS host: a DNS name, optionally with `*.` as its whole first
    /// label; no IP address, no port.
    public static func ingressHostProblem(_ host: String) -> String? {
        if IPText.isIPAddress(host) {
            return
                "\"\(host)\" is an IP address; Ingress hosts must be DNS names (leave host empty to match every address)"
        }
        if host.contains(":") {
            return "\"\(host)\" has a port; Ingress hosts are names only (the port comes from the listener)"
        }
        var name = host
        if host.hasPrefix("*.") {
            name = String(host.dropFirst(2))
        } else if host.contains("*") {
            return
                "\"\(host)\": a wildcard must be the whole first label, as in \"*.example.com\""
        }
        if name.contains("*") {
            return "\"\(host)\": only the first label may be a wildcard"
        }
        if let problem = dns1123SubdomainProblem(name) {
            return "\"\(host)\" \(problem)"
        }
        return nil
    }
}

/// Textual IP address checks used by validation (the parsing is PorticoAllocation's).
public enum IPText {
    public static func isIPv4(_ text: String) -> Bool { IPAddress(text)?.family == .ipv4 }

    public static func isIPv6(_ text: String) -> Bool { IPAddress(text)?.family == .ipv6 }

    public static func isIPAddress(_ text: String) -> Bool { IPAddress(text) != nil }
}
