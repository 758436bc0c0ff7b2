import Foundation
import SDPA
import SDPATestSupport
import Testing

// Tolerances. Almost everything here is exact (construction, views, rounding of
// hand-picked values); only the statistics of seeded random tensors are approximate.
/// |sample mean| of 4096 standard normals: the standard error is 1/64 ≈ 0.016, so 0.1 is > 6 sigma.
private let randomMeanTolerance = 0.1
/// |sample variance - 1| of 4096 standard normals: the standard error is ≈ 0.022.
private let randomVarianceTolerance = 0.15

// MARK: - helpers (private: the test module is shared with other files)

/// Row-major values 0, 1, 2, ... as a float32 tensor.
private func iota(_ shape: [Int], dtype: DType = .float32) throws -> Tensor {
    try Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map(Float.init), dtype: dtype)
}

/// The row-major index list of every element of `shape`.
private func allIndices(_ shape: [Int]) -> [[Int]] {
    var result: [[Int]] = [[]]
    for n in shape {
        result = result.flatMap { prefix in (0..<n).map { prefix + [$0] } }
    }
    return result
}

/// Bit patterns, so that NaN == NaN and -0 != +0.
private func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

private let f16Max: Float = 65504

// MARK: - construction

@Suite("Tensor construction")
struct TensorConstructionTests {
    @Test func scalarsAreStoredRowMajor() throws {
        let t = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6] as [Float])
        #expect(t.dtype == .float32)
        #expect(t.shape == [2, 3])
        #expect(t.rank == 2)
        #expect(t.count == 6)
        #expect(t.strides == [3, 1])
        #expect(t.isContiguous)
        #expect(t.scalars == [1, 2, 3, 4, 5, 6])
        #expect(t[0, 0] == 1)
        #expect(t[0, 2] == 3)
        #expect(t[1, 0] == 4)
        #expect(t[1, 2] == 6)
    }

    @Test func doubleScalarsDefaultToFloat64AndStayExact() throws {
        let values: [Double] = [0.1, 1.0 / 3.0, -2.5e-300, 1e300]
        let t = try Tensor(shape: [4], scalars: values)
        #expect(t.dtype == .float64)
        #expect(t.doubleScalars == values)
    }

    @Test func bools() throws {
        let t = try Tensor(shape: [2, 2], bools: [true, false, false, true])
        #expect(t.dtype == .bool)
        #expect(!t.dtype.isFloatingPoint)
        #expect(t.bools == [true, false, false, true])
        #expect(t.scalars == [1, 0, 0, 1])
        #expect(t[1, 1] == 1)
    }

    @Test(arguments: DType.allCases)
    func zeros(dtype: DType) throws {
        let t = try Tensor(zeros: [2, 3, 4], dtype: dtype)
        #expect(t.dtype == dtype)
        #expect(t.shape == [2, 3, 4])
        #expect(t.strides == [12, 4, 1])
        #expect(t.scalars == [Float](repeating: 0, count: 24))
        #expect(t.bools == [Bool](repeating: false, count: 24))
    }

    @Test func zeroDimensionalTensorHoldsOneElement() throws {
        let t = try Tensor(shape: [], scalars: [7] as [Float])
        #expect(t.rank == 0)
        #expect(t.count == 1)
        #expect(t.scalars == [7])
        #expect(t[] == 7)
        let z = try Tensor(zeros: [])
        #expect(z.scalars == [0])
    }

    @Test func emptyShapes() throws {
        for shape in [[0], [2, 0, 3], [0, 0]] {
            let t = try Tensor(zeros: shape)
            #expect(t.count == 0)
            #expect(t.scalars.isEmpty)
            let u = try Tensor(shape: shape, scalars: [Float]())
            #expect(u.shape == shape)
        }
    }

    @Test func contiguousStridesHelper() {
        #expect(Tensor.contiguousStrides(for: []) == [])
        #expect(Tensor.contiguousStrides(for: [5]) == [1])
        #expect(Tensor.contiguousStrides(for: [2, 3, 4]) == [12, 4, 1])
        // A zero dimension must not zero the strides of the dimensions before it (PyTorch does the same).
        #expect(Tensor.contiguousStrides(for: [2, 0, 3]) == [3, 3, 1])
    }

    @Test func floatScalarsCountMismatchNamesArgumentAndShape() throws {
        let error = #expect(throws: SDPAError.self) {
            try Tensor(shape: [2, 3], scalars: [1, 2] as [Float])
        }
        let e = try #require(error)
        guard case let .invalidShape(argument, shape, reason) = e else {
            Issue.record("expected .invalidShape, got \(e)")
            return
        }
        #expect(argument == "shape")
        #expect(shape == [2, 3])
        #expect(reason.contains("6") && reason.contains("2"))
        #expect(e.description.contains("shape"))
        #expect(e.description.contains("[2, 3]"))
        #expect(e.description.contains("scalars"))
    }

    @Test func doubleScalarsCountMismatch() throws {
        let error = #expect(throws: SDPAError.self) {
            try Tensor(shape: [4], scalars: [1, 2, 3] as [Double])
        }
        let e = try #require(error)
        guard case let .invalidShape(argument, shape, _) = e else {
            Issue.record("expected .invalidShape, got \(e)")
            return
        }
        #expect(argument == "shape")
        #expect(shape == [4])
        #expect(e.description.contains("[4]"))
        #expect(e.description.contains("scalars has 3"))
    }

    @Test func boolsCountMismatch() throws {
        let error = #expect(throws: SDPAError.self) {
            try Tensor(shape: [2, 2], bools: [true])
        }
        let e = try #require(error)
        guard case let .invalidShape(argument, shape, _) = e else {
            Issue.record("expected .invalidShape, got \(e)")
            return
        }
        #expect(argument == "shape")
        #expect(shape == [2, 2])
        #expect(e.description.contains("[2, 2]"))
        #expect(e.description.contains("bools"))
    }

    @Test func negativeDimensionsThrow() throws {
        let attempts: [(String, () throws -> Tensor)] = [
            ("zeros", { try Tensor(zeros: [2, -1]) }),
            ("scalars", { try Tensor(shape: [2, -1], scalars: [Float]()) }),
            ("bools", { try Tensor(shape: [2, -1], bools: []) }),
            ("randomNormal", { try Tensor.randomNormal(shape: [2, -1], seed: 1) }),
            ("randomUniform", { try Tensor.randomUniform(shape: [2, -1], seed: 1) }),
            ("randomBools", { try Tensor.randomBools(shape: [2, -1], seed: 1) }),
        ]
        for (name, make) in attempts {
            let error = #expect(throws: SDPAError.self, "\(name)") { try make() }
            guard let e = error else { continue }
            guard case let .invalidShape(argument, shape, reason) = e else {
                Issue.record("\(name): expected .invalidShape, got \(e)")
                continue
            }
            #expect(argument == "shape", "\(name)")
            #expect(shape == [2, -1], "\(name)")
            #expect(reason.contains("dimension 1 is negative"), "\(name)")
            #expect(e.description.contains("shape [2, -1]: ") && !e.description.contains("has shape"), "\(name): \(e.description)")
        }
    }
}

