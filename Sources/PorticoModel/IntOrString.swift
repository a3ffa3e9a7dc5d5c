/// A Kubernetes IntOrString value.
public enum IntOrString: Hashable, Sendable, CustomStringConvertible {
    case int(Int)
    case string(String)

    public var description: String {
        switch self {
        case .int(let value): return String(value)
        case .string(let value): return value
        }
    }
}
