import CSDPAKernels

/// Whether `count` rows of `columns` elements of `kind` hold NaN or an infinity (exponent bits all ones).
@usableFromInline
func _containsNonFinite(_ kind: sdpa_element_kind, rows: sdpa_rows, count: Int, columns: Int) -> Bool {
    let half = kind != SDPA_ELEMENT_F32
    // float16: 5 exponent bits at 0x7C00; bfloat16: 8 at 0x7F80.
    let exponent16: UInt16 = kind == SDPA_ELEMENT_F16 ? 0x7C00 : 0x7F80
    for r in 0..<count {
        let row = _rowAddress(rows, r, elementBytes: half ? 2 : 4)
        if half {
            let p = row.assumingMemoryBound(to: UInt16.self)
            for c in 0..<columns where p[c] & exponent16 == exponent16 { return true }
        } else {
            let exponent = SIMD8<UInt32>(repeating: 0x7F80_0000)
            var c = 0
            while c + 8 <= columns {
                let bits = row.loadUnaligned(fromByteOffset: 4 * c, as: SIMD8<UInt32>.self)
                if any((bits & exponent) .== exponent) { return true }
                c += 8
            }
            let p = row.assumingMemoryBound(to: Float.self)
            while c < columns {
                if !p[c].isFinite { return true }
                c += 1
            }
        }
    }
    return false
}

/// The address of row `r` of `rows`.
@usableFromInline
func _rowAddress(_ rows: sdpa_rows, _ r: Int, elementBytes: Int) -> UnsafeRawPointer {
    if let list = rows.rows { return list[r]! }
    return rows.base! + r * rows.stride * elementBytes
}

/// `O += P V` where a key with probability exactly 0 contributes exactly nothing, even if its value
/// is NaN or infinite: the product runs on a float32 copy of the values with non-finite ones zeroed
/// (so every finite output keeps the bits the float32 path gives), then each non-finite value is added
/// to the rows that see it.
@usableFromInline
func _accumulateVisible(
    rows: Int, keys: Int, _ Ev: Int, _ p: UnsafePointer<Float>, _ ldp: Int,
    _ kind: sdpa_element_kind, _ valueRows: sdpa_rows, _ o: UnsafeMutablePointer<Float>, _ ldo: Int,
    values: UnsafeMutablePointer<Float>
) {
    // The values as float32 rows, `Ev` apart, in `values` (copied even when they are float32 already).
    var ld = 0
    let converted = sdpa_pack_values(SDPA_LAYOUT_F32, kind, Int32(keys), Int32(Ev), valueRows, values, &ld)
    if converted != UnsafeRawPointer(values) {
        for c in 0..<keys { (values + c * Ev).update(from: converted!.assumingMemoryBound(to: Float.self) + c * ld, count: Ev) }
    }
    var nonFinite = [(key: Int, column: Int, value: Float)]()
    for c in 0..<keys {
        for d in 0..<Ev where !values[c * Ev + d].isFinite {
            nonFinite.append((c, d, values[c * Ev + d]))
            values[c * Ev + d] = 0
        }
    }
    sdpa_pv_tile(Int32(rows), Int32(keys), Int32(Ev), p, ldp, values, Ev, o, ldo)
    for (c, d, x) in nonFinite {
        for r in 0..<rows where p[r * ldp + c] != 0 {
            o[r * ldo + d] += p[r * ldp + c] * x
        }
    }
}
