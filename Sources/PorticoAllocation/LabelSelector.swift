/// A Kubernetes label selector (`matchLabels` and `matchExpressions`), as used by
/// `serviceAllocation.namespaceSelectors` and `serviceAllocation.serviceSelectors`.
///
/// All conditions must hold; the empty selector matches everything.
public struct LabelSelector: Hashable, Sendable, Codable {
    /// Labels that must be present with exactly these values.
    public var matchLabels: [String: String]
    /// Further requirements, all of which must hold.
    public var matchExpressions: [Requirement]

    /// A selector from its two parts.
    public init(matchLabels: [String: String] = [:], matchExpressions: [Requirement] = []) {
        self.matchLabels = matchLabels
        self.matchExpressions = matchExpressions
    }

    /// One `matchExpressions` entry.
    public struct Requirement: Hashable, Sendable, Codable {
        /// The label key.
        public var key: String
        /// How the label is tested.
        public var `operator`: Operator
        /// The values for `In` and `NotIn` (must be empty for `Exists` and `DoesNotExist`).
        public var values: [String]

        /// A requirement from its parts.
        public init(key: String, operator: Operator, values: [String] = []) {
            self.key = key
            self.operator = `operator`
            self.values = values
        }

        /// Whether `labels` satisfy the requirement (Kubernetes semantics: `NotIn` and
        /// `DoesNotExist` hold when the key is absent).
        public func matches(_ labels: [String: String]) -> Bool {
            switch self.operator {
            case .in: labels[key].map(values.contains) ?? false
            case .notIn: labels[key].map { !values.contains($0) } ?? true
            case .exists: labels[key] != nil
            case .doesNotExist: labels[key] == nil
            }
        }

        /// What is wrong with the requirement, if anything.
        public var problem: String? {
            switch self.operator {
            case .in, .notIn:
                values.isEmpty ? "operator \(self.operator.rawValue) needs at least one value" : nil
            case .exists, .doesNotExist:
                values.isEmpty ? nil : "operator \(self.operator.rawValue) takes no values"
            }
        }
    }

    /// A `matchExpressions` operator.
    public enum Operator: String, Hashable, Sendable, Codable, CaseIterable {
        /// The label is present and its value is one of `values`.
        case `in` = "In"
        /// The label is absent, or its value is none of `values`.
        case notIn = "NotIn"
        /// The label is present.
        case exists = "Exists"
        /// The label is absent.
        case doesNotExist = "DoesNotExist"
    }

    /// Whether `labels` satisfy every condition of the selector.
    public func matches(_ labels: [String: String]) -> Bool {
        matchLabels.allSatisfy { labels[$0.key] == $0.value } && matchExpressions.allSatisfy { $0.matches(labels) }
    }
}
