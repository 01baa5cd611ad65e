/* layout.tmpl.h: REAL-typed strided accumulation (see instantiate.h). */

/* dst (strides ds, 4-D padded shape s) += src (contiguous). */
static void FN(strided_add)(REAL *dst, const int64_t *ds, const REAL *src,
			    const int64_t *s)
{
	int64_t outer = s[0] * s[1] * s[2];
#pragma omp parallel for if (outer * s[3] >= CPU_PAR_MIN)
	for (int64_t o = 0; o < outer; o++) {
		int64_t i0 = o / (s[1] * s[2]), i1 = o / s[2] % s[1], i2 = o % s[2];
		REAL *pd = dst + i0 * ds[0] + i1 * ds[1] + i2 * ds[2];
		const REAL *ps = src + o * s[3];
		for (int64_t i = 0; i < s[3]; i++)
			pd[i * ds[3]] += ps[i];
	}
}
