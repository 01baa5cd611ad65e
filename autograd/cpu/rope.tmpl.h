/* rope.tmpl.h: REAL-typed bodies of the rotary position embedding
 * (ag_rope; see instantiate.h). Angles are pos * inv_freq formed in REAL
 * (f32: the position and inv_freq rounded to f32 first, as transformers'
 * LlamaRotaryEmbedding forms them in f32), cos and sin in REAL. */
#include <tgmath.h>

#define ROPE_SPAN 128 /* pairs whose cos and sin are formed at a time */

/* cos and sin of pos * inv_freq[i0 + i] for i < n. */
static void FN(rope_angles)(int32_t pos, const double *inv_freq, int64_t i0, int64_t n,
			    REAL *cs, REAL *sn)
{
	REAL p = (REAL)pos;
	for (int64_t i = 0; i < n; i++) {
		REAL a = p * (REAL)inv_freq[i0 + i];
		cs[i] = cos(a);
		sn[i] = sin(a);
	}
}

/* x (B, H, T, D) with element strides sx (sx[3] == 1), y (B, H, T, D)
 * contiguous, pos (B, T), inv_freq (D/2). bwd: the rotation by -a, of dy
 * (contiguous) added into dx (contiguous): the same loop with sin negated
 * and accumulation. */
static void FN(rope_apply)(const int64_t *shape, const int64_t *sx, const REAL *x,
			   const int32_t *pos, const double *inv_freq, REAL *y, bool inverse)
{
	int64_t b_n = shape[0], h_n = shape[1], t_n = shape[2], d = shape[3], d2 = d / 2;
#pragma omp parallel for if (b_n * h_n * t_n * d >= CPU_PAR_MIN / 4)
	for (int64_t bt = 0; bt < b_n * t_n; bt++) {
		int64_t b = bt / t_n, t = bt % t_n;
		REAL cs[ROPE_SPAN], sn[ROPE_SPAN];
		for (int64_t i0 = 0; i0 < d2; i0 += ROPE_SPAN) {
			int64_t n = d2 - i0 < ROPE_SPAN ? d2 - i0 : ROPE_SPAN;
			FN(rope_angles)(pos[bt], inv_freq, i0, n, cs, sn);
			for (int64_t h = 0; h < h_n; h++) {
				const REAL *xp = x + b * sx[0] + h * sx[1] + t * sx[2] + i0;
				REAL *yp = y + ((b * h_n + h) * t_n + t) * d + i0;
				if (!inverse) {
					for (int64_t i = 0; i < n; i++) {
						REAL x1 = xp[i], x2 = xp[i + d2];
						yp[i] = x1 * cs[i] - x2 * sn[i];
						yp[i + d2] = x2 * cs[i] + x1 * sn[i];
					}
				} else {
					for (int64_t i = 0; i < n; i++) {
						REAL g1 = xp[i], g2 = xp[i + d2];
						yp[i] += g1 * cs[i] + g2 * sn[i];
						yp[i + d2] += g2 * cs[i] - g1 * sn[i];
					}
				}
			}
		}
	}
}

#undef ROPE_SPAN
