/* plot_axis.c: axis ranges, "nice" tick positions (1, 2, 5 x 10^k) and
 * tick labels for plot.h. */
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The nice spacing (1, 2, 5 or 10 x 10^k) nearest to range / target on a
 * log scale, so the tick count lands near target. */
static double nice_step(double range, int target)
{
	static const double m[4] = { 1, 2, 5, 10 };
	double raw = range / target;
	double mag = pow(10, floor(log10(raw)));
	double best = mag;
	for (int i = 1; i < 4; i++)
		if (fabs(log(m[i] * mag / raw)) < fabs(log(best / raw)))
			best = m[i] * mag;
	return best;
}

/* Labels switch to mantissa-e-exponent outside [1e-3, 1e6). */
static void decide_sci(struct plot_axis *a)
{
	double amax = 0, amin = INFINITY;
	for (int i = 0; i < a->n_ticks; i++) {
		double v = fabs(a->ticks[i]);
		amax = fmax(amax, v);
		if (v > 0)
			amin = fmin(amin, v);
	}
	a->sci = amax > 0 && (amax >= 1e6 || amax < 1e-3 || (a->log && amin < 1e-3));
}

/* Ticks k * st for k in [kl, kh]; false (and nothing stored) when there
 * would be more than PLOT_MAX_TICKS. */
static bool put_ticks(struct plot_axis *a, double kl, double kh, double st)
{
	if (!(kh - kl + 1 <= PLOT_MAX_TICKS))
		return false;
	int n = (int)(kh - kl + 1);
	for (int i = 0; i < n; i++) {
		double k = kl + i;
		a->ticks[i] = k == 0 ? 0 : k * st;
		a->step[i] = st;
	}
	a->n_ticks = n > 0 ? n : 0;
	return true;
}

/* Widens a zero-width range around its value. */
static void widen(double *lo, double *hi)
{
	if (*hi - *lo > 1e-12 * fmax(fabs(*lo), fabs(*hi)))
		return;
	double d = *lo != 0 ? fabs(*lo) * 0.1 : 1;
	*lo -= d;
	*hi += d;
}

void plot_axis_linear(struct plot_axis *a, double lo, double hi, int target, bool snap)
{
	memset(a, 0, sizeof(*a));
	widen(&lo, &hi);
	a->lo = lo;
	a->hi = hi;
	for (int t = target < 2 ? 2 : target; t >= 1; t--) {
		double st = nice_step(hi - lo, t);
		if (!(isfinite(st) && st > 0))
			break;
		double kl = floor(lo / st + 1e-9), kh = ceil(hi / st - 1e-9);
		if (!snap) {
			kl = ceil(lo / st - 1e-9);
			kh = floor(hi / st + 1e-9);
		}
		if (put_ticks(a, kl, kh, st)) {
			if (snap) {
				a->lo = kl * st;
				a->hi = kh * st;
			}
			break;
		}
	}
	decide_sci(a);
}

/* Ticks at m x 10^k (m in mant[0..n_mant)) within [lo, hi]; their count,
 * stored in a only when store is true and they fit. */
static int mantissa_ticks(struct plot_axis *a, double lo, double hi, const int *mant,
			  int n_mant, bool store)
{
	int n = 0;
	for (double e = floor(log10(lo)) - 1; e <= ceil(log10(hi)); e++) {
		double p = pow(10, e);
		for (int i = 0; i < n_mant; i++) {
			double v = mant[i] * p;
			if (v < lo * (1 - 1e-9) || v > hi * (1 + 1e-9))
				continue;
			if (store && n < PLOT_MAX_TICKS) {
				a->ticks[n] = v;
				a->step[n] = p;
			}
			n++;
		}
	}
	if (store)
		a->n_ticks = n < PLOT_MAX_TICKS ? n : PLOT_MAX_TICKS;
	return n;
}

