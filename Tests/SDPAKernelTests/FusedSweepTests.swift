@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

/// One named part of the sweep, so that a failure says where it is.
struct SweepGroup: Sendable, CustomTestStringConvertible {
    let name: String
    let cases: [FusedCase]
    var testDescription: String { "\(name) (\(cases.count) cases)" }
}

/// The fused kernel against the math backend (`Double`) on every kernel family this processor runs:
/// every bias, awkward sizes in each dimension, head dims 1 to 513, GQA, half precisions, decoding
/// (L ≤ 4, keys read as stored), work items of several query tiles, query tiles cut into pieces, and
/// keys split across items.
///
/// A fused call under `withSDPAThreads(1)` makes every kernel call on its caller's thread, which is
/// where `KernelFamily.run` selects the family.
@Suite("Fused kernel equals the math backend, per kernel family")
struct FusedSweepTests {
    static let groups: [SweepGroup] = {
        var groups = [SweepGroup]()
        for bias in allSweepBiases {
            var cases = awkwardSizes.map { FusedCase(L: $0, bias: bias) } + awkwardSizes.map { FusedCase(S: $0, bias: bias) }
            cases += [(65, 15), (7, 127), (513, 64)].map { FusedCase(L: $0.0, S: $0.1, bias: bias) }
            groups.append(SweepGroup(name: "sizes, \(bias)", cases: cases))
        }
        let headDims = [1, 2, 3, 7, 8, 15, 16, 31, 63, 64, 65, 96, 127, 128, 200, 255, 256, 513]
        groups.append(SweepGroup(name: "head dims", cases: headDims.map { FusedCase(L: 20, S: 37, E: $0, Ev: $0) }
            + [(64, 7), (15, 128), (256, 256), (80, 1), (1, 256), (256, 1)].flatMap { dims in
                ["causalLowerRight", "alibiLowerRight", "softCap"].map { FusedCase(L: 30, S: 70, E: dims.0, Ev: dims.1, bias: $0) }
            }))
        groups.append(SweepGroup(name: "grouped-query attention", cases: [1, 2, 4, 7].flatMap { group in
            ["none", "causalLowerRight", "alibiUpperLeft", "boolMaskLS", "keyPadding", "alibiWindowCausal", "blockDiagonalCausal"].map {
                FusedCase(batch: 2, heads: group == 7 ? 7 : 8, group: group, L: 19, S: 45, bias: $0)
            } + ["packedShortLowerRight", "packedShortComposed"].map {
                FusedCase(batch: 2, heads: group == 7 ? 7 : 8, group: group, L: 300, S: 280, bias: $0)
            }
        }))
        for dtype in [DType.float16, .bfloat16] {
            groups.append(SweepGroup(name: "\(dtype)", cases: allSweepBiases.map { FusedCase(L: 33, S: 65, E: 24, Ev: 24, dtype: dtype, bias: $0) }
                + [FusedCase(L: 200, S: 300, E: 72, Ev: 40, dtype: dtype, bias: "alibiLowerRight"),
                   // several key tiles (128 keys at E = 64, 64 at E = 128), the last one partial
                   FusedCase(L: 70, S: 700, E: 128, Ev: 96, dtype: dtype, bias: "causalLowerRight"),
                   FusedCase(L: 70, S: 700, E: 64, Ev: 64, dtype: dtype, bias: "boolMaskLS")]))
        }
        // Decoding: query tiles of at most `_FusedTiling.directRows` rows read the keys as stored, in every
        // key dtype, with GQA, a head dim off the 8-wide vectors, keys whole or split across items.
        for dtype in [DType.float32, .float16, .bfloat16] {
            var cases = [FusedCase(L: 1, S: 300, E: 64, Ev: 130, dtype: dtype, bias: "causalLowerRight")]  // P·V past a 96-column block
            for bias in allSweepBiases {
                cases.append(FusedCase(batch: 2, heads: 8, group: 4, L: 3, S: 300, E: 36, Ev: 20, dtype: dtype, bias: bias))
                cases.append(FusedCase(batch: 1, heads: 4, group: 2, L: 1, S: 1030, E: 36, Ev: 20, dtype: dtype, bias: bias))
                cases.append(FusedCase(batch: 1, heads: 4, group: 2, L: 1, S: 4000, E: 64, Ev: 64, dtype: dtype, bias: bias))
            }
            for L in [2, 4] {
                for bias in ["none", "causalLowerRight", "alibiLowerRight", "boolMaskLS", "keyPadding", "softCapPaddingWindow"] {
                    cases.append(FusedCase(batch: 2, heads: 8, group: 4, L: L, S: 1030, E: 36, Ev: 20, dtype: dtype, bias: bias))
                }
            }
            groups.append(SweepGroup(name: "decoding, \(dtype)", cases: cases))
        }
        // Enough (head, query tile) pairs that a work item takes several query tiles (2, 3 or 4 per
        // packed K/V tile), the last item fewer.
        groups.append(SweepGroup(name: "work items of several query tiles", cases: [
            "none", "causalLowerRight", "alibiLowerRight", "boolMaskLS", "blockDiagonalCausal", "softCapPaddingWindow", "windowMultiTile",
            "packedShort", "packedShortUpperLeft", "packedShortComposed",
        ].flatMap { bias in
            [FusedCase(batch: 2, heads: 8, group: 2, L: 300, S: 140, bias: bias),
             FusedCase(batch: 1, heads: 8, L: 650, S: 90, E: 8, Ev: 12, bias: bias),
             FusedCase(batch: 1, heads: 6, L: 1030, S: 61, E: 8, Ev: 8, dtype: .bfloat16, bias: bias)]
        }))
        groups.append(SweepGroup(name: "keys split across the last items", cases: tailSplitCases))
        groups.append(SweepGroup(name: "query tiles cut into pieces of fewer rows", cases: rowCutCases))
        return groups
    }()