// MARK: - element types and rounding

@Suite("Tensor dtypes and rounding")
struct TensorDTypeTests {
    @Test func byteWidthsAndNames() {
        #expect(DType.float32.byteWidth == 4)
        #expect(DType.float16.byteWidth == 2)
        #expect(DType.bfloat16.byteWidth == 2)
        #expect(DType.float64.byteWidth == 8)
        #expect(DType.bool.byteWidth == 1)
        #expect(DType.allCases.filter(\.isFloatingPoint) == [.float32, .float16, .bfloat16, .float64])
        #expect(DType.bfloat16.description == "bfloat16")
    }

    /// Values exactly representable in every float dtype read back unchanged.
    @Test(arguments: [DType.float32, .float16, .bfloat16, .float64])
    func scalarsForEachFloatDType(dtype: DType) throws {
        let values: [Float] = [0, -0.0, 1, -2, 0.5, 0.375, 96, -0.015625, 3.5]
        let t = try Tensor(shape: [3, 3], scalars: values, dtype: dtype)
        #expect(t.dtype == dtype)
        #expect(bits(t.scalars) == bits(values))
        #expect(t.doubleScalars == values.map(Double.init))
        #expect(t[2, 2] == 3.5)
        #expect(t.bools == values.map { $0 != 0 })
    }

    @Test func scalarsRoundToTheDType() throws {
        let third: Float = 1.0 / 3.0
        #expect(try Tensor(shape: [1], scalars: [third], dtype: .float32).scalars == [third])
        #expect(try Tensor(shape: [1], scalars: [third], dtype: .bfloat16).scalars == [0.333984375])
        #expect(try Tensor(shape: [1], scalars: [third], dtype: .float16).scalars == [0.333251953125])
        #expect(try Tensor(shape: [1], scalars: [1.0 / 3.0] as [Double], dtype: .float32).scalars == [third])
    }

