import SDPA
import SDPATestSupport
import Testing

/// The suite's one closeness rule and its bit-identity check, on the cases a looser check misses:
/// NaN where the reference has a number (and the reverse), infinities, shapes and dtypes, and the
/// derived half-precision tolerances.
@Suite("Test support: the comparison rule")
struct ComparisonRuleTests {
    let tolerance = Tolerance(atol: 1e-5, rtol: 1e-5)

    @Test func acceptsValuesWithinTheBound() {
        #expect(closenessFailure([1, 2 + 2e-5, -.infinity, .nan], [1, 2, -.infinity, .nan], shape: [4], tolerance: tolerance) == nil)
    }

    @Test func nanIsNeverClose() throws {
        let failure = try #require(closenessFailure([1, .nan, 3], [1, 2, 3], shape: [3], tolerance: tolerance))
        #expect(failure.contains("element 1 [1] is nan") && failure.contains("NaN pattern differs at 1"))
        #expect(closenessFailure([1, 2, 3], [1, .nan, 3], shape: [3], tolerance: tolerance) != nil, "a number where NaN is expected")
        // NaN first or last: a max() over differences would skip it.
        #expect(closenessFailure([.nan, 2], [1, 2], shape: [2], tolerance: tolerance) != nil)
        #expect(closenessFailure([1, .nan], [1, 2], shape: [2], tolerance: tolerance) != nil)
    }

    @Test func infinitiesMustMatchExactly() {
        #expect(closenessFailure([.infinity], [1e30], shape: [1], tolerance: Tolerance(atol: 1, rtol: 1)) != nil)
        #expect(closenessFailure([-.infinity], [.infinity], shape: [1], tolerance: tolerance) != nil)
        #expect(closenessFailure([1e30], [.infinity], shape: [1], tolerance: Tolerance(atol: 1, rtol: 1)) != nil)
    }

    @Test func namesTheWorstElementAndItsCoordinates() throws {
        let failure = try #require(closenessFailure([0, 1.1, 0, 5], [0, 1, 0, 3], shape: [2, 2], tolerance: tolerance))
        #expect(failure.hasPrefix("2 of 4 elements off"))
        #expect(failure.contains("element 3 [1, 1] is 5.0, expected 3.0"))
    }

    @Test func tensorsMustAgreeInShapeAndDType() throws {
        let a = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6] as [Float])
        withKnownIssue("shape") { expectClose(a, try a.reshaped([3, 2]), tolerance) }
        withKnownIssue("dtype") { expectClose(a, try a.converted(to: .float16), tolerance) }
        expectClose(try a.converted(to: .float16), a, tolerance, dtype: .float16)
        var oneULP = a
        oneULP[0, 0] = Float(1).nextUp
        withKnownIssue("one ulp apart") { expectIdentical(oneULP, a) }
        expectClose(oneULP, a, tolerance)
        expectIdentical(a, try a.reshaped([6]).reshaped([2, 3]))
    }

    @Test func halfPrecisionTolerancesFollowFromOneRounding() {
        // A value exactly halfway between two bfloat16 neighbours may round either way from float32.
        let bf16 = Tolerance.float32.roundedOnce(to: .bfloat16)
        #expect(bf16.rtol > 0x1p-8 && bf16.rtol < 0x1p-8 + 2e-5)
        let both = Tolerance.float32.bothRounded(to: .float16)
        #expect(both.rtol > 2 * 0x1p-11 && both.rtol < 2 * 0x1p-11 + 2e-5)
        #expect(both.atol < 1.1e-5, "rounding adds almost nothing to the absolute part")
    }
}
