/// Whether a port of an ingress front carries plain HTTP or TLS.
public enum HTTPPortKind: String, Sendable, Hashable {
    case http
    case https

    /// From the port's name, or its appProtocol.
    public init?(service port: Service.Port) {
        guard port.protocol == .tcp else { return nil }
        let hint = (port.appProtocol ?? port.name ?? "").lowercased()
        switch hint {
        case "http", "kubernetes.io/h2c": self = .http
        case "https": self = .https
        default:
            switch port.name?.lowercased() {
            case "http": self = .http
            case "https": self = .https
            default: return nil
            }
        }
    }
}