    /// Few query rows against many keys: the tiles handed out last split their keys 2–4 ways and merge
    /// through the log-sum-exp; in batch 2 key padding leaves no key, so those rows are fully masked.
    static let tailSplitCases = ["none", "causalUpperLeft", "causalLowerRight", "alibiLowerRight", "boolMaskLS",
                                 "keyPadding", "softCapPaddingWindow", "windowMultiTile"].map { bias in
        FusedCase(batch: 3, heads: 1, L: 50, S: 4000, E: 64, Ev: 64, bias: bias)
    } + [FusedCase(batch: 1, heads: 2, L: 120, S: 3000, E: 100, Ev: 40, dtype: .bfloat16, bias: "causalLowerRight")]

    /// Query tiles large enough that the ones handed out last run as half tiles.
    static let rowCutCases = ["none", "causalUpperLeft", "alibiLowerRight", "blockDiagonalCausal", "boolMaskLS", "windowMultiTile"].map { bias in
        FusedCase(batch: 1, heads: 2, L: 400, S: 400, E: 128, Ev: 128, bias: bias)
    }

    @Test("fused equals math", arguments: KernelFamily.available, groups)
    func fusedMatchesMath(_ family: KernelFamily, _ group: SweepGroup) throws {
        try family.run {
            try withSDPAThreads(1) {
                for c in group.cases where c.heads % c.group == 0 { try c.expectFusedMatchesMath(family.name) }
            }
        }
    }

    @Test("the split-key cases still split their keys, the row-cut cases still cut their tiles")
    func refinedCasesStillRefine() {
        for c in Self.tailSplitCases {
            #expect(_TileRefinement(c.shape).splitsKeys, "\(c.testDescription) no longer reaches split items")
        }
        for c in Self.rowCutCases {
            #expect(_TileRefinement(c.shape).cutsRows, "\(c.testDescription) no longer cuts query tiles")
        }
        let decoding = _TileRefinement(FusedCase(batch: 1, heads: 4, group: 2, L: 1, S: 4000, E: 64, Ev: 64).shape)
        #expect(decoding.splitsKeys, "decoding against 4000 keys no longer splits them")
    }
}
