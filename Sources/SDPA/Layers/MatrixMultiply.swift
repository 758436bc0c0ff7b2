import CSDPAKernels

/// What a matrix product `A·B` has added to it (after the product, in the order PyTorch's `addmm` uses).
@usableFromInline
enum _ProductStart {
    /// `C = A·B`.
    case zero
    /// `C = A·B + bias`, the bias (`n` floats) added to every row of the product: a `Linear` layer.
    case rowBias(UnsafePointer<Float>)
}

/// The float32 matrix product `C (m × n) = A (m × k) · B (k × n) + start`, `A` and `C` row-major with
/// strides in elements, `B` a layer's packed weight (``_WeightPanels``: `k = in`, `n = out`), on the
/// attention kernels' register tiles (`sdpa_qk_tile` writes a block, `sdpa_pv_tile` adds one), so it runs
/// the family of micro-kernels selected at run time.
///
/// Blocking: each work item is a block of rows and columns of `C` (see ``_ProductBlocks``); it runs the
/// depth in slices of the panels' ``_WeightPanels/depthSlice``, so that inside a kernel call the slice of
/// one panel of `B` stays in L1 while the item's rows stream past it, and the item's `rows × depthSlice`
/// slice of `A` stays in L2 across the panels; the items of one column block come one after another, so
/// that block of `B` stays in L2 across them. Items are shared among ``SDPAThreads`` threads like the fused
/// attention driver's; every element of `C` is the same sequence of operations whichever item or thread
/// computes it, so the result is bit-identical at any thread count.
///
/// `finish`, when given, runs on each item's block of `C` right after it is complete (still in cache):
/// the place for an activation or a residual addition.
@usableFromInline
func _matrixMultiply(
    m: Int, a: UnsafePointer<Float>, lda: Int, b: _WeightPanels,
    c: UnsafeMutablePointer<Float>, ldc: Int, start: _ProductStart = .zero,
    blocks: _ProductBlocks? = nil, finish: (@Sendable (_ rows: Range<Int>, _ columns: Range<Int>) -> Void)? = nil
) {
    let (n, k) = (b.outputFeatures, b.inputFeatures)
    guard m > 0, n > 0 else { return }
    let blocks = blocks ?? _ProductBlocks(m: m, n: n, k: k, panelWidth: b.width)
    precondition(blocks.columnsPerBlock % b.width == 0, "column blocks are whole panels")
    let items = blocks.rowBlocks * blocks.columnBlocks
    let threads = Swift.min(SDPAThreads.effectiveCount, items)
    let (aBase, cBase) = (_SendablePointer(UnsafeMutablePointer(mutating: a)), _SendablePointer(c))
    let biasBase: _SendablePointer<Float>? = if case let .rowBias(bias) = start { _SendablePointer(UnsafeMutablePointer(mutating: bias)) } else { nil }
    let queue = _WorkQueue(count: items)
    _parallelFor(threads) {
        let (a, c) = (aBase.pointer!, cBase.pointer!)
        while let item = queue.next() {
            let r0 = item % blocks.rowBlocks * blocks.rowsPerBlock, c0 = item / blocks.rowBlocks * blocks.columnsPerBlock
            let rows = Swift.min(blocks.rowsPerBlock, m - r0), columns = Swift.min(blocks.columnsPerBlock, n - c0)
            let cBlock = c + r0 * ldc + c0
            if k == 0 {
                for r in 0..<rows { (cBlock + r * ldc).update(repeating: 0, count: columns) }
            }
            // The first depth slice overwrites C; the bias is added after the product, as PyTorch's addmm
            // adds it (and without a pass over C before the product).
            var k0 = 0
            while k0 < k {
                let depth = Swift.min(b.depthSlice, k - k0)
                let aBlock = a + r0 * lda + k0
                var p0 = 0
                while p0 < columns {
                    let width = Swift.min(b.width, columns - p0)
                    let panel = b.panel((c0 + p0) / b.width) + k0 * b.width
                    if k0 == 0 {
                        sdpa_qk_tile(Int32(rows), Int32(width), Int32(depth), aBlock, lda, panel, b.width, 1, cBlock + p0, ldc, nil)
                    } else {
                        sdpa_pv_tile(Int32(rows), Int32(depth), Int32(width), aBlock, lda, panel, b.width, cBlock + p0, ldc)
                    }
                    p0 += width
                }
                k0 += depth
            }
            if let bias = biasBase?.pointer {
                for r in 0..<rows { _addRow(cBlock + r * ldc, bias + c0, count: columns) }
            }
            finish?(r0..<(r0 + rows), c0..<(c0 + columns))
        }
    }
}