    @Test func bfloat16BitsAndWidening() {
        #expect(BFloat16(1).bitPattern == 0x3F80)
        #expect(BFloat16(-2).bitPattern == 0xC000)
        #expect(BFloat16(bitPattern: 0x3F80).floatValue == 1)
        #expect(Float(BFloat16(bitPattern: 0x4049)) == 3.140625)
        #expect(BFloat16(Float(1.0 / 3.0)).floatValue == 0.333984375)
        #expect(BFloat16(0.5).description == "0.5")
        // Widening is exact for every finite pattern with a nonzero exponent: it is the top half of a Float.
        for pattern: UInt16 in [0x0001, 0x0080, 0x3F81, 0x7F7F, 0x8001, 0xFF7F] {
            #expect(BFloat16(bitPattern: pattern).floatValue.bitPattern == UInt32(pattern) << 16)
            #expect(BFloat16(BFloat16(bitPattern: pattern).floatValue).bitPattern == pattern)
        }
    }

    @Test func bfloat16RoundsToNearestTiesToEven() {
        // (input, expected bits). The bf16 spacing at 1 is 2^-7.
        let cases: [(Float, UInt16)] = [
            (1 + 0x1p-8, 0x3F80),               // tie between 1 (even) and 1+2^-7 -> 1
            (1 + 3 * 0x1p-8, 0x3F82),           // tie between 1+2^-7 (odd) and 1+2^-6 (even) -> 1+2^-6
            (1 + 0x1p-8 + 0x1p-23, 0x3F81),     // just above the tie -> up
            (1 + 0x1p-8 - 0x1p-23, 0x3F80),     // just below the tie -> down
            (-(1 + 0x1p-8), 0xBF80),            // symmetric for negatives
            (-(1 + 3 * 0x1p-8), 0xBF82),
            (Float(bitPattern: 0x0000_8000), 0x0000),  // subnormal tie, even -> down
            (Float(bitPattern: 0x0001_8000), 0x0002),  // subnormal tie, odd -> up
            (Float.leastNonzeroMagnitude, 0x0000),
            (Float(bitPattern: 0x7F7F_7FFF), 0x7F7F),  // just below the midpoint to 2^128: largest finite bf16
            (Float.greatestFiniteMagnitude, 0x7F80),   // above that midpoint: rounds to +inf
            (-Float.greatestFiniteMagnitude, 0xFF80),
            (0, 0x0000),
            (-0.0, 0x8000),
        ]
        for (input, expected) in cases {
            let got = BFloat16(input).bitPattern
            #expect(got == expected, "BFloat16(\(input)) = 0x\(String(got, radix: 16)), expected 0x\(String(expected, radix: 16))")
        }
    }

    @Test func bfloat16KeepsNaNAndInfinity() {
        #expect(BFloat16(Float.infinity).bitPattern == 0x7F80)
        #expect(BFloat16(-Float.infinity).bitPattern == 0xFF80)
        #expect(BFloat16(Float.infinity).floatValue == .infinity)
        #expect(BFloat16(-Float.infinity).floatValue == -.infinity)
        let nans: [Float] = [
            .nan, -.nan, .signalingNaN,
            Float(bitPattern: 0x7F80_0001),  // payload only in the low half: truncation alone would give +inf
            Float(bitPattern: 0xFF80_0001),
            Float(bitPattern: 0x7FFF_FFFF),  // rounding up would carry out of the exponent
        ]
        for nan in nans {
            let b = BFloat16(nan)
            #expect(b.floatValue.isNaN, "BFloat16(NaN 0x\(String(nan.bitPattern, radix: 16))) = 0x\(String(b.bitPattern, radix: 16))")
            #expect((b.bitPattern & 0x8000 != 0) == (nan.sign == .minus), "the sign of NaN is kept")
        }
    }

    /// (float32 input, expected float16 value) around ties, the overflow threshold and subnormals.
    private static let float16Cases: [(Float, Float)] = [
        (1 + 0x1p-11, 1),                         // tie, even -> down (spacing at 1 is 2^-10)
        (1 + 3 * 0x1p-11, 1 + 0x1p-9),            // tie, odd -> up
        (1 + 0x1p-11 + 0x1p-20, 1 + 0x1p-10),     // above the tie
        (-(1 + 0x1p-11), -1),
        (f16Max, f16Max),
        (65519, f16Max),                          // below the midpoint to 2^16
        (65520, .infinity),                       // the midpoint ties away to infinity (even)
        (-65520, -.infinity),
        (0x1p-24, 0x1p-24),                       // the smallest subnormal
        (0x1p-25, 0),                             // tie between 0 (even) and 2^-24
        (3 * 0x1p-25, 0x1p-23),                   // tie between 2^-24 (odd) and 2^-23
        (0x1p-14, 0x1p-14),                       // the smallest normal
        (.infinity, .infinity),
        (-.infinity, -.infinity),
        (-0.0, -0.0),
    ]

