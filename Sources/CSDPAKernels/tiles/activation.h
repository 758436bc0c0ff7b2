/* Element-wise activations of the layers' matrix products (applied to each
 * finished block of the output while it is in cache). */
#ifndef SDPA_TILES_ACTIVATION_H
#define SDPA_TILES_ACTIVATION_H

/* GELU of one vector (see sdpa_gelu_f32). */
SDPA_INLINE vf vgelu(vf x) {
    const vf z = vmul(vabs(x), vset1(0.70710678118654752f)); /* |x| / sqrt 2 */
    const vf t = vdiv(vset1(1.0f), vfma(z, vset1(0.3275911f), vset1(1.0f)));
    vf p = vfma(vset1(1.061405429f), t, vset1(-1.453152027f));
    p = vfma(p, t, vset1(1.421413741f));
    p = vfma(p, t, vset1(-0.284496736f));
    p = vfma(p, t, vset1(0.254829592f));
    const vf erfc = vmul(vmul(p, t), vexp(vmul(vmul(x, x), vset1(-0.5f)))); /* erfc(|x| / sqrt 2) */
    const vm negative = vcmp_lt(x, vzero());
    const vf onePlusErf = vblend(negative, vsub(vset1(2.0f), erfc), erfc);
    /* NaN passes through (x times anything); +inf gives inf (erfc 0); -inf gives 0, not -inf * 0. */
    return vzero_where(vcmp_eq(x, vneg_inf()), vmul(vmul(vset1(0.5f), x), onePlusErf));
}

static void k_gelu_f32(size_t n, const float *x, float *y) { vmap_f32(n, x, y, vgelu); }

#endif
