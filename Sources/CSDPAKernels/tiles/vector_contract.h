/* What every vector layer (isa/vec_*.h) provides, and the few operations
 * written once on top of it.  A kernel body (the tiles directory) uses only these, so a
 * new instruction set is one vector-layer file plus a family file.
 *
 * Traits: SDPA_BF16_EVEN_ODD 1 where widening bfloat16 by vload_bf16_even_odd
 *   (two vectors from one load) saves instructions over vload_bf16's; then
 *   also vload_words (SDPA_VL 32-bit words from 2 * SDPA_VL 16-bit elements
 *   at any 2-byte alignment, word i = element 2i | element 2i + 1 << 16: the
 *   x86 layers, little-endian) and vzip(a, b, &lo, &hi) (a and b interleaved:
 *   lo = a0 b0 a1 b1 ..., hi the same from their upper halves).
 * Sizes: SDPA_VL float lanes per vector; SDPA_MR x SDPA_NV the GEMM register
 * tile (rows x vectors); SDPA_PV_ROW_VECS vectors of one output row kept in
 * registers by the one-row P.V; SDPA_DIRECT_ACC (a multiple of SDPA_VL) the
 * direct reader's partial sums per block; SDPA_VREGS the vector registers
 * the ISA has (a register tile that needs more spills).
 * Types: vf (SDPA_VL floats), vi (SDPA_VL int32), vm (a lane mask), vtab8
 * (an 8-entry float table prepared for lookups).
 * Loads/stores: vload, vstore, vbroadcast (one float to every lane),
 *   vmask_first(n) (lanes < n), vload_first / vstore_first (lanes < n only;
 *   memory past them is never touched), vload_f16 / vload_bf16 (SDPA_VL
 *   half-precision elements, exact), vstore_f16 (round to nearest even),
 *   vstore_low16 (the low 16 bits of each int lane).
 * Arithmetic: vadd vsub vmul vdiv, vfma(a,b,c) = a*b + c, vfnma = c - a*b,
 *   vfms = a*b - c (fused where the ISA has FMA), vmax(a,b) / vmin(a,b) with
 *   x86's NaN rule: b when either is NaN (so vmax(v, acc) skips a NaN v, and
 *   vmax(lo, x) keeps a NaN x).
 * Masks: vcmp_eq/lt/le/gt (ordered: false for NaN), vmask_and/or, vblend(m,
 *   a, b) = m ? b : a, vzero_where(m, a), vmask_bits (bit i = lane i).
 * Bits: vand, vandnot(a, b) = ~a & b, vor; vbits / vfloat (reinterpret);
 *   vi_set1/add/sub/and/or, vi_slli/srli/srai (constant counts), vi_cmpgt;
 *   vtab8_load(t) and vtab8_lookup(tab, idx): lane i = t[idx[i] & 7].
 * Reductions: vhmax (input holds no NaN), vhsum, vhsum_lanes(v[SDPA_VL])
 *   (lane i = sum of v[i]'s lanes), vtranspose(r[SDPA_VL]) in place.
 * Bytes: vmask_zero_bytes(p, n) (lanes < n whose byte is 0; reads n bytes),
 *   vscan_bytes(p, n, &anyZero, &anyNonzero).
 * With SDPA_BF16_DOT 1, bfloat16 pairs (two elements in a 32-bit lane): vp;
 *   vload_pairs / vload_pairs_first (lanes < n) / vbroadcast_pair from 32-bit
 *   words, vload_bf16_pairs (2 * SDPA_VL bfloat16 at any 2-byte alignment),
 *   vdot_pairs(acc, a, b) = acc + a.lo * b.lo + a.hi * b.hi per lane. */
#ifndef SDPA_VECTOR_CONTRACT_H
#define SDPA_VECTOR_CONTRACT_H

enum { SDPA_KIND_F32 = SDPA_ELEMENT_F32, SDPA_KIND_F16 = SDPA_ELEMENT_F16, SDPA_KIND_BF16 = SDPA_ELEMENT_BF16 };

SDPA_INLINE vf vneg_inf(void) { return vset1(-__builtin_inff()); }