    @Test func float16ConversionRoundsToNearestTiesToEven() throws {
        let inputs = Self.float16Cases.map(\.0) + [.nan]
        let t = try Tensor(shape: [inputs.count], scalars: inputs)
        let half = try t.converted(to: .float16)
        #expect(half.dtype == .float16)
        #expect(half.shape == t.shape)
        let got = half.scalars
        for (i, (input, expected)) in Self.float16Cases.enumerated() {
            #expect(got[i].bitPattern == expected.bitPattern, "float16(\(input)) = \(got[i]), expected \(expected)")
        }
        #expect(got.last!.isNaN, "NaN stays NaN")
        // The constructor rounds the same way.
        #expect(bits(try Tensor(shape: [inputs.count], scalars: inputs, dtype: .float16).scalars) == bits(got))
    }

    @Test func bfloat16ConversionMatchesBFloat16Init() throws {
        let inputs: [Float] = [1 + 0x1p-8, 1 + 3 * 0x1p-8, 1 + 0x1p-8 + 0x1p-23, .greatestFiniteMagnitude, .infinity, -.infinity, 0.1, -7.3]
        let t = try Tensor(shape: [inputs.count], scalars: inputs).converted(to: .bfloat16)
        #expect(t.dtype == .bfloat16)
        #expect(bits(t.scalars) == inputs.map { BFloat16($0).floatValue.bitPattern })
        let nan = try Tensor(shape: [1], scalars: [Float.nan]).converted(to: .bfloat16)
        #expect(nan.scalars[0].isNaN)
    }

    /// Converting from float64 must round once, straight to the target, not via float32
    /// (numpy: `np.float16(1 + 2**-11 + 2**-40) == 1.0009765625`).
    @Test func float64ToHalfPrecisionRoundsOnce() throws {
        let toHalf = try Tensor(shape: [1], scalars: [1 + 0x1p-11 + 0x1p-40] as [Double])
        let toBF16 = try Tensor(shape: [1], scalars: [1 + 0x1p-8 + 0x1p-40] as [Double])
        let constructed = try Tensor(shape: [1], scalars: [1 + 0x1p-11 + 0x1p-40] as [Double], dtype: .float16)
        #expect(try toHalf.converted(to: .float16).scalars == [1 + 0x1p-10])
        #expect(try toBF16.converted(to: .bfloat16).scalars == [1 + 0x1p-7])
        #expect(constructed.scalars == [1 + 0x1p-10])
    }

    @Test func conversionBetweenDTypes() throws {
        let t = try Tensor(shape: [4], scalars: [0, 1.5, -2, 0.25] as [Float])
        #expect(try t.converted(to: .float64).doubleScalars == [0, 1.5, -2, 0.25])
        #expect(try t.converted(to: .float64).dtype == .float64)
        #expect(try t.converted(to: .bool).bools == [false, true, true, true])
        #expect(try t.converted(to: .bool).converted(to: .float32).scalars == [0, 1, 1, 1])
        // Same dtype: the tensor itself (strides and all).
        let view = try t.reshaped([2, 2]).transposed(0, 1)
        #expect(try view.converted(to: .float32).strides == view.strides)
        // A non-contiguous source converts in row-major order.
        #expect(try view.converted(to: .float64).doubleScalars == [0, -2, 1.5, 0.25])
        #expect(try view.converted(to: .float64).isContiguous)
    }
}

// MARK: - views

@Suite("Tensor views")
struct TensorViewTests {
    @Test func permutedIsAStridedView() throws {
        let t = try iota([2, 3, 4])
        let p = try t.permuted([2, 0, 1])
        #expect(p.shape == [4, 2, 3])
        #expect(p.strides == [1, 12, 4], "a permutation reorders strides instead of copying")
        #expect(!p.isContiguous)
        for idx in allIndices(p.shape) {
            #expect(p[idx[0], idx[1], idx[2]] == t[idx[1], idx[2], idx[0]])
        }
        // Permuting back restores the original layout.
        let back = try p.permuted([1, 2, 0])
        #expect(back.strides == t.strides)
        #expect(back.isContiguous)
        #expect(back.scalars == t.scalars)
    }

    @Test func permutedRejectsNonPermutations() throws {
        let t = try iota([2, 3, 4])
        for axes in [[0, 0, 1], [0, 1], [0, 1, 2, 3], [0, 1, 3], [-1, 0, 1]] {
            let error = #expect(throws: SDPAError.self) { try t.permuted(axes) }
            #expect(error == .invalidAxes(argument: "axes", axes: axes, shape: [2, 3, 4]))
            #expect(error?.description.contains("[2, 3, 4]") == true)
        }
    }

