/* plot.c: lays out and draws the panels of plot.h with cairo (loss on
 * top, then learning rate, grad norm and tokens/s when logged, one step
 * axis) on any cairo surface; plot_file.c writes the PNG or SVG. Sizes
 * scale with the picture: fonts, line widths and margins follow a factor
 * s of the smaller side, and the left margin follows from the widest tick
 * label. Text goes through cairo's toy font API ("sans-serif" through
 * fontconfig, cairo's built-in font when no font is installed), so no X
 * server and no font package is needed to draw. */
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"

struct rgb {
	double r, g, b;
};

#define RGB8(r, g, b) { (r) / 255.0, (g) / 255.0, (b) / 255.0 }
static const struct rgb COL_BG = RGB8(255, 255, 255);
static const struct rgb COL_GRID = RGB8(225, 225, 225);
static const struct rgb COL_FRAME = RGB8(90, 90, 90);
static const struct rgb COL_TEXT = RGB8(25, 25, 25);
static const struct rgb COL_MUTED = RGB8(105, 105, 105);
static const struct rgb COL_LEGEND = RGB8(190, 190, 190);
static const struct rgb COL_TRAIN = RGB8(31, 119, 180);
static const struct rgb COL_VALID = RGB8(230, 110, 10);
static const struct rgb COL_LR = RGB8(44, 150, 44);
static const struct rgb COL_GRAD = RGB8(148, 103, 189);
static const struct rgb COL_TPS = RGB8(140, 86, 75);

/* Data beyond this magnitude is clamped so that ranges stay finite. */
#define VALUE_LIMIT 1e300

struct rect {
	double x0, y0, x1, y1;
};

enum { P_LOSS, P_LR, P_GRAD, P_TPS, P_COUNT };

struct panel {
	bool shown;
	const struct plot_series *s;   /* the panel's line */
	struct rgb color;
	bool noisy;                    /* smoothed when dense */
	const char *title;
	struct rect area;              /* the data rectangle */
	struct plot_axis y;
};

struct layout {
	double s;                      /* scale of sizes */
	double font, title_font;       /* in pixels */
	double tick;                   /* tick mark length */
	double lw;                     /* line width of the curves */
	struct panel p[P_COUNT];
	int bottom;                    /* index of the lowest shown panel */
	struct plot_axis x;
	const struct plot_opts *o;
};

/* LeakSanitizer's hook (make SANITIZE=1, the fuzz build; never called
 * otherwise): fontconfig keeps what cairo's first font lookup allocates
 * for the life of the process (FcFini would free it; cairo never calls
 * it), which is not a leak of hug's. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libfontconfig.so\n";
}

struct plot_opts plot_opts_default(void)
{
	return (struct plot_opts){ .width = 1000, .height = 800, .log_y = false, .smooth = -1 };
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

static double clampd(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* ---- cairo helpers ---- */

static void set_color(cairo_t *cr, struct rgb c, double alpha)
{
	cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha);
}

static void set_font(cairo_t *cr, double size, bool bold)
{
	cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
			       bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
	cairo_set_font_size(cr, size);
}

/* Advance width of t in the current font. */
static double text_w(cairo_t *cr, const char *t)
{
	cairo_text_extents_t e;
	cairo_text_extents(cr, t, &e);
	return isfinite(e.x_advance) ? e.x_advance : 0;
}

/* t with its left end at x and its baseline at y. */
static void text_at(cairo_t *cr, double x, double y, const char *t, struct rgb c)
{
	set_color(cr, c, 1);
	cairo_move_to(cr, x, y);
	cairo_show_text(cr, t);
	cairo_new_path(cr);
}

/* A one-pixel line from (x0, y0) to (x1, y1), snapped to pixel centres
 * when horizontal or vertical so that it stays crisp. */
static void hairline(cairo_t *cr, double x0, double y0, double x1, double y1,
		     struct rgb c, double width)
{
	if (x0 == x1)
		x0 = x1 = floor(x0) + 0.5;
	if (y0 == y1)
		y0 = y1 = floor(y0) + 0.5;
	set_color(cr, c, 1);
	cairo_set_line_width(cr, width);
	cairo_move_to(cr, x0, y0);
	cairo_line_to(cr, x1, y1);
	cairo_stroke(cr);
}

/* ---- axes and layout ---- */