/* n (< SDPA_VL) half-precision elements through a register-sized buffer. */
SDPA_INLINE vf vload_half_first(const int kind, const uint16_t *p, int n) {
    uint16_t t[SDPA_VL];
    for (int i = 0; i < SDPA_VL; i++) t[i] = i < n ? p[i] : 0;
    return kind == SDPA_KIND_F16 ? vload_f16(t) : vload_bf16(t);
}

/* SDPA_VL elements of `kind` at base[idx], as floats (exact). */
SDPA_INLINE vf vload_kind(const int kind, const void *base, ptrdiff_t idx) {
    if (kind == SDPA_KIND_F32) return vload((const float *)base + idx);
    if (kind == SDPA_KIND_F16) return vload_f16((const uint16_t *)base + idx);
    return vload_bf16((const uint16_t *)base + idx);
}
SDPA_INLINE vf vload_kind_first(const int kind, const void *base, ptrdiff_t idx, int n, vm m) {
    if (kind == SDPA_KIND_F32) return vload_first((const float *)base + idx, n, m);
    return vload_half_first(kind, (const uint16_t *)base + idx, n);
}
SDPA_INLINE float load1_kind(const int kind, const void *base, ptrdiff_t idx) {
    if (kind == SDPA_KIND_F32) return ((const float *)base)[idx];
    if (kind == SDPA_KIND_F16) return sdpa_half_to_float(((const uint16_t *)base)[idx]);
    return sdpa_bf16_to_float(((const uint16_t *)base)[idx]);
}

#if SDPA_BF16_EVEN_ODD
/* 2 * SDPA_VL bfloat16 as floats (exact) in two vectors: the elements at even
 * positions and those at odd ones, a shift and a mask of one load (vzip puts
 * them back in order).  Cheaper than two vload_bf16, which widen SDPA_VL each. */
SDPA_INLINE void vload_bf16_even_odd(const uint16_t *p, vf *even, vf *odd) {
    const vi w = vload_words(p); /* element 2i in word i's low half */
    *even = vfloat(vi_slli(w, 16));
    *odd = vfloat(vi_and(w, vi_set1((int32_t)0xFFFF0000u)));
}
#endif

/* The address of row c of an operand of `kind`: from its list of row
 * addresses, or its base and row stride (in elements). */
SDPA_INLINE const void *row_at(const int kind, sdpa_rows r, ptrdiff_t c) {
    if (r.rows) return r.rows[c];
    return (const char *)r.base + c * r.stride * (kind == SDPA_KIND_F32 ? 4 : 2);
}

/* float -> bfloat16 bits, round to nearest even; NaN stays NaN (quiet bit
 * set, sign kept), as sdpa_float_to_bf16. */
SDPA_INLINE vi vbf16_bits(vf v) {
    vi x = vbits(v);
    vm nan = vi_cmpgt(vi_and(x, vi_set1(0x7FFFFFFF)), vi_set1(0x7F800000));
    vi r = vi_add(vi_add(x, vi_set1(0x7FFF)), vi_and(vi_srli(x, 16), vi_set1(1)));
    r = vbits(vblend(nan, vfloat(r), vfloat(vi_or(x, vi_set1(0x00400000)))));
    return vi_srli(r, 16);
}
SDPA_INLINE void vstore_bf16(uint16_t *p, vf v) { vstore_low16(p, vbf16_bits(v)); }
SDPA_INLINE void vstore_half_first(const int kind, uint16_t *p, int n, vf v) {
    uint16_t t[SDPA_VL];
    if (kind == SDPA_KIND_F16) vstore_f16(t, v); else vstore_bf16(t, v);
    for (int i = 0; i < n; i++) p[i] = t[i];
}

/* A float mask added to the scores; -inf replaces the score (a NaN score at
 * a masked position stays masked). */
SDPA_INLINE vf vadd_mask(vf v, vf m) {
    const vf ninf = vneg_inf();
    return vblend(vcmp_eq(m, ninf), vadd(v, m), ninf);
}

