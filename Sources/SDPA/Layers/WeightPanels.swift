import CSDPAKernels

/// A `Linear` layer's weight as the matrix product reads it: `Wᵀ` (`[in, out]`) cut into panels of the
/// register tile's columns, each panel `in × width` floats, contiguous (the last one zero-padded).
///
/// A column panel of `Wᵀ` read in place has rows `out` floats apart, which at the common widths
/// (384, 1536) fall into a few L1 sets and evict each other; packed, a depth slice of a panel
/// (``depthSlice`` × ``width`` floats, 32 KiB at most) stays in L1 while an item's rows stream past it.
/// The weight is constant, so the packing is done once, when the layer is made.
@usableFromInline
struct _WeightPanels: Sendable {
    /// `[panels, in, width]` float32.
    let storage: Tensor
    /// Columns of `Wᵀ` in one panel: the register tile's (`sdpa_kernels_info`) when the layer was made.
    @usableFromInline let width: Int
    /// Rows of `Wᵀ` in one depth slice of the product: a slice of a panel fits in 32 KiB of L1 (at most 256).
    @usableFromInline let depthSlice: Int
    /// `in`.
    let inputFeatures: Int
    /// `out`.
    let outputFeatures: Int

    /// The panels of PyTorch's `[out, in]` weight (any float dtype, any strides).
    ///
    /// - Throws: ``SDPAError/rank(argument:shape:expected:)`` naming `argument` when the weight is not rank 2;
    ///   an allocation error naming it when the panels cannot be had.
    init(weight: Tensor, argument: String) throws {
        guard weight.rank == 2 else {
            throw SDPAError.rank(argument: argument, shape: weight.shape, expected: "rank 2 [out, in] (PyTorch's Linear.weight)")
        }
        var info = sdpa_kernel_info()
        sdpa_kernels_info(&info)
        width = Swift.max(1, Int(info.tile_columns))
        depthSlice = Swift.max(16, Swift.min(256, 32_768 / (4 * width)))
        (outputFeatures, inputFeatures) = (weight.shape[0], weight.shape[1])
        // Rows of W padded to whole panels, then each panel's `width` rows turned into its `in × width` columns.
        let count = (outputFeatures + width - 1) / width
        var rows = try weight._contiguousFloat32(argument)
        if count * width > outputFeatures {
            let padding = try Tensor(_zeros: [count * width - outputFeatures, inputFeatures], dtype: .float32, argument: argument)
            rows = try Tensor.concatenated([rows, padding], along: 0)
        }
        storage = try rows.reshaped([count, width, inputFeatures]).transposed(1, 2).contiguous()
    }

    /// Output features `columns` of this weight (rows `columns` of PyTorch's `[out, in]`): whole panels of these
    /// ones, no copy, when `columns` starts on a panel (the product stores no column past ``outputFeatures``, so
    /// the last panel may hold the next features); otherwise those rows packed anew.
    func columns(_ columns: Range<Int>) throws -> _WeightPanels {
        precondition(columns.lowerBound >= 0 && columns.upperBound <= outputFeatures, "columns within the weight")
        guard columns.lowerBound % width == 0 else {
            return try _WeightPanels(weight: weight().sliced(columns, along: 0), argument: "weight")
        }
        let panels = (columns.lowerBound / width)..<((columns.upperBound + width - 1) / width)
        return _WeightPanels(storage: try storage.sliced(panels, along: 0), width: width, depthSlice: depthSlice,
                             inputFeatures: inputFeatures, outputFeatures: columns.count)
    }

    private init(storage: Tensor, width: Int, depthSlice: Int, inputFeatures: Int, outputFeatures: Int) {
        (self.storage, self.width, self.depthSlice) = (storage, width, depthSlice)
        (self.inputFeatures, self.outputFeatures) = (inputFeatures, outputFeatures)
    }

    /// Panel `index`: `in` rows of ``width`` floats.
    @usableFromInline
    func panel(_ index: Int) -> UnsafePointer<Float> {
        UnsafePointer(storage._floats + index * inputFeatures * width)
    }

    /// The weight as PyTorch stores it, `[out, in]` float32 (a copy).
    func weight() throws -> Tensor {
        try storage.transposed(1, 2).reshaped([storage.shape[0] * width, inputFeatures]).sliced(0..<outputFeatures, along: 0)
    }
}
