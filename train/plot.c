/* plot.c: lays out and draws the two panels of plot.h (loss on top,
 * learning rate below, one step axis) and writes the PNG. Sizes scale with
 * the image: the font is magnified by a whole factor s chosen from the
 * smaller side, and margins follow from the widest tick label. */
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "png.h"

static const struct raster_color COL_BG = { 255, 255, 255 };
static const struct raster_color COL_GRID = { 230, 230, 230 };
static const struct raster_color COL_FRAME = { 70, 70, 70 };
static const struct raster_color COL_TEXT = { 25, 25, 25 };
static const struct raster_color COL_MUTED = { 105, 105, 105 };
static const struct raster_color COL_LEGEND = { 185, 185, 185 };
static const struct raster_color COL_TRAIN = { 31, 119, 180 };
static const struct raster_color COL_VALID = { 230, 110, 10 };
static const struct raster_color COL_LR = { 44, 150, 44 };

struct panel {
	struct raster_rect area;     /* the data rectangle, inside the frame */
	const struct plot_axis *x;
	struct plot_axis y;
	bool has_data;
};

struct layout {
	int s;                       /* font magnification */
	int tick;                    /* tick mark length */
	struct panel loss, lr;
	struct plot_axis x;
};

struct plot_opts plot_opts_default(void)
{
	return (struct plot_opts){ .width = 900, .height = 600, .log_y = false, .smooth = -1 };
}

int plot_opts_validate(const struct plot_opts *o, struct hug_error *err)
{
	if (o->width < PLOT_MIN_WIDTH || o->width > PLOT_MAX_DIM)
		return hug_error_set(err, "--width: expected %d to %d pixels, got %d",
				     PLOT_MIN_WIDTH, PLOT_MAX_DIM, o->width);
	if (o->height < PLOT_MIN_HEIGHT || o->height > PLOT_MAX_DIM)
		return hug_error_set(err, "--height: expected %d to %d pixels, got %d",
				     PLOT_MIN_HEIGHT, PLOT_MAX_DIM, o->height);
	if (o->smooth < -1 || o->smooth > PLOT_MAX_SMOOTH)
		return hug_error_set(err, "--smooth: expected -1 (auto), 0 (off) or a window "
				     "of up to %d points, got %d", PLOT_MAX_SMOOTH, o->smooth);
	return 0;
}

/* Widens [*lo, *hi] (start lo = INFINITY, hi = -INFINITY) by the series. */
static void extent(const struct plot_series *s, bool steps, double *lo, double *hi)
{
	for (size_t i = 0; i < s->n; i++) {
		double v = steps ? s->pts[i].step : s->pts[i].value;
		*lo = fmin(*lo, v);
		*hi = fmax(*hi, v);
	}
}

static double px_x(const struct panel *p, double v)
{
	return p->area.x0 + plot_axis_frac(p->x, v) * (p->area.x1 - p->area.x0);
}

static double px_y(const struct panel *p, double v)
{
	return p->area.y1 - plot_axis_frac(&p->y, v) * (p->area.y1 - p->area.y0);
}