/* exp(x) for x <= 88.376 (n <= 127) or NaN; sdpa_exp_scalar's reduction and
 * polynomial.  x is clamped from below to -88 (NaN kept); for x <= -87.68
 * the rounded n is -127, and the magic constant 1.5*2^23 + 127 makes the low
 * 9 bits of t equal n + 127 = 0, so 2^n = bits(t) << 23 is +0.0 and the
 * result exactly 0 (this covers -inf).  (1 + y) * 2^n is one FMA. */
SDPA_INLINE vf vexp_fast(vf x) {
    const vf magic = vset1(12583039.0f);
    x = vmax(vset1(-88.0f), x);
    vf t = vfma(x, vset1(SDPA_LOG2E), magic);
    vf n = vsub(t, magic);
    vf r = vfnma(n, vset1(SDPA_LN2_HI), x);
    r = vfnma(n, vset1(SDPA_LN2_LO), r);
    vf p = vset1(SDPA_EXP_C4);
    p = vfma(p, r, vset1(SDPA_EXP_C3));
    p = vfma(p, r, vset1(SDPA_EXP_C2));
    p = vfma(p, r, vset1(SDPA_EXP_C1));
    p = vfma(p, r, vset1(SDPA_EXP_C0));
    vf y = vfma(p, vmul(r, r), r);                 /* e^r - 1 */
    vf pow2n = vfloat(vi_slli(vbits(t), 23));
    return vfma(y, pow2n, pow2n);                  /* (1+y) * 2^n */
}

/* exp(x) over the whole range (x up to +inf): clamps, splits 2^n into two
 * factors; the same results as sdpa_exp_scalar. */
SDPA_INLINE vf vexp_safe(vf x) {
    const vf magic = vset1(12582912.0f);
    vf xc = vmin(vset1(SDPA_EXP_HI), x);           /* NaN kept */
    xc = vmax(vset1(SDPA_EXP_CLAMP), xc);
    vf t = vfma(xc, vset1(SDPA_LOG2E), magic);
    vf n = vsub(t, magic);
    vf r = vfnma(n, vset1(SDPA_LN2_HI), xc);
    r = vfnma(n, vset1(SDPA_LN2_LO), r);
    vf p = vset1(SDPA_EXP_C4);
    p = vfma(p, r, vset1(SDPA_EXP_C3));
    p = vfma(p, r, vset1(SDPA_EXP_C2));
    p = vfma(p, r, vset1(SDPA_EXP_C1));
    p = vfma(p, r, vset1(SDPA_EXP_C0));
    vf y = vfma(p, vmul(r, r), r);
    vi ni = vi_sub(vbits(t), vbits(magic));
    vi n1 = vi_srai(ni, 1);
    vi n2 = vi_sub(ni, n1);
    vf s1 = vfloat(vi_slli(vi_add(n1, vi_set1(127)), 23));
    vf s2 = vfloat(vi_slli(vi_add(n2, vi_set1(127)), 23));
    y = vmul(vfma(y, s1, s1), s2);
    y = vzero_where(vcmp_le(n, vset1(-127.0f)), y);  /* not NaN */
    return vblend(vcmp_gt(x, vset1(SDPA_EXP_HI)), y, vset1(__builtin_inff()));
}

SDPA_INLINE vf vexp(vf x) {
    if (__builtin_expect(vmask_bits(vcmp_gt(x, vset1(88.0f))) != 0, 0)) return vexp_safe(x);
    return vexp_fast(x);
}

/* y[i] = f(x[i]) for i < n, a vector at a time and the tail masked (f is
 * inlined: a constant at every call). */
SDPA_INLINE void vmap_f32(size_t n, const float *x, float *y, vf (*f)(vf)) {
    size_t i = 0;
    for (; i + SDPA_VL <= n; i += SDPA_VL) vstore(y + i, f(vload(x + i)));
    if (i < n) {
        const int k = (int)(n - i);
        const vm m = vmask_first(k);
        vstore_first(y + i, k, m, f(vload_first(x + i, k, m)));
    }
}

