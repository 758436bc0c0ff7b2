import CSDPAKernels

/// One thread's tiles for the fused backward pass, reused by every item it runs: a slot of one
/// allocation made before the threads start (so that memory the system cannot give is an error,
/// not an abort), carved into 64-byte aligned pieces.
struct _BackwardScratch {
    /// The key tile packed as `Kᵀ` (for the scores) and the value tile as `Vᵀ` (for `dP = dO Vᵀ`), in the pass's
    /// ``_BackwardPass/layout``.
    let keysT: UnsafeMutableRawPointer, valuesT: UnsafeMutableRawPointer
    /// The key tile's rows for `dQ += dS K`, in the values' layout (float32 rows when they are not float32 in place;
    /// pairs of keys in bfloat16 pairs).
    let keyRows: UnsafeMutableRawPointer
    /// The key tile's running dK (`Bc × E`) and dV (`Bc × Ev`), every head of the group summed in.
    let keyGradients: UnsafeMutablePointer<Float>, valueGradients: UnsafeMutablePointer<Float>
    /// One query tile's rows (`Br × E`) and its output gradient (`Br × Ev`) in the values' layout: float32 rows for
    /// every product, or pairs of rows, the B operands of `dK += dSᵀ·Q` and `dV += Pᵀ·dO`, in bfloat16 pairs.
    let queries: UnsafeMutableRawPointer, gradOutput: UnsafeMutableRawPointer
    /// The score tile (then P), the dP tile (then dS), and the scores kept for the bias's
    /// derivative or its parameters (`Br × lds` each).
    let scores: UnsafeMutablePointer<Float>, scoreGradients: UnsafeMutablePointer<Float>, saved: UnsafeMutablePointer<Float>
    /// In bfloat16 pairs only: the query tile's rows and its output gradient as pairs along the depth, for `S = Q·Kᵀ`
    /// (a decoding call's through the forward's direct reader) and `dP = dO·Vᵀ`; Pᵀ, then dSᵀ, rounded as pairs of
    /// query rows; dS rounded as pairs of keys.
    let queryPairs: UnsafeMutableRawPointer, gradOutputPairs: UnsafeMutableRawPointer
    let transposedPairs: UnsafeMutableRawPointer, scoreGradientPairs: UnsafeMutableRawPointer
    /// The bias's plan's chain-rule tiles (``_ParameterGradientPlan/chainWorkspaceCount(rows:rowStride:)`` floats).
    let chain: UnsafeMutablePointer<Float>

    /// The bytes of each piece, in the order they are carved, each a multiple of 64; `nil` when a size
    /// overflows.
    static func sizes<Modifier, Plan>(_ pass: _BackwardPass<Modifier, Plan>) -> [Int]? {
        let (schedule, lds, layout, chainFloats) = (pass.schedule, pass.lds, pass.layout, pass.chainFloats)
        let (Br, Bc, E, Ev) = (Int32(schedule.queryRows), Int32(schedule.keyColumns), Int32(schedule.shape.headDim), Int32(schedule.shape.valueHeadDim))
        guard let tile = _checkedProduct(4, Int(Br), lds), let keyGradients = _checkedProduct(4, Int(Bc), Int(E)),
              let valueGradients = _checkedProduct(4, Int(Bc), Int(Ev)), let chain = _checkedProduct(4, chainFloats) else { return nil }
        let pairs = layout != SDPA_LAYOUT_F32
        let bytes = { (role: sdpa_operand_role, count: Int32, width: Int32, inPairsOnly: Bool) in
            inPairsOnly && !pairs ? 0 : sdpa_operand_bytes(layout, role, count, width)
        }
        let sizes = [
            bytes(SDPA_OPERAND_KEYS, Bc, E, false), bytes(SDPA_OPERAND_KEYS, Bc, Ev, false), bytes(SDPA_OPERAND_VALUES, Bc, E, false),
            keyGradients, valueGradients, bytes(SDPA_OPERAND_VALUES, Br, E, false), bytes(SDPA_OPERAND_VALUES, Br, Ev, false),
            tile, tile, pass.saves != .none ? tile : 0,
            bytes(SDPA_OPERAND_QUERY, Br, E, true), bytes(SDPA_OPERAND_QUERY, Br, Ev, true),
            bytes(SDPA_OPERAND_VALUES, Br, Bc, true), bytes(SDPA_OPERAND_QUERY, Br, Bc, true), chain,
        ]
        return sizes.map { (Swift.max($0, 1) + 63) / 64 * 64 }
    }

    /// The pieces of one slot starting at `base` (64-byte aligned), laid out by `sizes`.
    init(base: UnsafeMutableRawPointer, sizes: [Int]) {
        var offsets = [Int](), running = 0
        for size in sizes { offsets.append(running); running += size }
        let floats = { (i: Int) in (base + offsets[i]).bindMemory(to: Float.self, capacity: sizes[i] / 4) }
        keysT = base + offsets[0]
        valuesT = base + offsets[1]
        keyRows = base + offsets[2]
        keyGradients = floats(3)
        valueGradients = floats(4)
        queries = base + offsets[5]
        gradOutput = base + offsets[6]
        scores = floats(7)
        scoreGradients = floats(8)
        saved = floats(9)
        queryPairs = base + offsets[10]
        gradOutputPairs = base + offsets[11]
        transposedPairs = base + offsets[12]
        scoreGradientPairs = base + offsets[13]
        chain = floats(14)
    }
}

/// Every thread's scratch, allocated at once through the one fallible allocation point: one slot
/// per thread, each run of a parallel body taking a free one (a run beyond `threads` finds none and
/// leaves the items to the others).
struct _BackwardScratchSlots: @unchecked Sendable {
    let storage: _TensorStorage
    let sizes: [Int], slotBytes: Int

    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when the head dimensions make
    ///   the tiles too large to address or to allocate.
    init<Modifier, Plan>(_ pass: _BackwardPass<Modifier, Plan>, threads: Int) throws {
        let (schedule, sizes) = (pass.schedule, _BackwardScratch.sizes(pass))
        let slot = sizes.flatMap { s in s.reduce(0 as Int?) { total, size in total.flatMap { $0.addingReportingOverflow(size).overflow ? nil : $0 + size } } }
        let bytes = slot.flatMap { _checkedProduct($0, threads) } ?? .max
        let (E, Ev) = (schedule.shape.headDim, schedule.shape.valueHeadDim)
        storage = try _TensorStorage(byteCount: bytes, for: "the fused backward pass's scratch (E = \(E), Ev = \(Ev), \(threads) threads)", zeroed: false)
        (self.sizes, slotBytes) = (sizes!, slot!)
    }

    /// The scratch of slot `slot` (`0..<threads`).
    func scratch(slot: Int) -> _BackwardScratch {
        _BackwardScratch(base: storage.bytes + slot * slotBytes, sizes: sizes)
    }
}