/* Powers of ten every `every` decades over whole decades around the range. */
static void decade_ticks(struct plot_axis *a, double la, double lb, int target)
{
	double ka = floor(la + 1e-9), kb = ceil(lb - 1e-9);
	double every = ceil((kb - ka) / target);
	ka = floor(ka / every) * every;
	kb = ceil(kb / every) * every;
	a->lo = pow(10, ka);
	a->hi = pow(10, kb);
	a->n_ticks = 0;
	for (double k = ka; k <= kb && a->n_ticks < PLOT_MAX_TICKS; k += every) {
		a->ticks[a->n_ticks] = pow(10, k);
		a->step[a->n_ticks++] = pow(10, k);
	}
}

/* Ticks for a range [lo, hi] of less than three decades: the sparsest of
 * 1, 2-5 or every digit x 10^k that gives 3 to target + 2 ticks, else
 * (within about a decade) at least 3 plain linear nice steps. */
static void sub_decade_ticks(struct plot_axis *a, int target)
{
	static const int m1[] = { 1 }, m125[] = { 1, 2, 5 };
	static const int m19[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	const int *sets[3] = { m1, m125, m19 };
	const int sizes[3] = { 1, 3, 9 };
	for (int s = 0; s < 3; s++) {
		int n = mantissa_ticks(a, a->lo, a->hi, sets[s], sizes[s], false);
		if (n >= 3 && n <= target + 2) {
			mantissa_ticks(a, a->lo, a->hi, sets[s], sizes[s], true);
			return;
		}
	}
	struct plot_axis lin;
	for (int t = target; t <= target + 4; t++) {
		plot_axis_linear(&lin, a->lo, a->hi, t, false);
		if (lin.n_ticks >= 3)
			break;
	}
	memcpy(a->ticks, lin.ticks, sizeof(a->ticks));
	memcpy(a->step, lin.step, sizeof(a->step));
	a->n_ticks = lin.n_ticks;
}

void plot_axis_log(struct plot_axis *a, double lo, double hi, int target)
{
	memset(a, 0, sizeof(*a));
	a->log = true;
	if (hi <= lo * (1 + 1e-9)) {
		lo /= 1.25;
		hi *= 1.25;
	}
	double la = log10(lo), lb = log10(hi), pad = 0.04 * (lb - la);
	if (target < 2)
		target = 2;
	if (lb - la >= 3) {
		decade_ticks(a, la, lb, target);
	} else {
		a->lo = pow(10, la - pad);
		a->hi = pow(10, lb + pad);
		sub_decade_ticks(a, target);
	}
	decide_sci(a);
}

double plot_axis_frac(const struct plot_axis *a, double v)
{
	if (a->log)
		return (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
	return (v - a->lo) / (a->hi - a->lo);
}

/* Drops trailing zeros (and then a trailing '.') after a decimal point. */
static void trim_zeros(char *s)
{
	if (!strchr(s, '.'))
		return;
	size_t n = strlen(s);
	while (n && s[n - 1] == '0')
		s[--n] = '\0';
	if (n && s[n - 1] == '.')
		s[--n] = '\0';
}

void plot_format_number(double v, double step, bool sci, char *buf, size_t n)
{
	if (fabs(v) <= step * 1e-6 || v == 0) {
		snprintf(buf, n, "0");
		return;
	}
	int sd = (int)floor(log10(step) + 1e-9);
	if (!sci) {
		snprintf(buf, n, "%.*f", sd < 0 ? -sd : 0, v);
		return;
	}
	int e = (int)floor(log10(fabs(v)) + 1e-9);
	int dec = e - sd < 0 ? 0 : e - sd > 6 ? 6 : e - sd;
	double mant = v / pow(10, e);
	if (fabs(mant) + 0.5 * pow(10, -dec) >= 10) {
		mant /= 10;
		e++;
	}
	char m[32];
	snprintf(m, sizeof(m), "%.*f", dec, mant);
	trim_zeros(m);
	snprintf(buf, n, "%se%d", m, e);
}

void plot_axis_label(const struct plot_axis *a, int i, char *buf, size_t n)
{
	plot_format_number(a->ticks[i], a->step[i], a->sci, buf, n);
}