/* 2^u for u <= 127.5 or NaN, the softmax's form (the caller folds log2(e)
 * into the operation that subtracts the row maximum).  2^u = 2^n * 2^(j/8) *
 * 2^r with k = round(8u), n = floor(k/8), j = k mod 8 and |r| <= 1/16:
 * 2^(j/8) from an 8-entry table, 2^r a cubic, and 2^n added into the table
 * entry's exponent field by an integer add: 4 FMA-port operations per
 * vector, 1.9 ulp against exp2 in double over [-126, 1.5] (table rounding
 * included).  u is clamped from below to -127 (NaN kept): u = -127 (which
 * covers -inf) has j = 0, whose mantissa field is 0, and n + 127 = 0, so it
 * gives exactly +0.0; -127 < u < -126 gives a subnormal below 2^-126
 * (approximate).  r = u - k/8 is exact. */
SDPA_INLINE vf vexp2_softmax(vf u, vtab8 table) {
    /* 1.5 * 2^20 + 127: t's last 3 mantissa bits are j and the 9 above them
     * n + 127 (the float's exponent field, once shifted left by 20) */
    const vf magic = vset1(1572991.0f);
    u = vmax(vset1(-127.0f), u);
    vf t = vadd(u, magic);
    vf r = vsub(u, vsub(t, magic));
    vi ti = vbits(t);
    vi field = vi_and(vi_slli(ti, 20), vi_set1(0x7F800000));
    vf a = vfloat(vi_add(vtab8_lookup(table, ti), field));
    vf q = vfma(vset1(SDPA_EXP2_Q2), r, vset1(SDPA_EXP2_Q1));
    q = vfma(q, r, vset1(SDPA_EXP2_Q0));
    return vfma(a, vmul(q, r), a);                 /* a * (1 + r q) */
}

/* The table vexp2_softmax reads: the mantissa fields of 2^(j/8), j < 8 (the
 * exponent field, 127, taken off). */
SDPA_INLINE vtab8 vexp2_table(void) {
    static const float eighths[8] = {SDPA_EXP2_EIGHTHS};
    float t[8];
    for (int j = 0; j < 8; j++) t[j] = sdpa_u2f(sdpa_f2u(eighths[j]) - 0x3F800000u);
    return vtab8_load(t);
}

/* |v|: the sign bit cleared. */
SDPA_INLINE vf vabs(vf v) { return vandnot(vset1(-0.0f), v); }

/* cap * tanh(x / cap), -inf kept (the method is in sdpa_internal.h). */
SDPA_INLINE vf vsoftcap(vf x, vf vcap) {
    const vf sign = vset1(-0.0f), ninf = vneg_inf();
    vf u = vdiv(x, vcap);
    vf au = vabs(u);
    vm small = vcmp_lt(au, vset1(SDPA_TANH_SMALL));
    /* |u| < 0.625: cap * (u + u^3 P(u^2)) = x + x * (u^2 P(u^2)), formed from
     * x itself: no rounding of x / cap or of the final product, and tiny or
     * subnormal x come back unchanged. */
    vf z = vmul(u, u);
    vf p = vset1(SDPA_TANH_P4);
    p = vfma(p, z, vset1(SDPA_TANH_P3));
    p = vfma(p, z, vset1(SDPA_TANH_P2));
    p = vfma(p, z, vset1(SDPA_TANH_P1));
    p = vfma(p, z, vset1(SDPA_TANH_P0));
    vf y = vfma(vmul(p, z), x, x);
    if (vmask_bits(small) != (1 << SDPA_VL) - 1) {
        /* |u| >= 0.625 (or NaN): cap * (1 - 2/(exp(2|u|) + 1)), sign below.
         * vmin keeps NaN and clamps +inf (-> 1); 2|u| <= 19: vexp_fast is valid. */
        const vf one = vset1(1.0f);
        vf a = vmin(vset1(SDPA_TANH_CLAMP), au);
        vf e = vexp_fast(vadd(a, a));
        vf t = vsub(one, vdiv(vset1(2.0f), vadd(e, one)));
        y = vblend(small, vmul(vcap, t), y);
    }
    /* tanh is odd: |y| with the sign of x (also makes -0 -> -0) */
    y = vor(vandnot(sign, y), vand(sign, x));
    return vblend(vcmp_eq(x, ninf), y, ninf);
}

#endif
