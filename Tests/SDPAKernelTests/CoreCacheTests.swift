@_spi(Testing) import SDPA
import Testing

@Suite("A core's L2 sizes the fused kernel's blocks of query tiles")
struct CoreCacheTests {
    @Test func sizesAsTheKernelWritesThem() {
        #expect(_CoreCache.parsedSize("2048K\n") == 2 << 20)
        #expect(_CoreCache.parsedSize("1M") == 1 << 20)
        #expect(_CoreCache.parsedSize("65536") == 64 << 10)
        for malformed in ["", "K", "-1K", "0", "12Q", "9223372036854775807M"] {
            #expect(_CoreCache.parsedSize(malformed) == nil, "\(malformed)")
        }
    }

    @Test func theL2IsReportedOrAssumed() {
        #expect(_CoreCache.l2Bytes == (_CoreCache.reportedL2Bytes() ?? _CoreCache.assumedL2Bytes))
        #expect(_CoreCache.l2Bytes >= 64 << 10)
        #if os(Linux)
        // The kernel's cache description, read where glibc does not answer, agrees with it where it does.
        let sysfs = "/sys/devices/system/cpu/cpu0/cache/index2/size"
        if let described = _CoreCache.sysfsSize(sysfs) { #expect(described == _CoreCache.reportedL2Bytes()) }
        #expect(_CoreCache.sysfsSize("/nonexistent/size") == nil)
        #endif
    }

    /// Blocks hold up to 4 tiles while their running outputs take at most a quarter of the L2 (at least 128 KiB).
    @Test(arguments: [(64, 1), (64, 4), (128, 1), (128, 4), (256, 1)])
    func blocksFollowTheL2(headDim: Int, group: Int) {
        let shape = AttentionShape(batch: 1, queryHeads: 8 * group, keyValueHeads: 8, queryLength: 2048, keyLength: 2048,
                                       headDim: headDim, valueHeadDim: headDim)
        let tiling = _FusedTiling(shape)
        let outputFloats = max(32_768, _CoreCache.l2Bytes / 16)
        let outputsPerTile = group * headDim * tiling.queryRows
        #expect(tiling.tilesPerBlock == max(1, min(4, outputFloats / outputsPerTile, tiling.queryTiles)))
        // Never fewer tiles than the 128 KiB of outputs held before blocks followed the L2.
        #expect(tiling.tilesPerBlock >= max(1, min(4, 32_768 / outputsPerTile)))
        #expect(tiling.blocksPerHead == (tiling.queryTiles + tiling.tilesPerBlock - 1) / tiling.tilesPerBlock)
    }
}