    @Test func transposedWithNegativeAxes() throws {
        let t = try iota([2, 3, 4, 5])
        let a = try t.transposed(1, 2)
        #expect(a.shape == [2, 4, 3, 5])
        #expect(a.strides == [60, 5, 20, 1])
        let b = try t.transposed(-1, -2)
        let c = try t.transposed(2, 3)
        #expect(b.shape == [2, 3, 5, 4])
        #expect(b.strides == c.strides)
        #expect(b.scalars == c.scalars)
        #expect(try t.transposed(-4, 3).strides == t.transposed(0, 3).strides)
        #expect(try t.transposed(1, 1).scalars == t.scalars)
        for idx in allIndices(b.shape) {
            #expect(b[idx[0], idx[1], idx[2], idx[3]] == t[idx[0], idx[1], idx[3], idx[2]])
        }
    }

    @Test func transposedRejectsOutOfRangeAxes() throws {
        let t = try iota([2, 3])
        for (a, b) in [(0, 2), (-3, 0), (5, -5)] {
            let error = #expect(throws: SDPAError.self) { try t.transposed(a, b) }
            #expect(error == .invalidAxes(argument: "transposed axes", axes: [a, b], shape: [2, 3]))
        }
    }

    @Test func reshapedContiguousIsAView() throws {
        let t = try iota([2, 3, 4])
        let r = try t.reshaped([6, -1])
        #expect(r.shape == [6, 4])
        #expect(r.strides == [4, 1])
        #expect(r.scalars == t.scalars)
        #expect(try t.reshaped([-1]).shape == [24])
        #expect(try t.reshaped([4, -1, 2]).shape == [4, 3, 2])
        #expect(try t.reshaped([1, 24, 1]).scalars == t.scalars)
        #expect(try Tensor(zeros: [2, 0, 3]).reshaped([-1, 3]).shape == [0, 3])
        // As in PyTorch, -1 next to a 0 is ambiguous for an empty tensor.
        #expect(throws: SDPAError.reshape(from: [2, 0, 3], to: [0, -1])) { try Tensor(zeros: [2, 0, 3]).reshaped([0, -1]) }
        #expect(try Tensor(shape: [], scalars: [5] as [Float]).reshaped([1, 1]).scalars == [5])
    }

    @Test func reshapedNonContiguousCopiesInRowMajorOrder() throws {
        let t = try iota([2, 3])                      // [[0 1 2] [3 4 5]]
        let tt = try t.transposed(0, 1)               // [[0 3] [1 4] [2 5]]
        let r = try tt.reshaped([-1])
        #expect(r.scalars == [0, 3, 1, 4, 2, 5])
        #expect(r.isContiguous)
        #expect(r.strides == [1])
        #expect(t.scalars == [0, 1, 2, 3, 4, 5], "the source is untouched")
    }

    @Test func reshapedErrors() throws {
        let t = try iota([2, 3])
        for shape in [[4, 2], [-1, -1], [-2, 3], [4, -1], [0, -1], [7]] {
            let error = #expect(throws: SDPAError.self, "\(shape)") { try t.reshaped(shape) }
            #expect(error == .reshape(from: [2, 3], to: shape))
            #expect(error?.description.contains("[2, 3]") == true)
            #expect(error?.description.contains("\(shape)") == true)
        }
    }

    @Test func contiguousCopiesOnlyWhenNeeded() throws {
        let t = try iota([3, 4])
        let same = try t.contiguous()
        #expect(same.strides == t.strides && same.scalars == t.scalars)
        let tt = try t.transposed(0, 1)
        let c = try tt.contiguous()
        #expect(!tt.isContiguous)
        #expect(c.isContiguous)
        #expect(c.shape == [4, 3])
        #expect(c.strides == [3, 1])
        #expect(c.scalars == tt.scalars)
        let broadcast = try Tensor(shape: [1, 3], scalars: [1, 2, 3] as [Float]).broadcast(to: [2, 3])
        let bc = try broadcast.contiguous()
        #expect(bc.strides == [3, 1])
        #expect(bc.scalars == [1, 2, 3, 1, 2, 3])
    }

    @Test func isContiguous() throws {
        let t = try iota([2, 3, 4])
        #expect(t.isContiguous)
        #expect(try !t.transposed(0, 2).isContiguous)
        #expect(try !t.permuted([1, 0, 2]).isContiguous)
        #expect(try !Tensor(zeros: [1, 4]).broadcast(to: [3, 4]).isContiguous)
        // Size-1 dimensions do not matter, whatever their strides.
        let column = try iota([3, 1]).transposed(0, 1)    // [1, 3] with strides [1, 1]
        #expect(column.isContiguous)
        #expect(try iota([1, 5]).broadcast(to: [1, 1, 5]).isContiguous)
        #expect(try Tensor(zeros: []).isContiguous)
        #expect(try Tensor(zeros: [0]).isContiguous)
    }

