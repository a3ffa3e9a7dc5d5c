/// A 128-bit unsigned integer holding an address (IPv4 uses the low 32 bits).
///
/// The stdlib's `UInt128` needs macOS 15; this small type keeps the module on macOS 14.
struct AddressValue: Hashable, Comparable, Sendable {
    var high: UInt64
    var low: UInt64

    static func < (lhs: AddressValue, rhs: AddressValue) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    /// A value whose lowest `bits` bits are one (0...128).
    static func lowMask(_ bits: Int) -> AddressValue {
        switch bits {
        case ...0: AddressValue(high: 0, low: 0)
        case 1..<64: AddressValue(high: 0, low: (1 << UInt64(bits)) - 1)
        case 64: AddressValue(high: 0, low: .max)
        case 65..<128: AddressValue(high: (1 << UInt64(bits - 64)) - 1, low: .max)
        default: AddressValue(high: .max, low: .max)
        }
    }

    /// The value with its lowest `bits` bits set to one.
    func settingLowBits(_ bits: Int) -> AddressValue {
        let mask = AddressValue.lowMask(bits)
        return AddressValue(high: high | mask.high, low: low | mask.low)
    }

    /// The value with its lowest `bits` bits cleared.
    func clearingLowBits(_ bits: Int) -> AddressValue {
        let mask = AddressValue.lowMask(bits)
        return AddressValue(high: high & ~mask.high, low: low & ~mask.low)
    }

    /// `self + 2^bits`, or nil when the sum does not fit in 128 bits.
    func adding(powerOfTwo bits: Int) -> AddressValue? {
        if bits >= 128 { return nil }
        if bits >= 64 {
            let (sum, overflow) = high.addingReportingOverflow(1 << UInt64(bits - 64))
            return overflow ? nil : AddressValue(high: sum, low: low)
        }
        let (sum, overflow) = low.addingReportingOverflow(1 << UInt64(bits))
        if !overflow { return AddressValue(high: high, low: sum) }
        let (carried, overflowAgain) = high.addingReportingOverflow(1)
        return overflowAgain ? nil : AddressValue(high: carried, low: sum)
    }

    /// The number of trailing zero bits (128 for zero).
    var trailingZeroBitCount: Int {
        if low != 0 { return low.trailingZeroBitCount }
        if high != 0 { return 64 + high.trailingZeroBitCount }
        return 128
    }
}
