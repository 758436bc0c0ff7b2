import Foundation

extension Tensor {
    /// A tensor of independent standard-normal samples, the same for the same seed on every platform.
    ///
    /// ```swift
    /// let q = try Tensor.randomNormal(shape: [1, 8, 128, 64], seed: 42)
    /// ```
    /// - Throws: ``SDPAError/invalidShape(argument:shape:reason:)`` for a negative dimension or sizes that
    ///   overflow `Int`; ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when the memory cannot be had.
    public static func randomNormal(shape: [Int], seed: UInt64, dtype: DType = .float32) throws -> Tensor {
        let random = _CounterRandom(seed: seed)
        // Box–Muller from two uniforms per element; 1 - u keeps the logarithm finite.
        return try Tensor(_shape: shape, dtype: dtype, argument: "Tensor.randomNormal") { i -> Double in
            let u1 = 1 - random.unit(UInt64(2 * i)), u2 = random.unit(UInt64(2 * i + 1))
            return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
        }
    }

    /// A tensor of independent samples uniform in `range`, the same for the same seed.
    ///
    /// - Throws: ``SDPAError/invalidShape(argument:shape:reason:)`` for a negative dimension or sizes that
    ///   overflow `Int`; ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when the memory cannot be had.
    public static func randomUniform(
        shape: [Int], in range: ClosedRange<Float> = 0...1, seed: UInt64, dtype: DType = .float32
    ) throws -> Tensor {
        let random = _CounterRandom(seed: seed)
        let width = Double(range.upperBound - range.lowerBound)
        return try Tensor(_shape: shape, dtype: dtype, argument: "Tensor.randomUniform") {
            Double(range.lowerBound) + width * random.unit(UInt64($0))
        }
    }

    /// A boolean tensor whose elements are `true` with probability `probability`, the same for the same seed.
    ///
    /// - Throws: ``SDPAError/invalidShape(argument:shape:reason:)`` for a negative dimension or sizes that
    ///   overflow `Int`; ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when the memory cannot be had.
    public static func randomBools(shape: [Int], probability: Double = 0.5, seed: UInt64) throws -> Tensor {
        let random = _CounterRandom(seed: seed)
        return try Tensor(_shape: shape, dtype: .bool, argument: "Tensor.randomBools") {
            random.unit(UInt64($0)) < probability ? 1 : 0
        }
    }
}