static int clampi(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Widest label among the ticks of a, in pixels at scale s. */
static int widest_label(const struct plot_axis *a, int s)
{
	char buf[32];
	int w = 0;
	for (int i = 0; i < a->n_ticks; i++) {
		plot_axis_label(a, i, buf, sizeof(buf));
		int t = raster_text_width(buf, s);
		w = t > w ? t : w;
	}
	return w;
}

/* The y axes of both panels for plot areas of the given heights. */
static int y_axes(struct layout *L, const struct plot_metrics *m, bool log_y,
		  int loss_h, int lr_h, struct hug_error *err)
{
	double lo = INFINITY, hi = -INFINITY;
	extent(&m->loss, false, &lo, &hi);
	extent(&m->valid, false, &lo, &hi);
	int t = clampi(loss_h / (26 * L->s), 2, 10);
	if (log_y && !(lo > 0))
		return hug_error_set(err, "--log-y: the loss has values <= 0 (lowest %g)", lo);
	if (log_y)
		plot_axis_log(&L->loss.y, lo, hi, t);
	else
		plot_axis_linear(&L->loss.y, lo, hi, t, true);
	L->loss.has_data = true;
	lo = INFINITY;
	hi = -INFINITY;
	extent(&m->lr, false, &lo, &hi);
	L->lr.has_data = m->lr.n > 0;
	if (!L->lr.has_data)
		lo = 0, hi = 1;
	plot_axis_linear(&L->lr.y, fmin(lo, 0), hi, clampi(lr_h / (26 * L->s), 2, 8), true);
	if (!L->lr.has_data)
		L->lr.y.n_ticks = 0;
	return 0;
}

/* The step axis for a plot area `w` pixels wide: the steps of all series,
 * from 0 when the first step is near it. */
static void x_axis(struct layout *L, const struct plot_metrics *m, int w)
{
	double lo = INFINITY, hi = -INFINITY;
	char buf[32];
	extent(&m->loss, true, &lo, &hi);
	extent(&m->valid, true, &lo, &hi);
	extent(&m->lr, true, &lo, &hi);
	if (lo > 0 && lo <= 0.05 * hi)
		lo = 0;   /* runs logged from step 1 still start the axis at 0 */
	plot_format_number(hi, 1, hi >= 1e6, buf, sizeof(buf));
	int lw = raster_text_width(buf, L->s) + 28 * L->s;
	plot_axis_linear(&L->x, lo, hi, clampi(w / lw, 2, 12), false);
}

/* Places everything; -1 with err when the image is too small for it. */
static int lay_out(struct layout *L, const struct plot_metrics *m,
		   const struct plot_opts *o, struct hug_error *err)
{
	int W = o->width, H = o->height;
	int s = clampi((int)lround(fmin(W, H) / 250.0), 1, 4);
	int pad = 8 * s, title_h = 12 * s, xlab_h = 3 * s + 11 * s, gap = 8 * s;
	int xtitle_h = 9 * s;
	L->s = s;
	L->tick = 3 * s;
	int avail = H - 2 * pad - 2 * title_h - 2 * xlab_h - gap - xtitle_h;
	int loss_h = avail * 3 / 5, lr_h = avail - loss_h;
	if (loss_h < 40 || lr_h < 30)
		return hug_error_set(err, "--height: %d pixels leave no room for the panels", H);
	if (y_axes(L, m, o->log_y, loss_h, lr_h, err))
		return -1;
	int yl = widest_label(&L->loss.y, s), yl2 = widest_label(&L->lr.y, s);
	int left = pad + (yl > yl2 ? yl : yl2) + 3 * s + L->tick;
	int right = pad + 9 * s;
	x_axis(L, m, W - left - right);
	char buf[32] = "";
	if (L->x.n_ticks > 0)
		plot_axis_label(&L->x, L->x.n_ticks - 1, buf, sizeof(buf));
	right = pad + raster_text_width(buf, s) / 2;
	if (W - left - right < 60)
		return hug_error_set(err, "--width: %d pixels leave no room for the panels", W);
	x_axis(L, m, W - left - right);
	int y0 = pad + title_h;
	L->loss.area = (struct raster_rect){ left, y0, W - right, y0 + loss_h };
	y0 += loss_h + xlab_h + gap + title_h;
	L->lr.area = (struct raster_rect){ left, y0, W - right, y0 + lr_h };
	L->loss.x = L->lr.x = &L->x;
	return 0;
}

/* Grid lines, frame, ticks and tick labels of a panel. */
static void draw_axes(struct raster *r, const struct layout *L, const struct panel *p)
{
	const struct raster_rect a = p->area;
	int s = L->s, last = -(1 << 30);
	char buf[32];
	for (int i = 0; i < p->y.n_ticks; i++) {
		int y = clampi((int)floor(px_y(p, p->y.ticks[i])), a.y0, a.y1 - 1);
		raster_fill_rect(r, a.x0, y, a.x1, y + 1, COL_GRID);
	}
	for (int i = 0; i < p->x->n_ticks; i++) {
		int x = clampi((int)floor(px_x(p, p->x->ticks[i])), a.x0, a.x1 - 1);
		raster_fill_rect(r, x, a.y0, x + 1, a.y1, COL_GRID);
		raster_fill_rect(r, x, a.y1 + 1, x + 1, a.y1 + 1 + L->tick, COL_FRAME);
		plot_axis_label(p->x, i, buf, sizeof(buf));
		int w = raster_text_width(buf, s), lx = x - w / 2;
		if (lx < last + 4 * s)
			continue;   /* would touch the previous label */
		raster_text(r, lx, a.y1 + 1 + L->tick + 3 * s, buf, s, COL_TEXT);
		last = lx + w;
	}
	raster_fill_rect(r, a.x0 - 1, a.y0 - 1, a.x1 + 1, a.y0, COL_FRAME);
	raster_fill_rect(r, a.x0 - 1, a.y1, a.x1 + 1, a.y1 + 1, COL_FRAME);
	raster_fill_rect(r, a.x0 - 1, a.y0 - 1, a.x0, a.y1 + 1, COL_FRAME);
	raster_fill_rect(r, a.x1, a.y0 - 1, a.x1 + 1, a.y1 + 1, COL_FRAME);
	last = 1 << 30;
	for (int i = 0; i < p->y.n_ticks; i++) {
		int y = clampi((int)floor(px_y(p, p->y.ticks[i])), a.y0, a.y1 - 1);
		raster_fill_rect(r, a.x0 - 1 - L->tick, y, a.x0 - 1, y + 1, COL_FRAME);
		plot_axis_label(&p->y, i, buf, sizeof(buf));
		int top = y - RASTER_GLYPH_CAP * s / 2;
		if (top + RASTER_GLYPH_CAP * s + 3 * s > last)
			continue;   /* too close to the label above it */
		int w = raster_text_width(buf, s);
		raster_text(r, a.x0 - 1 - L->tick - 3 * s - w, top, buf, s, COL_TEXT);
		last = top;
	}
}

/* The panel title above its left end, and a muted note above its right
 * end when there is room for it. */
static void draw_title(struct raster *r, const struct layout *L, const struct panel *p,
		       const char *title, const char *note)
{
	int s = L->s, top = p->area.y0 - 1 - 3 * s - RASTER_GLYPH_CAP * s;
	int tw = raster_text_width(title, s), nw = raster_text_width(note, s);
	raster_text(r, p->area.x0, top, title, s, COL_TEXT);
	if (p->area.x1 - nw > p->area.x0 + tw + 8 * s)
		raster_text(r, p->area.x1 - nw, top, note, s, COL_MUTED);
}

static double line_width(const struct layout *L)
{
	return 1.0 + 0.4 * L->s;
}

/* Strokes the n points (steps x, values v) as a line in panel coordinates,
 * `width` pixels wide. */
static void draw_line(struct raster *r, const struct panel *p, const double *x,
		      const double *v, size_t n, double width, struct raster_color c)
{
	if (n == 0)
		return;
	double *px = hug_malloc(n * sizeof(double));
	double *py = hug_malloc(n * sizeof(double));
	for (size_t i = 0; i < n; i++) {
		px[i] = px_x(p, x[i]);
		py[i] = px_y(p, v[i]);
	}
	raster_polyline(r, px, py, (int)n, width, c, p->area);
	hug_free(px);
	hug_free(py);
}

/* Splits a series into new arrays of steps and values; free both. */
static void unzip(const struct plot_series *sr, double **x, double **v)
{
	*x = hug_malloc((sr->n ? sr->n : 1) * sizeof(double));
	*v = hug_malloc((sr->n ? sr->n : 1) * sizeof(double));
	for (size_t i = 0; i < sr->n; i++) {
		(*x)[i] = sr->pts[i].step;
		(*v)[i] = sr->pts[i].value;
	}
}

/* Replaces v[0..n) by its centred moving average over `window` points;
 * near the ends the window is cut short (so the ends stay as smooth as
 * the middle, at the price of a little lag there). */
static void smooth(double *v, size_t n, int window)
{
	size_t h = (size_t)(window / 2);
	double *sum = hug_malloc((n + 1) * sizeof(double));
	sum[0] = 0;
	for (size_t i = 0; i < n; i++)
		sum[i + 1] = sum[i] + v[i];
	for (size_t i = 0; i < n; i++) {
		size_t a = i > h ? i - h : 0, b = i + h < n - 1 ? i + h : n - 1;
		v[i] = (sum[b + 1] - sum[a]) / (double)(b - a + 1);
	}
	hug_free(sum);
}

/* The moving-average window for the training loss: the option, or when
 * it is -1 (auto) and there are more points than pixel columns, about a
 * 150th of the points (at least 9). 0 or 1: no smoothing. */
static int smooth_window(const struct plot_opts *o, size_t n, int plot_w)
{
	if (o->smooth >= 0)
		return o->smooth;
	if (n <= (size_t)plot_w)
		return 0;
	size_t w = 2 * (n / 300) + 1;
	return w < 9 ? 9 : w > PLOT_MAX_SMOOTH ? PLOT_MAX_SMOOTH : (int)w;
}

/* A filled marker with a white rim, so it stands out on a line. */
static void draw_marker(struct raster *r, const struct layout *L, double x, double y,
			struct raster_color c, struct raster_rect clip)
{
	double rad = 1.5 + 1.25 * L->s;
	int out = (int)ceil(rad) + 2;
	/* markers at the edge may overlap the frame rather than be cut */
	clip.x0 -= out;
	clip.y0 -= out;
	clip.x1 += out;
	clip.y1 += out;
	raster_disc(r, x, y, rad + 1.0, COL_BG, clip);
	raster_disc(r, x, y, rad, c, clip);
}

/* How many strongly coloured pixels (curves, markers) lie in the box. */
static int colored_in(const struct raster *r, struct raster_rect b)
{
	int n = 0;
	for (int y = b.y0; y < b.y1; y++)
		for (int x = b.x0; x < b.x1; x++) {
			struct raster_color c = raster_get(r, x, y);
			if (abs(c.r - c.g) + abs(c.g - c.b) + abs(c.r - c.b) > 40)
				n++;
		}
	return n;
}

struct legend_entry {
	const char *label;
	struct raster_color c;
	bool marker;             /* a marker sample, else a line */
};

/* The legend in the corner of the loss panel that hides the fewest curve
 * pixels (tried in the order top right, top left, bottom right, bottom
 * left). */
static void draw_legend(struct raster *r, const struct layout *L,
			const struct legend_entry *e, int n)
{
	const struct raster_rect a = L->loss.area;
	int s = L->s, in = 5 * s, row = 12 * s, sample = 16 * s, tw = 0;
	for (int i = 0; i < n; i++) {
		int t = raster_text_width(e[i].label, s);
		tw = t > tw ? t : tw;
	}
	int w = in + sample + 4 * s + tw + in;
	int h = in + n * row - 5 * s + in, mg = 6 * s;
	if (n == 0 || w + 2 * mg > a.x1 - a.x0 || h + 2 * mg > a.y1 - a.y0)
		return;
	struct raster_rect c[4] = {
		{ a.x1 - mg - w, a.y0 + mg, a.x1 - mg, a.y0 + mg + h },
		{ a.x0 + mg, a.y0 + mg, a.x0 + mg + w, a.y0 + mg + h },
		{ a.x1 - mg - w, a.y1 - mg - h, a.x1 - mg, a.y1 - mg },
		{ a.x0 + mg, a.y1 - mg - h, a.x0 + mg + w, a.y1 - mg },
	};
	int best = 0, best_n = colored_in(r, c[0]);
	for (int i = 1; i < 4 && best_n > 0; i++) {
		int k = colored_in(r, c[i]);
		if (k < best_n)
			best = i, best_n = k;
	}
	struct raster_rect b = c[best];
	raster_fill_rect(r, b.x0, b.y0, b.x1, b.y1, COL_LEGEND);
	raster_fill_rect(r, b.x0 + 1, b.y0 + 1, b.x1 - 1, b.y1 - 1, COL_BG);
	int y = b.y0 + in, x = b.x0 + in;
	for (int i = 0; i < n; i++, y += row) {
		double cy = y + RASTER_GLYPH_CAP * s / 2.0;
		if (e[i].marker) {
			draw_marker(r, L, x + sample / 2.0, cy, e[i].c, b);
		} else {
			double lx[2] = { x, x + sample }, ly[2] = { cy, cy };
			raster_polyline(r, lx, ly, 2, line_width(L), e[i].c, b);
		}
		raster_text(r, x + sample + 4 * s, y, e[i].label, s, COL_TEXT);
	}
}

/* v as printf's %.4g with the exponent compacted: 3e-05 becomes 3e-5. */
static void fmt_value(double v, char *buf, size_t n)
{
	char t[24], *e;
	snprintf(t, sizeof(t), "%.4g", v);
	e = strchr(t, 'e');
	if (e) {
		int x = atoi(e + 1);
		*e = '\0';
		snprintf(buf, n, "%se%d", t, x);
	} else {
		snprintf(buf, n, "%s", t);
	}
}

/* The latest losses for the loss title: "step N: train X, valid Y", or
 * "train X (step N), valid Y (step M)" when their steps differ. */
static void loss_note(const struct plot_metrics *m, char *buf, size_t n)
{
	const struct plot_point *t = m->loss.n ? &m->loss.pts[m->loss.n - 1] : NULL;
	const struct plot_point *v = m->valid.n ? &m->valid.pts[m->valid.n - 1] : NULL;
	char a[48] = "", b[48] = "";
	if (t)
		fmt_value(t->value, a, sizeof(a));
	if (v)
		fmt_value(v->value, b, sizeof(b));
	if (t && v && t->step == v->step)
		snprintf(buf, n, "step %.0f: train %s, valid %s", t->step, a, b);
	else if (t && v)
		snprintf(buf, n, "train %s (step %.0f), valid %s (step %.0f)", a, t->step,
			 b, v->step);
	else if (t)
		snprintf(buf, n, "step %.0f: train %s", t->step, a);
	else
		snprintf(buf, n, "step %.0f: valid %s", v->step, b);
}

/* The train tint under a smoothed curve: 35% of the colour on white. */
static struct raster_color tint(struct raster_color c)
{
	return (struct raster_color){ (uint8_t)(255 - 0.35 * (255 - c.r)),
				      (uint8_t)(255 - 0.35 * (255 - c.g)),
				      (uint8_t)(255 - 0.35 * (255 - c.b)) };
}

static void draw_loss(struct raster *r, const struct layout *L,
		      const struct plot_metrics *m, const struct plot_opts *o)
{
	const struct panel *p = &L->loss;
	struct legend_entry e[3];
	char note[128] = "";
	int n_e = 0;
	double *x, *v;
	draw_axes(r, L, p);
	unzip(&m->loss, &x, &v);
	int window = smooth_window(o, m->loss.n, p->area.x1 - p->area.x0);
	if (m->loss.n && window > 1) {
		draw_line(r, p, x, v, m->loss.n, 1.0, tint(COL_TRAIN));
		smooth(v, m->loss.n, window);
		e[n_e++] = (struct legend_entry){ "train", tint(COL_TRAIN), false };
		e[n_e++] = (struct legend_entry){ "smoothed", COL_TRAIN, false };
	} else if (m->loss.n) {
		e[n_e++] = (struct legend_entry){ "train", COL_TRAIN, false };
	}
	draw_line(r, p, x, v, m->loss.n, line_width(L), COL_TRAIN);
	hug_free(x);
	hug_free(v);
	for (size_t i = 0; i < m->valid.n; i++)
		draw_marker(r, L, px_x(p, m->valid.pts[i].step), px_y(p, m->valid.pts[i].value),
			    COL_VALID, p->area);
	if (m->valid.n)
		e[n_e++] = (struct legend_entry){ "valid", COL_VALID, true };
	loss_note(m, note, sizeof(note));
	draw_title(r, L, p, o->log_y ? "loss (log scale)" : "loss", note);
	draw_legend(r, L, e, n_e);
}

static void draw_lr(struct raster *r, const struct layout *L, const struct plot_metrics *m)
{
	const struct panel *p = &L->lr;
	char note[96] = "";
	draw_axes(r, L, p);
	if (!p->has_data) {
		const char *msg = "no learning rate logged";
		int w = raster_text_width(msg, L->s);
		raster_text(r, (p->area.x0 + p->area.x1 - w) / 2,
			    (p->area.y0 + p->area.y1 - RASTER_GLYPH_CAP * L->s) / 2, msg, L->s,
			    COL_MUTED);
	} else {
		const struct plot_point *last = &m->lr.pts[m->lr.n - 1];
		char val[48];
		double *x, *v;
		fmt_value(last->value, val, sizeof(val));
		snprintf(note, sizeof(note), "step %.0f: lr %s", last->step, val);
		unzip(&m->lr, &x, &v);
		draw_line(r, p, x, v, m->lr.n, line_width(L), COL_LR);
		hug_free(x);
		hug_free(v);
	}
	draw_title(r, L, p, "learning rate", note);
	int w = raster_text_width("step", L->s);
	raster_text(r, (p->area.x0 + p->area.x1 - w) / 2,
		    p->area.y1 + 1 + L->tick + 3 * L->s + 10 * L->s, "step", L->s, COL_TEXT);
}

int plot_render(const struct plot_metrics *m, const struct plot_opts *o,
		struct raster *r, struct hug_error *err)
{
	struct layout L;
	memset(&L, 0, sizeof(L));
	memset(r, 0, sizeof(*r));
	if (plot_opts_validate(o, err))
		return -1;
	if (m->loss.n == 0 && m->valid.n == 0)
		return hug_error_set(err, "no loss values to plot");
	raster_init(r, o->width, o->height, COL_BG);
	if (lay_out(&L, m, o, err))
		return -1;
	draw_loss(r, &L, m, o);
	draw_lr(r, &L, m);
	return 0;
}

/* dir + "/" + name in a new hug_malloc'd string. */
static char *join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = hug_malloc(a + b + 2);
	memcpy(p, dir, a);
	p[a] = '/';
	memcpy(p + a + 1, name, b + 1);
	return p;
}

int plot_run(const char *run_dir, const char *out_path, const struct plot_opts *o,
	     size_t *n_nonfinite, char *out_used, size_t n_out, struct hug_error *err)
{
	struct plot_metrics m;
	struct raster r = { 0 };
	char *in = join(run_dir, "metrics.jsonl");
	char *out = out_path ? hug_strdup(out_path) : join(run_dir, "curves.png");
	int rc = -1;
	memset(&m, 0, sizeof(m));
	if (plot_opts_validate(o, err) || plot_metrics_read(in, &m, err))
		goto done;
	if (n_nonfinite)
		*n_nonfinite = m.n_nonfinite;
	if (plot_render(&m, o, &r, err) || png_write_rgb(out, r.rgb, r.w, r.h, err))
		goto done;
	if (out_used)
		snprintf(out_used, n_out, "%s", out);
	rc = 0;
done:
	raster_free(&r);
	plot_metrics_free(&m);
	hug_free(in);
	hug_free(out);
	return rc;
}
