// IEEE binary16 <-> Float conversion on raw bits. Swift's `Float16` is not
// available on every platform (x86-64 macOS lacks it), so storage holds raw
// `UInt16` bits and these two functions are the single place that converts.

#if (os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64)
@usableFromInline
func _halfBitsToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = Int((h >> 10) & 0x1F)
    let fraction = UInt32(h & 0x3FF)
    if exponent == 0x1F {
        return Float(bitPattern: sign | 0x7F80_0000 | (fraction << 13))
    }
    if exponent == 0 {
        let magnitude = Float(fraction) * 0x1p-24
        return sign == 0 ? magnitude : -magnitude
    }
    return Float(bitPattern: sign | UInt32(exponent + 112) << 23 | (fraction << 13))
}

@usableFromInline
func _floatToHalfBits(_ f: Float) -> UInt16 {
    let bits = f.bitPattern
    let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
    if f.isNaN { return sign | 0x7E00 }
    let magnitude = abs(f)
    if magnitude >= 65520 { return sign | 0x7C00 }
    if magnitude < 0x1p-14 {
        // Subnormal half: scale into integer units of 2^-24 and round to even.
        return sign | UInt16((magnitude * 0x1p24).rounded(.toNearestOrEven))
    }
    let e = Int((bits >> 23) & 0xFF) - 112
    var half = UInt32(e << 10) | ((bits >> 13) & 0x3FF)
    let remainder = bits & 0x1FFF
    if remainder > 0x1000 || (remainder == 0x1000 && (half & 1) == 1) { half += 1 }
    return sign | UInt16(half)
}
#else
@usableFromInline @inline(__always)
func _halfBitsToFloat(_ h: UInt16) -> Float { Float(Float16(bitPattern: h)) }

@usableFromInline @inline(__always)
func _floatToHalfBits(_ f: Float) -> UInt16 { Float16(f).bitPattern }
#endif