/* Widens [*lo, *hi] (start lo = INFINITY, hi = -INFINITY) by the series. */
static void extent(const struct plot_series *s, bool steps, double *lo, double *hi)
{
	for (size_t i = 0; i < s->n; i++) {
		double v = steps ? s->pts[i].step : s->pts[i].value;
		v = clampd(v, -VALUE_LIMIT, VALUE_LIMIT);
		*lo = fmin(*lo, v);
		*hi = fmax(*hi, v);
	}
}

/* Device x of step v in panel p, and device y of value v; kept within a
 * band around the area so that cairo's fixed point never overflows. */
static double px_x(const struct layout *L, const struct panel *p, double v)
{
	double w = p->area.x1 - p->area.x0;
	double x = p->area.x0 + plot_axis_frac(&L->x, v) * w;
	return isfinite(x) ? clampd(x, p->area.x0 - 4 * w, p->area.x1 + 4 * w) : p->area.x0;
}

static double px_y(const struct panel *p, double v)
{
	double h = p->area.y1 - p->area.y0;
	double y = p->area.y1 - plot_axis_frac(&p->y, clampd(v, -VALUE_LIMIT, VALUE_LIMIT)) * h;
	return isfinite(y) ? clampd(y, p->area.y0 - 4 * h, p->area.y1 + 4 * h) : p->area.y1;
}

/* Widest tick label of a, in the current font. */
static double widest_label(cairo_t *cr, const struct plot_axis *a)
{
	char buf[32];
	double w = 0;
	for (int i = 0; i < a->n_ticks; i++) {
		plot_axis_label(a, i, buf, sizeof(buf));
		w = fmax(w, text_w(cr, buf));
	}
	return w;
}

/* The y axis of panel i for a plot area h pixels high. */
static int y_axis(struct layout *L, int i, const struct plot_metrics *m, double h,
		  struct hug_error *err)
{
	struct panel *p = &L->p[i];
	double lo = INFINITY, hi = -INFINITY;
	int t = (int)clampd(h / (28 * L->s), 2, 10);
	extent(p->s, false, &lo, &hi);
	if (i == P_LOSS) {
		extent(&m->valid, false, &lo, &hi);
		if (L->o->log_y && !(lo > 0))
			return hug_error_set(err, "--log-y: the loss has values <= 0 (lowest %g)",
					     lo);
		if (L->o->log_y)
			plot_axis_log(&p->y, lo, hi, t);
		else
			plot_axis_linear(&p->y, lo, hi, t, true);
	} else if (i == P_GRAD && lo > 0 && hi / lo >= 100) {
		plot_axis_log(&p->y, lo, hi, t);   /* spikes would flatten the rest */
	} else {
		plot_axis_linear(&p->y, fmin(lo, 0), hi, t, true);
	}
	/* a margin, so that lines along the ends stay clear of the frame */
	if (p->y.log) {
		double f = pow(p->y.hi / p->y.lo, 0.03);
		p->y.lo /= f;
		p->y.hi *= f;
	} else {
		double d = 0.03 * (p->y.hi - p->y.lo);
		p->y.lo -= d;
		p->y.hi += d;
	}
	return 0;
}

/* The step axis for plot areas `w` pixels wide: the steps of all series,
 * from 0 when the first step is near it. */
static void x_axis(cairo_t *cr, struct layout *L, const struct plot_metrics *m, double w)
{
	double lo = INFINITY, hi = -INFINITY;
	char buf[32];
	for (int i = 0; i < P_COUNT; i++)
		if (L->p[i].shown)
			extent(L->p[i].s, true, &lo, &hi);
	extent(&m->valid, true, &lo, &hi);
	if (lo > 0 && lo <= 0.05 * hi)
		lo = 0;   /* runs logged from step 1 still start the axis at 0 */
	plot_format_number(hi, 1, hi >= 1e6, buf, sizeof(buf));
	double lw = text_w(cr, buf) + 30 * L->s;
	plot_axis_linear(&L->x, lo, hi, (int)clampd(w / lw, 2, 12), false);
}

/* Picks the panels, their heights and axes, and the margins; -1 with err
 * when the picture is too small for them. */
