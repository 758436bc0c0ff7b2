/// The blocks of a ``PagedKVCache``: the key and value storage, the free list, and who holds each block.
///
/// Not thread-safe by itself: the cache's lock guards every use. Storage is allocated (and zeroed, so
/// that its memory is committed) once at creation and never moves, so the addresses a view hands
/// out stay valid while the view lives.
struct _PagedBlockPool {
    /// `[blockCount, Hkv, blockSize, E]` and `[blockCount, Hkv, blockSize, Ev]`: a block's rows for one
    /// head are contiguous, `E` (or `Ev`) elements apart.
    let keys: Tensor, values: Tensor
    let blockSize: Int, keyValueHeads: Int
    /// Blocks no sequence and no view holds, taken from the end (block 0 first).
    private(set) var free: [Int]
    /// How many sequences hold each block: more than one after a fork (its rows are then read-only).
    private(set) var owners: [Int32]
    /// How many views hold each block: a pinned block stays out of the free list.
    private var pins: [Int32]

    init(keys: Tensor, values: Tensor, blockSize: Int, keyValueHeads: Int) {
        (self.keys, self.values, self.blockSize, self.keyValueHeads) = (keys, values, blockSize, keyValueHeads)
        let count = keys.shape[0]
        free = Array((0..<count).reversed())
        owners = [Int32](repeating: 0, count: count)
        pins = [Int32](repeating: 0, count: count)
    }

    var blockCount: Int { owners.count }

    /// A free block, now held by one sequence; the caller has checked that one is free.
    mutating func allocate() -> Int {
        let block = free.removeLast()
        owners[block] = 1
        return block
    }

    /// One more sequence holds `block` (a fork).
    mutating func share(_ block: Int) { owners[block] += 1 }

    /// One sequence less holds `block`; it is free once no sequence and no view holds it.
    mutating func release(_ block: Int) {
        owners[block] -= 1
        if owners[block] == 0 && pins[block] == 0 { free.append(block) }
    }

    /// A view holds `blocks`.
    mutating func pin(_ blocks: [Int]) { for b in blocks { pins[b] += 1 } }

    /// A view no longer holds `blocks`.
    mutating func unpin(_ blocks: [Int]) {
        for b in blocks {
            pins[b] -= 1
            if owners[b] == 0 && pins[b] == 0 { free.append(b) }
        }
    }

    /// Copies the first `rows` rows of every head of `source` into `target` (copy on write).
    func copyRows(_ rows: Int, from source: Int, to target: Int) {
        for pool in [keys, values] {
            let rowBytes = pool.shape[3] * pool.dtype.byteWidth, headBytes = blockSize * rowBytes
            for h in 0..<keyValueHeads {
                let from = (source * keyValueHeads + h) * headBytes, to = (target * keyValueHeads + h) * headBytes
                (pool._storage.bytes + to).copyMemory(from: pool._storage.bytes + from, byteCount: rows * rowBytes)
            }
        }
    }

    /// The element offset of row `slot` of `head` in `block`, in a pool of rows `width` elements wide.
    func offset(block: Int, head: Int, slot: Int, width: Int) -> Int {
        ((block * keyValueHeads + head) * blockSize + slot) * width
    }
}
