extension PagedKVCache {
    /// Appends `n` positions to `sequence`: a prefill chunk, or one decoded token (`n = 1`).
    ///
    /// The rows are written into the sequence's last block and as many fresh blocks as they need; the
    /// sequence's earlier positions are not copied (a shared, partly filled last block, after a fork,
    /// is copied once). Keys and values of another float dtype are rounded to the cache's dtype, to
    /// nearest (as ``Tensor/converted(to:)``). Any strides are read in place.
    ///
    /// - Parameters:
    ///   - key: `[Hkv, n, E]` (or `[1, Hkv, n, E]`).
    ///   - value: `[Hkv, n, Ev]` (or `[1, Hkv, n, Ev]`).
    /// - Throws: ``SDPAError/kvCacheFull(sequence:tokens:neededBlocks:freeBlocks:blockCount:)`` when too few
    ///   blocks are free, leaving the cache unchanged; ``SDPAError`` naming `key` or `value` and their shapes
    ///   when they do not fit the cache, or `sequence` when it is not live.
    public func append(to sequence: SequenceID, key: Tensor, value: Tensor) throws {
        let keys = try rows(key, argument: "key", width: headDim)
        let values = try rows(value, argument: "value", width: valueHeadDim)
        guard keys.shape[1] == values.shape[1] else {
            throw SDPAError.shapeMismatch(argument: "value", shape: value.shape, other: "key", otherShape: key.shape,
                                          reason: "key and value must hold the same number of positions n")
        }
        let n = keys.shape[1]
        try locked {
            var record = try entry(sequence)
            let filled = record.length % blockSize
            // A partly filled last block that another sequence shares is copied before it is written.
            let copiesLast = n > 0 && filled > 0 && pool.owners[record.blocks.last!] > 1
            let fresh = (record.length + n + blockSize - 1) / blockSize - record.blocks.count
            let needed = fresh + (copiesLast ? 1 : 0)
            guard needed <= pool.free.count else {
                throw SDPAError.kvCacheFull(sequence: "\(sequence)", tokens: n, neededBlocks: needed,
                                            freeBlocks: pool.free.count, blockCount: blockCount)
            }
            // Nothing can fail from here on.
            if copiesLast {
                let copy = pool.allocate()
                pool.copyRows(filled, from: record.blocks.last!, to: copy)
                pool.release(record.blocks.last!)
                record.blocks[record.blocks.count - 1] = copy
            }
            for _ in 0..<fresh { record.blocks.append(pool.allocate()) }
            write(keys, into: pool.keys, of: record, from: record.length)
            write(values, into: pool.values, of: record, from: record.length)
            record.length += n
            replace(sequence, with: record)
        }
    }

    /// `t` checked against the cache as `[Hkv, n, width]` rows in the cache's dtype: a view, or a
    /// converted copy for another float dtype.
    private func rows(_ t: Tensor, argument: String, width: Int) throws -> Tensor {
        let layout = "[Hkv, n, \(argument == "key" ? "E" : "Ev")] = [\(keyValueHeads), n, \(width)] (or with a leading batch of 1)"
        guard t.rank == 3 || (t.rank == 4 && t.shape[0] == 1) else {
            throw SDPAError.rank(argument: argument, shape: t.shape, expected: layout)
        }
        guard t.dtype.isFloatingPoint else {
            throw SDPAError.unsupportedDType(argument: argument, dtype: t.dtype, reason: "a KV cache holds float keys and values")
        }
        // A leading batch of 1 dropped, as a view.
        let three = t.rank == 3 ? t : t._squeezed(at: 0)
        guard three.shape[0] == keyValueHeads, three.shape[2] == width else {
            throw SDPAError.invalidShape(argument: argument, shape: t.shape, reason: "expected " + layout)
        }
        return try three.converted(to: dtype)
    }

    /// Writes rows `0..<n` of each head of `source` (`[Hkv, n, D]`, the pool's dtype) to positions
    /// `start..<start + n` of `sequence`, whose blocks already cover them.
    private func write(_ source: Tensor, into storage: Tensor, of sequence: _PagedSequence, from start: Int) {
        let (n, width) = (source.shape[1], source.shape[2])
        let bytes = storage.dtype.byteWidth, rowBytes = width * bytes
        let (s0, s1, s2) = (source.strides[0], source.strides[1], source.strides[2])
        let src = UnsafeRawPointer(source._storage.bytes), dst = storage._storage.bytes
        for h in 0..<keyValueHeads {
            for r in 0..<n {
                let p = start + r
                let target = dst + pool.offset(block: sequence.blocks[p / blockSize], head: h, slot: p % blockSize, width: width) * bytes
                let from = source._offset + h * s0 + r * s1
                if s2 == 1 || width == 1 {
                    target.copyMemory(from: src + from * bytes, byteCount: rowBytes)
                } else {
                    for e in 0..<width { (target + e * bytes).copyMemory(from: src + (from + e * s2) * bytes, byteCount: bytes) }
                }
            }
        }
    }
}