static int lay_out(cairo_t *cr, struct layout *L, const struct plot_metrics *m,
		   const struct plot_opts *o, struct hug_error *err)
{
	static const char *const titles[P_COUNT] = { "loss", "learning rate", "grad norm",
						     "tokens/s" };
	const struct plot_series *series[P_COUNT] = { &m->loss, &m->lr, &m->grad, &m->tps };
	const struct rgb colors[P_COUNT] = { COL_TRAIN, COL_LR, COL_GRAD, COL_TPS };
	double W = o->width, H = o->height;
	double s = clampd(fmin(W / 900.0, H / 600.0), 0.75, 4);
	L->o = o;
	L->s = s;
	L->font = 12 * s;
	L->title_font = 13 * s;
	L->tick = 4 * s;
	L->lw = 1.6 * s;
	int n = 0;
	for (int i = 0; i < P_COUNT; i++) {
		struct panel *p = &L->p[i];
		p->s = series[i];
		p->color = colors[i];
		p->title = titles[i];
		p->noisy = i != P_LR;
		p->shown = i == P_LOSS || series[i]->n > 0;
		if (p->shown) {
			L->bottom = i;
			n++;
		}
	}
	double pad = 12 * s, title_h = 22 * s, gap = 10 * s;
	double xlab_h = L->tick + 6 * s + L->font, xtitle_h = L->font + 8 * s;
	double avail = H - 2 * pad - n * title_h - (n - 1) * gap - xlab_h - xtitle_h;
	double unit = avail / (n == 1 ? 1 : 2.0 + (n - 1));
	double loss_h = n == 1 ? avail : 2 * unit;
	if (loss_h < 48 || (n > 1 && unit < 24))
		return hug_error_set(err, "--height: %d pixels leave no room for the %d panels",
				     o->height, n);
	set_font(cr, L->font, false);
	double yl = 0;
	for (int i = 0; i < P_COUNT; i++) {
		if (!L->p[i].shown)
			continue;
		if (y_axis(L, i, m, i == P_LOSS ? loss_h : unit, err))
			return -1;
		yl = fmax(yl, widest_label(cr, &L->p[i].y));
	}
	double left = pad + yl + 5 * s + L->tick, right = pad + 10 * s;
	x_axis(cr, L, m, W - left - right);
	char buf[32] = "";
	if (L->x.n_ticks > 0)
		plot_axis_label(&L->x, L->x.n_ticks - 1, buf, sizeof(buf));
	right = fmax(right, pad + text_w(cr, buf) / 2);
	if (W - left - right < 80)
		return hug_error_set(err, "--width: %d pixels leave no room for the panels",
				     o->width);
	x_axis(cr, L, m, W - left - right);
	double y0 = pad + title_h;
	for (int i = 0; i < P_COUNT; i++) {
		if (!L->p[i].shown)
			continue;
		double h = i == P_LOSS ? loss_h : unit;
		L->p[i].area = (struct rect){ left, y0, W - right, y0 + h };
		y0 += h + gap + title_h;
	}
	return 0;
}

/* Grid, frame, ticks and tick labels of panel p (x labels only when it
 * is the lowest). */
static void draw_axes(cairo_t *cr, const struct layout *L, const struct panel *p,
		      bool x_labels)
{
	const struct rect a = p->area;
	double s = L->s, last = -INFINITY;
	char buf[32];
	set_font(cr, L->font, false);
	double cap = 0.72 * L->font;   /* height of a digit */
	for (int i = 0; i < p->y.n_ticks; i++) {
		double y = clampd(px_y(p, p->y.ticks[i]), a.y0, a.y1);
		hairline(cr, a.x0, y, a.x1, y, COL_GRID, 1);
	}
	for (int i = 0; i < L->x.n_ticks; i++) {
		double x = clampd(px_x(L, p, L->x.ticks[i]), a.x0, a.x1);
		hairline(cr, x, a.y0, x, a.y1, COL_GRID, 1);
		hairline(cr, x, a.y1, x, a.y1 + L->tick, COL_FRAME, 1);
		if (!x_labels)
			continue;
		plot_axis_label(&L->x, i, buf, sizeof(buf));
		double w = text_w(cr, buf), lx = x - w / 2;
		if (lx < last + 6 * s)
			continue;   /* would touch the previous label */
		text_at(cr, lx, a.y1 + L->tick + 4 * s + cap, buf, COL_TEXT);
		last = lx + w;
	}
	set_color(cr, COL_FRAME, 1);
	cairo_set_line_width(cr, 1);
	cairo_rectangle(cr, floor(a.x0) + 0.5, floor(a.y0) + 0.5, floor(a.x1) - floor(a.x0),
			floor(a.y1) - floor(a.y0));
	cairo_stroke(cr);
	last = INFINITY;
	for (int i = 0; i < p->y.n_ticks; i++) {
		double y = clampd(px_y(p, p->y.ticks[i]), a.y0, a.y1);
		hairline(cr, a.x0 - L->tick, y, a.x0, y, COL_FRAME, 1);
		plot_axis_label(&p->y, i, buf, sizeof(buf));
		double base = y + cap / 2;
		if (base > last - cap - 4 * s)
			continue;   /* too close to the label below it */
		text_at(cr, a.x0 - L->tick - 4 * s - text_w(cr, buf), base, buf, COL_TEXT);
		last = base;
	}
}