    /// A freshly made empty tensor is laid out row-major by construction (PyTorch: always contiguous).
    @Test func emptyTensorsAreContiguous() throws {
        let (a, b) = (try Tensor(zeros: [2, 0, 3]), try Tensor(zeros: [3, 0]))
        #expect(a.isContiguous)
        #expect(b.isContiguous)
    }

    struct BroadcastCase: CustomTestStringConvertible, Sendable {
        var shape: [Int]
        var target: [Int]
        var strides: [Int]
        var testDescription: String { "\(shape) -> \(target)" }
    }

    // Scores shape [B, H, L, S] = [2, 3, 4, 5] unless stated; expected strides of a contiguous source.
    static let broadcastCases: [BroadcastCase] = [
        .init(shape: [4, 5], target: [2, 3, 4, 5], strides: [0, 0, 5, 1]),             // [L, S]
        .init(shape: [1, 5], target: [2, 3, 4, 5], strides: [0, 0, 0, 1]),             // [1, S]
        .init(shape: [4, 1], target: [2, 3, 4, 5], strides: [0, 0, 1, 0]),             // [L, 1]
        .init(shape: [5], target: [2, 3, 4, 5], strides: [0, 0, 0, 1]),                // [S]
        .init(shape: [], target: [2, 3, 4, 5], strides: [0, 0, 0, 0]),                 // scalar
        .init(shape: [3, 4, 5], target: [2, 3, 4, 5], strides: [0, 20, 5, 1]),         // [H, L, S]
        .init(shape: [1, 4, 5], target: [2, 3, 4, 5], strides: [0, 0, 5, 1]),          // [1, L, S]
        .init(shape: [2, 1, 4, 5], target: [2, 3, 4, 5], strides: [20, 0, 5, 1]),      // [B, 1, L, S]
        .init(shape: [1, 3, 1, 5], target: [2, 3, 4, 5], strides: [0, 5, 0, 1]),       // [1, H, 1, S]
        .init(shape: [2, 1, 1, 5], target: [2, 3, 4, 5], strides: [5, 0, 0, 1]),       // [B, 1, 1, S] key padding
        .init(shape: [2, 3, 4, 5], target: [2, 3, 4, 5], strides: [60, 20, 5, 1]),     // full
        .init(shape: [1, 2, 3, 4, 5], target: [2, 3, 4, 5], strides: [60, 20, 5, 1]),  // 5-D, leading 1
        .init(shape: [1, 1, 1, 4, 5], target: [2, 3, 4, 5], strides: [0, 0, 5, 1]),    // 5-D, leading 1s
        .init(shape: [1, 1, 4, 5], target: [3, 4, 5], strides: [0, 5, 1]),             // 4-D mask, 3-D scores
        .init(shape: [3, 4, 5], target: [3, 4, 5], strides: [20, 5, 1]),
        .init(shape: [1, 1], target: [1, 1], strides: [0, 0]),                         // size-1 target dims get stride 0
    ]

    @Test(arguments: broadcastCases)
    func broadcastPlacements(_ c: BroadcastCase) throws {
        let source = try iota(c.shape)
        #expect(source.broadcastStrides(to: c.target) == c.strides)
        let view = try source.broadcast(to: c.target)
        #expect(view.shape == c.target)
        #expect(view.strides == c.strides)
        #expect(view.dtype == source.dtype)
        // Every element of the view is the source element found by aligning from the right.
        let lead = c.target.count - c.shape.count
        for idx in allIndices(c.target) {
            var src = [Int]()
            for d in 0..<c.shape.count {
                let t = d + lead
                src.append(t >= 0 && c.shape[d] != 1 ? idx[t] : 0)
            }
            let flat = zip(src, Tensor.contiguousStrides(for: c.shape)).map(*).reduce(0, +)
            #expect(view.scalars[zip(idx, Tensor.contiguousStrides(for: c.target)).map(*).reduce(0, +)] == Float(flat))
        }
    }

    @Test func broadcastOfAView() throws {
        // A transposed [S, L] tensor viewed as [L, S] keeps its own strides when broadcast.
        let sl = try iota([5, 4])
        let ls = try sl.transposed(0, 1)
        #expect(ls.broadcastStrides(to: [2, 3, 4, 5]) == [0, 0, 1, 4])
        let view = try ls.broadcast(to: [2, 3, 4, 5])
        #expect(view[1, 2, 3, 4] == sl[4, 3])
    }