/// `row[0..<count] += other[0..<count]`: a bias or a residual added to a finished row of a product.
@inlinable
func _addRow(_ row: UnsafeMutablePointer<Float>, _ other: UnsafePointer<Float>, count: Int) {
    for j in 0..<count { row[j] += other[j] }
}

/// How ``_matrixMultiply`` cuts `C` into work items: from the shape alone (never the thread count).
@usableFromInline
struct _ProductBlocks: Sendable {
    /// Rows of one item: a multiple of the 6-row register tile; `96 × depthSlice` floats of `A` (at most
    /// 96 KiB) stay in L2.
    @usableFromInline static let maximumRows = 96
    /// At least this many items, so that two or more threads share the work evenly.
    @usableFromInline static let minimumItems = 8

    @usableFromInline let rowsPerBlock: Int, rowBlocks: Int
    @usableFromInline let columnsPerBlock: Int, columnBlocks: Int

    /// `B` blocks of at most this many bytes (K × columns) stay in a core's L2 (1 MiB on Zen 3 and 4).
    @usableFromInline static let cachedBBytes = 512 * 1024

    /// The blocks for an `m × n` product of depth `k` whose `B` comes in panels of `panelWidth` columns
    /// (column blocks are whole panels); `wholeRows` asks for items of whole rows where there are enough
    /// rows to share out (for an epilogue that needs them, a layer norm).
    @usableFromInline
    init(m: Int, n: Int, k: Int, panelWidth: Int, wholeRows: Bool = false) {
        // Balanced row blocks: 100 rows as 54 + 46, not 96 + 4.
        let (m, n) = (Swift.max(1, m), Swift.max(1, n))  // an empty product has no items; keep the arithmetic defined
        let rowBlocks = (m + Self.maximumRows - 1) / Self.maximumRows
        rowsPerBlock = ((m + rowBlocks - 1) / rowBlocks + 5) / 6 * 6
        self.rowBlocks = (m + rowsPerBlock - 1) / rowsPerBlock
        // Column blocks, items taken column block by column block: a block of B that fits in L2 then serves
        // every row block, where a B larger than L2 would come from L3 again for each. It costs one more
        // read of A per block, which pays while a block is wider than the 96 rows an item reads of A, so
        // only B larger than L2 is cut, and only into blocks of at least 128 columns.
        let cachedColumns = Self.cachedBBytes / (4 * Swift.max(1, k)) / 16 * 16
        let byCache = !wholeRows && 4 * k * n > 2 * Self.cachedBBytes && cachedColumns >= 128 ? (n + cachedColumns - 1) / cachedColumns : 1
        // Few rows (one short sentence): share the columns out instead, in whole panels.
        let width = Swift.max(1, panelWidth)
        let byWork = Swift.min((Self.minimumItems + self.rowBlocks - 1) / self.rowBlocks, n / Swift.max(64, width))
        let columnSplit = Swift.max(1, byCache, byWork)
        columnsPerBlock = ((n + columnSplit - 1) / columnSplit + width - 1) / width * width
        columnBlocks = (n + columnsPerBlock - 1) / columnsPerBlock
    }
}