/* The panel title above its left end, and a muted note above its right
 * end when there is room for it. */
static void draw_title(cairo_t *cr, const struct layout *L, const struct panel *p,
		       const char *title, const char *note)
{
	double base = p->area.y0 - 7 * L->s;
	set_font(cr, L->title_font, true);
	double tw = text_w(cr, title);
	text_at(cr, p->area.x0, base, title, COL_TEXT);
	set_font(cr, L->font, false);
	double nw = text_w(cr, note);
	if (p->area.x1 - nw > p->area.x0 + tw + 12 * L->s)
		text_at(cr, p->area.x1 - nw, base, note, COL_MUTED);
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

/* The moving-average window of a noisy series of n points: the option, or
 * when it is -1 (auto) and there are more points than pixel columns,
 * about a 150th of the points (at least 9). 0 or 1: no smoothing. */
static int smooth_window(const struct plot_opts *o, size_t n, double plot_w)
{
	if (o->smooth >= 0)
		return o->smooth;
	if ((double)n <= plot_w)
		return 0;
	size_t w = 2 * (n / 300) + 1;
	return w < 9 ? 9 : w > PLOT_MAX_SMOOTH ? PLOT_MAX_SMOOTH : (int)w;
}

/* A filled marker with a white rim, so it stands out on a line. */
static void draw_marker(cairo_t *cr, const struct layout *L, double x, double y,
			struct rgb c)
{
	double rad = 2.5 + 1.5 * L->s;
	cairo_new_path(cr);
	cairo_arc(cr, x, y, rad, 0, 2 * M_PI);
	set_color(cr, c, 1);
	cairo_fill_preserve(cr);
	set_color(cr, COL_BG, 1);
	cairo_set_line_width(cr, 1.2 * L->s);
	cairo_stroke(cr);
}

/* Adds the line through points 0..n-1 of the series (values v) to the
 * path. A run of points within one pixel column becomes its first,
 * lowest, highest and last point, in their order: the same picture from
 * at most four points a column, however long the run. */
static void line_path(cairo_t *cr, const struct layout *L, const struct panel *p,
		      const struct plot_series *sr, const double *v)
{
	size_t i = 0, n = sr->n;
	while (i < n) {
		double col = floor(px_x(L, p, sr->pts[i].step));
		size_t j = i, lo = i, hi = i;
		double ylo = px_y(p, v[i]), yhi = ylo, yj = ylo;
		while (j + 1 < n) {
			double xn = px_x(L, p, sr->pts[j + 1].step);
			if (floor(xn) != col)
				break;
			j++;
			yj = px_y(p, v[j]);
			if (yj < ylo)
				lo = j, ylo = yj;
			if (yj > yhi)
				hi = j, yhi = yj;
		}
		size_t k[4] = { i, lo < hi ? lo : hi, lo < hi ? hi : lo, j };
		for (int t = 0; t < 4; t++) {
			if (t > 0 && k[t] == k[t - 1])
				continue;
			cairo_line_to(cr, px_x(L, p, sr->pts[k[t]].step), px_y(p, v[k[t]]));
		}
		i = j + 1;
	}
}

/* Strokes values v[0..n) at the series' steps as a line clipped to the
 * panel (a dot for a single point). */
static void draw_line(cairo_t *cr, const struct layout *L, const struct panel *p,
		      const struct plot_series *sr, const double *v, double width,
		      struct rgb c, double alpha)
{
	if (sr->n == 0)
		return;
	cairo_save(cr);
	cairo_rectangle(cr, p->area.x0, p->area.y0, p->area.x1 - p->area.x0,
			p->area.y1 - p->area.y0);
	cairo_clip(cr);
	set_color(cr, c, alpha);
	cairo_new_path(cr);
	if (sr->n == 1) {
		cairo_arc(cr, px_x(L, p, sr->pts[0].step), px_y(p, v[0]), 1.5 * width, 0,
			  2 * M_PI);
		cairo_fill(cr);
	} else {
		line_path(cr, L, p, sr, v);
		cairo_set_line_width(cr, width);
		cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
		cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
		cairo_stroke(cr);
	}
	cairo_restore(cr);
}

/* Draws the panel's series: raw (faint) and smoothed when it is noisy
 * and dense, else plain. Returns the smoothing window used (0: none). */
static int draw_series(cairo_t *cr, const struct layout *L, const struct panel *p)
{
	const struct plot_series *sr = p->s;
	double *v = hug_malloc((sr->n ? sr->n : 1) * sizeof(double));
	for (size_t i = 0; i < sr->n; i++)
		v[i] = sr->pts[i].value;
	int window = p->noisy ? smooth_window(L->o, sr->n, p->area.x1 - p->area.x0) : 0;
	if (sr->n > 1 && window > 1) {
		draw_line(cr, L, p, sr, v, fmax(1, 0.8 * L->s), p->color, 0.3);
		smooth(v, sr->n, window);
	} else {
		window = 0;
	}
	draw_line(cr, L, p, sr, v, L->lw, p->color, 1);
	hug_free(v);
	return window;
}

struct legend_entry {
	const char *label;
	struct rgb c;
	double alpha;
	bool marker;             /* a marker sample, else a line */
};

/* How many points of the series fall in box b of panel p. */
static size_t points_in(const struct layout *L, const struct panel *p,
			const struct plot_series *sr, struct rect b)
{
	size_t n = 0;
	for (size_t i = 0; i < sr->n; i++) {
		double x = px_x(L, p, sr->pts[i].step), y = px_y(p, sr->pts[i].value);
		n += x >= b.x0 && x <= b.x1 && y >= b.y0 && y <= b.y1;
	}
	return n;
}

/* The legend in the corner of the loss panel that covers the fewest data
 * points (tried in the order top right, top left, bottom right, bottom
 * left); left out when the panel is too small for it. */
static void draw_legend(cairo_t *cr, const struct layout *L, const struct plot_metrics *m,
			const struct legend_entry *e, int n)
{
	const struct panel *p = &L->p[P_LOSS];
	const struct rect a = p->area;
	double s = L->s, in = 7 * s, row = L->font + 6 * s, sample = 22 * s, tw = 0;
	set_font(cr, L->font, false);
	for (int i = 0; i < n; i++)
		tw = fmax(tw, text_w(cr, e[i].label));
	double w = in + sample + 6 * s + tw + in, h = 2 * in + n * row - 6 * s, mg = 8 * s;
	if (n == 0 || w + 2 * mg > a.x1 - a.x0 || h + 2 * mg > a.y1 - a.y0)
		return;
	struct rect c[4] = {
		{ a.x1 - mg - w, a.y0 + mg, a.x1 - mg, a.y0 + mg + h },
		{ a.x0 + mg, a.y0 + mg, a.x0 + mg + w, a.y0 + mg + h },
		{ a.x1 - mg - w, a.y1 - mg - h, a.x1 - mg, a.y1 - mg },
		{ a.x0 + mg, a.y1 - mg - h, a.x0 + mg + w, a.y1 - mg },
	};
	int best = 0;
	size_t best_n = (size_t)-1;
	for (int i = 0; i < 4 && best_n > 0; i++) {
		size_t k = points_in(L, p, &m->loss, c[i]) + points_in(L, p, &m->valid, c[i]);
		if (k < best_n)
			best = i, best_n = k;
	}
	struct rect b = c[best];
	cairo_rectangle(cr, floor(b.x0) + 0.5, floor(b.y0) + 0.5, floor(b.x1 - b.x0),
			floor(b.y1 - b.y0));
	set_color(cr, COL_BG, 0.9);
	cairo_fill_preserve(cr);
	set_color(cr, COL_LEGEND, 1);
	cairo_set_line_width(cr, 1);
	cairo_stroke(cr);
	double cap = 0.72 * L->font;
	for (int i = 0; i < n; i++) {
		double cy = b.y0 + in + i * row + cap / 2, x = b.x0 + in;
		if (e[i].marker) {
			draw_marker(cr, L, x + sample / 2, cy, e[i].c);
		} else {
			set_color(cr, e[i].c, e[i].alpha);
			cairo_set_line_width(cr, L->lw);
			cairo_move_to(cr, x, cy);
			cairo_line_to(cr, x + sample, cy);
			cairo_stroke(cr);
		}
		set_font(cr, L->font, false);
		text_at(cr, x + sample + 6 * s, cy + cap / 2, e[i].label, COL_TEXT);
	}
}

/* v as printf's %.4g with the exponent compacted: 3e-05 becomes 3e-5. */
static void fmt_value(double v, char *buf, size_t n)
{
	char t[32], *e;
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

static void draw_loss(cairo_t *cr, const struct layout *L, const struct plot_metrics *m)
{
	const struct panel *p = &L->p[P_LOSS];
	struct legend_entry e[3];
	char note[160] = "";
	int n_e = 0;
	draw_axes(cr, L, p, L->bottom == P_LOSS);
	int window = draw_series(cr, L, p);
	if (m->loss.n && window > 1) {
		e[n_e++] = (struct legend_entry){ "train", COL_TRAIN, 0.3, false };
		e[n_e++] = (struct legend_entry){ "smoothed", COL_TRAIN, 1, false };
	} else if (m->loss.n) {
		e[n_e++] = (struct legend_entry){ "train", COL_TRAIN, 1, false };
	}
	cairo_save(cr);
	cairo_rectangle(cr, p->area.x0 - 10 * L->s, p->area.y0 - 10 * L->s,
			p->area.x1 - p->area.x0 + 20 * L->s, p->area.y1 - p->area.y0 + 20 * L->s);
	cairo_clip(cr);
	for (size_t i = 0; i < m->valid.n; i++)
		draw_marker(cr, L, px_x(L, p, m->valid.pts[i].step),
			    px_y(p, m->valid.pts[i].value), COL_VALID);
	cairo_restore(cr);
	if (m->valid.n)
		e[n_e++] = (struct legend_entry){ "valid", COL_VALID, 1, true };
	loss_note(m, note, sizeof(note));
	draw_title(cr, L, p, L->o->log_y ? "loss (log scale)" : "loss", note);
	draw_legend(cr, L, m, e, n_e);
}

/* One of the lower panels: its line, title and latest value. */
static void draw_other(cairo_t *cr, const struct layout *L, int i)
{
	const struct panel *p = &L->p[i];
	const struct plot_point *last = &p->s->pts[p->s->n - 1];
	char note[96], val[48], title[64];
	draw_axes(cr, L, p, L->bottom == i);
	int window = draw_series(cr, L, p);
	fmt_value(last->value, val, sizeof(val));
	snprintf(note, sizeof(note), "step %.0f: %s", last->step, val);
	snprintf(title, sizeof(title), "%s%s%s", p->title, p->y.log ? " (log scale)" : "",
		 window > 1 ? ", smoothed" : "");
	draw_title(cr, L, p, title, note);
}

int plot_draw(cairo_t *cr, const struct plot_metrics *m, const struct plot_opts *o,
	      struct hug_error *err)
{
	struct layout L;
	memset(&L, 0, sizeof(L));
	if (plot_opts_validate(o, err))
		return -1;
	if (m->loss.n == 0 && m->valid.n == 0)
		return hug_error_set(err, "no loss values to plot");
	if (cairo_status(cr) != CAIRO_STATUS_SUCCESS)
		return hug_error_set(err, "cairo: %s", cairo_status_to_string(cairo_status(cr)));
	set_color(cr, COL_BG, 1);
	cairo_paint(cr);
	if (lay_out(cr, &L, m, o, err))
		return -1;
	draw_loss(cr, &L, m);
	for (int i = P_LR; i < P_COUNT; i++)
		if (L.p[i].shown)
			draw_other(cr, &L, i);
	const struct panel *b = &L.p[L.bottom];
	set_font(cr, L.font, false);
	text_at(cr, (b->area.x0 + b->area.x1 - text_w(cr, "step")) / 2,
		b->area.y1 + L.tick + 10 * L.s + 1.72 * L.font, "step", COL_TEXT);
	if (cairo_status(cr) != CAIRO_STATUS_SUCCESS)
		return hug_error_set(err, "cairo: %s", cairo_status_to_string(cairo_status(cr)));
	return 0;
}
