/* optim.tmpl.h: REAL-typed optimizer updates and the sum of squares of the
 * gradient norm (see instantiate.h); optim.c instantiates them. */
#include <tgmath.h>

#include "fast_math.h" /* FN(CPU_CLONES) */

/* PyTorch's single-tensor AdamW, element by element:
 *   p *= 1 - lr wd;  m += (1 - b1)(g - m);  v = b2 v + (1 - b2) g^2;
 *   p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps).
 * One span, vectorised (optim.c is built with -fno-math-errno so that
 * sqrt, still correctly rounded, can be; the bits do not change). */
FN(CPU_CLONES) static void FN(adamw_span)(int64_t n, REAL *p, const REAL *g, REAL *m,
					  REAL *v, REAL decay, REAL w1, REAL rb2, REAL w2,
					  REAL step, REAL bc2s, REAL e)
{
#pragma omp simd
	for (int64_t i = 0; i < n; i++) {
		p[i] *= decay;
		m[i] += w1 * (g[i] - m[i]);
		v[i] = v[i] * rb2 + w2 * g[i] * g[i];
		p[i] -= step * (m[i] / (sqrt(v[i]) / bc2s + e));
	}
}

#define ADAMW_SPAN 4096

static void FN(adamw_update)(int64_t n, REAL *p, const REAL *g, REAL *m, REAL *v,
			     double lr, double wd, double b1, double b2, double eps,
			     double bc1, double bc2)
{
	const REAL decay = (REAL)(1.0 - lr * wd), w1 = (REAL)(1.0 - b1);
	const REAL rb2 = (REAL)b2, w2 = (REAL)(1.0 - b2);
	const REAL step = (REAL)(lr / bc1), bc2s = (REAL)sqrt(bc2), e = (REAL)eps;
#pragma omp parallel for if (n >= 65536)
	for (int64_t i = 0; i < n; i += ADAMW_SPAN)
		FN(adamw_span)(n - i < ADAMW_SPAN ? n - i : ADAMW_SPAN, p + i, g + i, m + i,
			       v + i, decay, w1, rb2, w2, step, bc2s, e);
}

#undef ADAMW_SPAN

/* PyTorch's SGD: g += wd p; with momentum, buf = momentum buf + g (buf = g
 * on the first step), g = nesterov ? g + momentum buf : buf; p -= lr g. */
static void FN(sgd_update)(int64_t n, REAL *p, const REAL *g, REAL *buf, double lr,
			   double wd, double momentum, bool nesterov, bool first)
{
	const REAL rl = (REAL)lr, rw = (REAL)wd, mo = (REAL)momentum;
#pragma omp parallel for if (n >= 65536)
	for (int64_t i = 0; i < n; i++) {
		REAL d = g[i] + rw * p[i];
		if (buf) {
			buf[i] = first ? d : mo * buf[i] + d;
			d = nesterov ? d + mo * buf[i] : buf[i];
		}
		p[i] -= rl * d;
	}
}

static double FN(sum_squares)(int64_t n, const REAL *x)
{
	double s = 0;
	for (int64_t i = 0; i < n; i++)
		s += (double)x[i] * (double)x[i];
	return s;
}