    @Test(arguments: [
        ([3, 5], [2, 3, 4, 5]),        // H where L belongs
        ([4, 6], [2, 3, 4, 5]),
        ([3, 4, 5], [2, 4, 5]),
        ([2, 2, 3, 4, 5], [2, 3, 4, 5]),  // 5-D with a leading dimension that is not 1
        ([2, 3, 4, 5], [4, 5]),
        ([0, 5], [2, 3, 4, 5]),
        ([4, 5], [2, 3, 4, 0]),
    ])
    func notBroadcastable(shape: [Int], target: [Int]) throws {
        let t = try Tensor(zeros: shape, dtype: .bool)
        #expect(t.broadcastStrides(to: target) == nil)
        let error = #expect(throws: SDPAError.self) { try t.broadcast(to: target) }
        #expect(error == .maskNotBroadcastable(mask: shape, target: target))
        #expect(error?.description.contains("\(shape)") == true)
        #expect(error?.description.contains("\(target)") == true)
    }
}

// MARK: - copy on write

@Suite("Tensor copy-on-write")
struct TensorCopyOnWriteTests {
    @Test func writingACopyLeavesTheOriginal() throws {
        let original = try iota([2, 3])
        var copy = original
        copy[0, 1] = 42
        #expect(copy[0, 1] == 42)
        #expect(copy.scalars == [0, 42, 2, 3, 4, 5])
        #expect(original.scalars == [0, 1, 2, 3, 4, 5])
        var copy2 = copy
        copy2[1, 2] = -1
        #expect(copy.scalars == [0, 42, 2, 3, 4, 5])
        #expect(copy2.scalars == [0, 42, 2, 3, 4, -1])
    }

    @Test func writingAUniqueTensorInPlace() throws {
        var t = try iota([2, 2])
        t[1, 0] = 9
        t[1, 0] += 1
        #expect(t.scalars == [0, 1, 10, 3])
        var z = try Tensor(shape: [], scalars: [1] as [Float])
        z[] = 3
        #expect(z.scalars == [3])
    }

    @Test func writingThroughABroadcastViewChangesOneElement() throws {
        let row = try Tensor(shape: [1, 3], scalars: [1, 2, 3] as [Float])
        var view = try row.broadcast(to: [2, 3])
        view[0, 1] = 7
        #expect(view.scalars == [1, 7, 3, 1, 2, 3], "the other row, which shared the element, is unchanged")
        #expect(view[1, 1] == 2)
        #expect(row.scalars == [1, 2, 3])

        // Also when the view is the only owner of its storage.
        var unique = try Tensor(shape: [3], scalars: [1, 2, 3] as [Float]).broadcast(to: [4, 3])
        unique[2, 0] = -5
        #expect(unique.scalars == [1, 2, 3, 1, 2, 3, -5, 2, 3, 1, 2, 3])
    }

    @Test func writingThroughATransposedView() throws {
        let t = try iota([2, 3])
        var tt = try t.transposed(0, 1)
        tt[2, 1] = 50      // t[1, 2]
        #expect(tt.scalars == [0, 3, 1, 4, 2, 50])
        #expect(t.scalars == [0, 1, 2, 3, 4, 5])

        // A view that is the sole owner writes in place, at the right element.
        var only = try iota([2, 3]).transposed(0, 1)
        only[0, 1] = 30    // row 1, column 0 of the source
        #expect(only.scalars == [0, 30, 1, 4, 2, 5])
    }

    @Test func writingRoundsToTheDType() throws {
        var half = try Tensor(zeros: [2], dtype: .float16)
        half[0] = 1 + 0x1p-11
        half[1] = 1 + 3 * 0x1p-11
        #expect(half.scalars == [1, 1 + 0x1p-9])
        var bf = try Tensor(zeros: [1], dtype: .bfloat16)
        bf[0] = 1 + 3 * 0x1p-8
        #expect(bf.scalars == [1 + 0x1p-6])
        var mask = try Tensor(zeros: [2], dtype: .bool)
        mask[1] = 0.5
        #expect(mask.bools == [false, true])
        var f64 = try Tensor(zeros: [1], dtype: .float64)
        f64[0] = 0.1
        #expect(f64.doubleScalars == [Double(Float(0.1))])
    }
}

// MARK: - random

@Suite("Seeded random tensors")
struct TensorRandomTests {
    @Test func normalIsReproducibleAndSeedDependent() throws {
        let a = try Tensor.randomNormal(shape: [4, 8], seed: 7)
        let b = try Tensor.randomNormal(shape: [4, 8], seed: 7)
        let c = try Tensor.randomNormal(shape: [4, 8], seed: 8)
        #expect(a.shape == [4, 8] && a.dtype == .float32)
        expectIdentical(a, b, "the same seed")
        #expect(a.scalars != c.scalars)
        #expect(zip(a.scalars, c.scalars).filter { $0 == $1 }.count < 2)
        #expect(a.scalars.allSatisfy { $0.isFinite })
        // dtype rounds the same samples (to within float16's half-ulp, 2^-11 relative).
        let half = try Tensor.randomNormal(shape: [4, 8], seed: 7, dtype: .float16)
        #expect(half.dtype == .float16)
        expectClose(half, a, Tolerance(atol: 0x1p-24, rtol: 0x1p-11), "float16 samples", dtype: .float16)
    }

    @Test func normalStatistics() throws {
        let x = try Tensor.randomNormal(shape: [4096], seed: 2024).doubleScalars
        let mean = x.reduce(0, +) / Double(x.count)
        let variance = x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(x.count - 1)
        #expect(abs(mean) < randomMeanTolerance)
        #expect(abs(variance - 1) < randomVarianceTolerance)
    }

    @Test func uniformIsReproducibleAndInRange() throws {
        let a = try Tensor.randomUniform(shape: [64], in: -2...3, seed: 1)
        let b = try Tensor.randomUniform(shape: [64], in: -2...3, seed: 1)
        let c = try Tensor.randomUniform(shape: [64], in: -2...3, seed: 2)
        expectIdentical(a, b, "the same seed")
        #expect(a.scalars != c.scalars)
        #expect(a.scalars.allSatisfy { (-2...3).contains($0) })
        #expect(try Tensor.randomUniform(shape: [64], seed: 1).scalars.allSatisfy { (0...1).contains($0) })
        #expect(try Tensor.randomUniform(shape: [3], seed: 1, dtype: .float64).dtype == .float64)
    }

    @Test func boolsAreReproducibleAndFollowTheProbability() throws {
        let a = try Tensor.randomBools(shape: [256], probability: 0.25, seed: 3)
        let b = try Tensor.randomBools(shape: [256], probability: 0.25, seed: 3)
        let c = try Tensor.randomBools(shape: [256], probability: 0.25, seed: 4)
        #expect(a.dtype == .bool)
        #expect(a.bools == b.bools)
        #expect(a.bools != c.bools)
        let trues = a.bools.filter { $0 }.count
        #expect((32...96).contains(trues), "about a quarter of 256, got \(trues)")
        #expect(try Tensor.randomBools(shape: [16], probability: 0, seed: 1).bools.allSatisfy { !$0 })
        #expect(try Tensor.randomBools(shape: [16], probability: 1, seed: 1).bools.allSatisfy { $0 })
    }

    @Test func emptyAndScalarShapes() throws {
        #expect(try Tensor.randomNormal(shape: [0, 3], seed: 1).count == 0)
        #expect(try Tensor.randomNormal(shape: [], seed: 1).scalars.count == 1)
    }
}

@Suite("Tensor concatenation")
struct TensorConcatenationTests {
    /// Parts laid out every way a caller hands them over — contiguous, permuted, sliced, broadcast, with
    /// dimensions of 1 and of 0 — joined along every axis, against the element-by-element join.
    @Test(arguments: [DType.float32, .float16, .bfloat16])
    func joinsEveryLayoutAlongEveryAxis(_ dtype: DType) throws {
        let base = try iota([3, 4, 5, 6], dtype: dtype)
        let parts: [Tensor] = [
            base,
            try base.permuted([0, 2, 1, 3]).reshaped([3, 4, 5, 6]).transposed(1, 2).transposed(1, 2),
            try iota([3, 6, 5, 4], dtype: dtype).permuted([0, 3, 2, 1]),
            try iota([3, 4, 9, 6], dtype: dtype).sliced(2..<7, along: 2),
            try iota([1, 4, 1, 6], dtype: dtype).broadcast(to: [3, 4, 5, 6]),
        ]
        for axis in 0..<4 {
            var pieces = parts.map { part -> Tensor in
                // Each part cut to a different size along the axis (1 to its full size), one of them to 0.
                let size = part.shape[axis]
                return try! part.sliced(0..<(axis == 2 ? size - 1 : size), along: axis)
            }
            pieces.append(try parts[2].sliced(0..<0, along: axis))
            let joined = try Tensor.concatenated(pieces, along: axis)
            var expected = [Double]()
            let shape = joined.shape
            for index in allIndices(shape) {
                var at = index[axis], n = 0
                while at >= pieces[n].shape[axis] { at -= pieces[n].shape[axis]; n += 1 }
                var local = index
                local[axis] = at
                expected.append(try pieces[n].sliced(local[0]..<(local[0] + 1), along: 0).sliced(local[1]..<(local[1] + 1), along: 1)
                    .sliced(local[2]..<(local[2] + 1), along: 2).sliced(local[3]..<(local[3] + 1), along: 3).doubleScalars[0])
            }
            #expect(joined.dtype == dtype)
            #expect(joined.doubleScalars == expected, "axis \(axis)")
        }
    }
}
