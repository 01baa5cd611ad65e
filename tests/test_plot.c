/* test_plot.c: `hug plot` and its parts: nice ticks and labels,
 * metrics.jsonl parsing and its errors, the figure drawn by cairo (pixels
 * of each series' colour inside its panel, smoothing, a single point,
 * huge values), the PNG read back through cairo at the requested size,
 * the SVG checked for well-formed XML holding the series' colours, and
 * the command's errors, in process and through the binary (also with no
 * font installed). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cairo.h>

#include "../base/alloc.h"
#include "../train/plot.h"
#include "harness.h"

/* ---- ticks and labels ---- */

/* Whether v is k x {1, 2, 5} x 10^e for some integer k and a spacing s. */
static bool nice_spacing(double s)
{
	double e = floor(log10(s) + 1e-9), m = s / pow(10, e);
	return fabs(m - 1) < 1e-9 || fabs(m - 2) < 1e-9 || fabs(m - 5) < 1e-9;
}

TEST(plot_axis_nice_ticks)
{
	struct plot_axis a;
	plot_axis_linear(&a, 0.3, 9.7, 5, true);
	CHECK(a.lo == 0 && a.hi == 10 && a.n_ticks == 6);
	CHECK(a.ticks[1] == 2 && a.ticks[5] == 10);
	plot_axis_linear(&a, 0, 5001, 6, false);
	CHECK(a.lo == 0 && a.hi == 5001 && a.n_ticks == 6 && a.ticks[5] == 5000);
	/* a zero-width range still gets an axis */
	plot_axis_linear(&a, 3, 3, 5, true);
	CHECK(a.lo < 3 && a.hi > 3 && a.n_ticks >= 2);
	/* any range: nice spacing, ticks on multiples of it, inside the range */
	for (int i = 0; i < 200; i++) {
		double lo = (i % 17 - 8) * pow(10, i % 11 - 5) * 1.37;
		double hi = lo + fabs(sin(i)) * pow(10, i % 9 - 4) + 1e-12;
		int target = 2 + i % 9;
		plot_axis_linear(&a, lo, hi, target, i % 2);
		CHECK(a.n_ticks >= 1 && a.n_ticks <= 2 * target + 2);
		for (int k = 0; k < a.n_ticks; k++) {
			double q = a.ticks[k] / a.step[k];
			CHECK(nice_spacing(a.step[k]) && fabs(q - round(q)) < 1e-6 * fmax(1, fabs(q)));
			CHECK(a.ticks[k] >= a.lo - 1e-9 * a.step[k] && a.ticks[k] <= a.hi + 1e-9 * a.step[k]);
		}
		/* up to rounding of lo / step */
		double tol = 1e-6 * (a.n_ticks ? a.step[0] : 1);
		CHECK(a.lo <= lo + tol && a.hi >= hi - tol);
	}
	/* log: decades over a wide range, 1-2-5 or digits over a narrow one */
	plot_axis_log(&a, 2e-4, 30, 6);
	CHECK(a.log && a.lo <= 2e-4 && a.hi >= 30);
	for (int k = 0; k < a.n_ticks; k++)
		CHECK(fabs(log10(a.ticks[k]) - round(log10(a.ticks[k]))) < 1e-9);
	plot_axis_log(&a, 1.5, 40, 6);
	CHECK(a.n_ticks >= 3);
	for (int k = 0; k < a.n_ticks; k++)
		CHECK(a.ticks[k] >= a.lo && a.ticks[k] <= a.hi);
	plot_axis_log(&a, 2.6, 11.7, 3);
	CHECK(a.n_ticks >= 3);
}

TEST(plot_axis_labels)
{
	char b[32];
	plot_format_number(0, 1e-4, true, b, sizeof(b));
	CHECK(!strcmp(b, "0"));
	plot_format_number(1.5e-4, 5e-5, true, b, sizeof(b));
	CHECK(!strcmp(b, "1.5e-4"));
	plot_format_number(3e-4, 1e-4, true, b, sizeof(b));
	CHECK(!strcmp(b, "3e-4"));
	plot_format_number(2.5, 0.5, false, b, sizeof(b));
	CHECK(!strcmp(b, "2.5"));
	plot_format_number(20000, 5000, false, b, sizeof(b));
	CHECK(!strcmp(b, "20000"));
	plot_format_number(-0.2, 0.1, false, b, sizeof(b));
	CHECK(!strcmp(b, "-0.2"));
	plot_format_number(2e6, 1e6, true, b, sizeof(b));
	CHECK(!strcmp(b, "2e6"));
	struct plot_axis a;
	plot_axis_linear(&a, 0, 6e-4, 6, true);
	CHECK(a.sci);
	plot_axis_label(&a, 1, b, sizeof(b));
	CHECK(!strcmp(b, "1e-4"));
	plot_axis_linear(&a, 0, 12, 6, true);
	CHECK(!a.sci);
	plot_axis_label(&a, a.n_ticks - 1, b, sizeof(b));
	CHECK(!strcmp(b, "12"));
}

/* ---- metrics.jsonl ---- */

static int parse(const char *text, struct plot_metrics *m, struct hug_error *err)
{
	memset(m, 0, sizeof(*m));
	hug_error_clear(err);
	return plot_metrics_parse(text, strlen(text), "run/metrics.jsonl", m, err);
}

TEST(plot_metrics_parse_lines)
{
	struct plot_metrics m;
	struct hug_error err = { 0 };
	const char *text =
		"{\"step\": 0, \"loss\": 11.0, \"lr\": 1e-5, \"grad_norm\": 3.5}\n"
		"\n"
		"{\"step\": 1, \"loss\": 10.0, \"lr\": 2e-5, \"tokens\": 8192}\r\n"
		"   \n"
		"{\"step\": 2, \"loss\": NaN, \"lr\": 3e-5}\n"
		"{\"step\": 3, \"loss\": null, \"lr\": Infinity}\n"
		"{\"step\": 4, \"loss\": \"nan\", \"lr\": -inf, \"note\": \"NaN stays\"}\n"
		"{\"event\": \"resumed\"}\n"
		"{\"step\": 2, \"valid_loss\": 9.5, \"valid_ppl\": 13360.7}\n"
		"{\"step\": 1, \"loss\": 9.0, \"lr\": 2e-5}\n"
		"{\"step\": 5, \"loss\": 8.0, \"lr\": 4e-5}";   /* no final newline */
	REQUIRE(parse(text, &m, &err) == 0);
	CHECK(m.n_lines == 9);
	CHECK(m.n_nonfinite == 5);
	REQUIRE(m.loss.n == 3);
	/* sorted by step, the later line of step 1 wins */
	CHECK(m.loss.pts[0].step == 0 && m.loss.pts[0].value == 11.0);
	CHECK(m.loss.pts[1].step == 1 && m.loss.pts[1].value == 9.0);
	CHECK(m.loss.pts[2].step == 5 && m.loss.pts[2].value == 8.0);
	CHECK(m.lr.n == 4 && m.lr.pts[2].step == 2 && m.lr.pts[2].value == 3e-5);
	CHECK(m.valid.n == 1 && m.valid.pts[0].value == 9.5);
	plot_metrics_free(&m);
}

/* Parsing `text` fails with a message containing `want`. */
static void parse_fails(const char *text, const char *want, int line)
{
	struct plot_metrics m;
	struct hug_error err = { 0 };
	if (parse(text, &m, &err) != -1 || !strstr(err.msg, want))
		test_fail_at(__FILE__, line, "want an error with \"%s\", got \"%s\"", want,
			     err.msg);
	plot_metrics_free(&m);
}

TEST(plot_metrics_errors_name_file_and_line)
{
	const char *ok = "{\"step\": 0, \"loss\": 3.0, \"lr\": 1e-4}\n";
	char text[512];
	snprintf(text, sizeof(text), "%s\n%s{\"step\": 2, \"loss\": 3.0,\n", ok, ok);
	parse_fails(text, "run/metrics.jsonl:4: not valid JSON", __LINE__);
	snprintf(text, sizeof(text), "%s[1, 2]\n", ok);
	parse_fails(text, "run/metrics.jsonl:2: expected a JSON object", __LINE__);
	snprintf(text, sizeof(text), "%s{\"loss\": 2.0}\n", ok);
	parse_fails(text, "run/metrics.jsonl:2: missing \"step\"", __LINE__);
	snprintf(text, sizeof(text), "%s{\"step\": 1.5, \"loss\": 2.0}\n", ok);
	parse_fails(text, "run/metrics.jsonl:2: \"step\"", __LINE__);
	snprintf(text, sizeof(text), "%s{\"step\": -1, \"loss\": 2.0}\n", ok);
	parse_fails(text, "run/metrics.jsonl:2: \"step\"", __LINE__);
	snprintf(text, sizeof(text), "%s{\"step\": 1, \"loss\": \"low\"}\n", ok);
	parse_fails(text, "run/metrics.jsonl:2: \"loss\": expected a number, got a string",
		    __LINE__);
	snprintf(text, sizeof(text), "%s{\"step\": 1, \"lr\": [1]}\n", ok);
	parse_fails(text, "run/metrics.jsonl:2: \"lr\"", __LINE__);
	snprintf(text, sizeof(text), "%s{\"step\": 1, \"loss\": 2} trailing\n", ok);
	parse_fails(text, "run/metrics.jsonl:2:", __LINE__);
	snprintf(text, sizeof(text), "%s{\"step\": 1, \"loss\": nanx}\n", ok);
	parse_fails(text, "run/metrics.jsonl:2:", __LINE__);
	parse_fails("", "run/metrics.jsonl: empty", __LINE__);
	parse_fails("\n  \n\n", "run/metrics.jsonl: empty", __LINE__);
	parse_fails("{\"step\": 0, \"loss\": NaN, \"lr\": 1e-4}\n", "no finite", __LINE__);
}

/* ---- drawing ---- */

/* A decaying loss with a periodic wobble of the given amplitude, warmup and
 * cosine lr, a grad norm and a throughput, and a validation loss every 50
 * steps, as metrics.jsonl text. */
static const char *synthetic_metrics(int steps, double noise)
{
	static char buf[1 << 19];
	size_t k = 0;
	for (int s = 0; s <= steps && k + 300 < sizeof(buf); s++) {
		double loss = 3 + 8 * exp(-s / 40.0) + noise * sin(s * 1.7);
		double lr = s < 20 ? 3e-4 * (s + 1) / 20 : 3e-5 + 2.7e-4 * (1 + cos(M_PI * (s - 20) / (steps - 20))) / 2;
		k += (size_t)snprintf(buf + k, sizeof(buf) - k,
				      "{\"step\": %d, \"loss\": %.6f, \"lr\": %.8g, \"grad_norm\": %.4f, "
				      "\"tokens_per_s\": %.1f}\n", s, loss, lr,
				      1 + 4 * exp(-s / 30.0) + 0.1 * cos(s), 9000 + 500 * sin(s * 0.3));
		if (s % 50 == 49)
			k += (size_t)snprintf(buf + k, sizeof(buf) - k,
					      "{\"step\": %d, \"valid_loss\": %.6f, \"valid_ppl\": 1}\n",
					      s, loss + 0.2);
	}
	return buf;
}

/* A drawn picture (an image surface) and its pixels. */
struct picture {
	cairo_surface_t *sf;
	int w, h, stride;
	const uint8_t *px;
};

static void picture_of(struct picture *p, cairo_surface_t *sf)
{
	cairo_surface_flush(sf);
	p->sf = sf;
	p->w = cairo_image_surface_get_width(sf);
	p->h = cairo_image_surface_get_height(sf);
	p->stride = cairo_image_surface_get_stride(sf);
	p->px = cairo_image_surface_get_data(sf);
}

/* Draws m on a new image surface of o's size; the return of plot_draw. */
static int draw(const struct plot_metrics *m, const struct plot_opts *o, struct picture *p,
		struct hug_error *err)
{
	cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, o->width, o->height);
	cairo_t *cr = cairo_create(sf);
	int rc = plot_draw(cr, m, o, err);
	cairo_destroy(cr);
	picture_of(p, sf);
	return rc;
}

static void picture_free(struct picture *p)
{
	cairo_surface_destroy(p->sf);
	memset(p, 0, sizeof(*p));
}

/* Pixel (x, y) as r, g, b (RGB24 and ARGB32 keep them in a native 32-bit
 * word, blue in the low byte). */
static void pixel(const struct picture *p, int x, int y, int *r, int *g, int *b)
{
	uint32_t v = *(const uint32_t *)(p->px + (size_t)y * (size_t)p->stride + 4 * (size_t)x);
	*r = (v >> 16) & 255;
	*g = (v >> 8) & 255;
	*b = v & 255;
}

/* Whether pixel (pr, pg, pb) is colour (r, g, b) over white with at least
 * half coverage (anti-aliased line edges count; grid grey and black text
 * do not). */
static bool near_color(int pr, int pg, int pb, int r, int g, int b)
{
	double a = (double)(765 - pr - pg - pb) / (765 - r - g - b);
	return a >= 0.5 && a <= 1.05 && fabs(255 - a * (255 - r) - pr) <= 12 &&
	       fabs(255 - a * (255 - g) - pg) <= 12 && fabs(255 - a * (255 - b) - pb) <= 12;
}

/* Counts the pixels of colour (r, g, b) (near_color) in rows [y0, y1). */
static int count_color(const struct picture *p, int y0, int y1, int r, int g, int b)
{
	int n = 0;
	for (int y = y0; y < y1; y++)
		for (int x = 0; x < p->w; x++) {
			int pr, pg, pb;
			pixel(p, x, y, &pr, &pg, &pb);
			n += near_color(pr, pg, pb, r, g, b);
		}
	return n;
}

/* Counts the pixels within 40 (summed over channels) of exactly (r, g, b)
 * in rows [y0, y1). */
static int count_exact(const struct picture *p, int y0, int y1, int r, int g, int b)
{
	int n = 0;
	for (int y = y0; y < y1; y++)
		for (int x = 0; x < p->w; x++) {
			int pr, pg, pb;
			pixel(p, x, y, &pr, &pg, &pb);
			n += abs(pr - r) + abs(pg - g) + abs(pb - b) < 40;
		}
	return n;
}

/* Dark grey pixels (text, frame, ticks: r = g = b < 160) in the box
 * [x0, x1) x [y0, y1). */
static int count_dark(const struct picture *p, int x0, int x1, int y0, int y1)
{
	int n = 0;
	for (int y = y0; y < y1; y++)
		for (int x = x0; x < x1; x++) {
			int r, g, b;
			pixel(p, x, y, &r, &g, &b);
			n += r == g && g == b && r < 160;
		}
	return n;
}

/* Columns of [x0, x1) holding a pixel of colour (r, g, b) in rows [y0, y1). */
static int columns_with(const struct picture *p, int x0, int x1, int y0, int y1, int r, int g,
			int b)
{
	int n = 0;
	for (int x = x0; x < x1; x++)
		for (int y = y0; y < y1; y++) {
			int pr, pg, pb;
			pixel(p, x, y, &pr, &pg, &pb);
			if (near_color(pr, pg, pb, r, g, b)) {
				n++;
				break;
			}
		}
	return n;
}

static int count_non_bg(const struct picture *p, int y0, int y1)
{
	int n = 0;
	for (int y = y0; y < y1; y++)
		for (int x = 0; x < p->w; x++) {
			int r, g, b;
			pixel(p, x, y, &r, &g, &b);
			n += r != 255 || g != 255 || b != 255;
		}
	return n;
}

#define TRAIN 31, 119, 180
#define VALID 230, 110, 10
#define LR 44, 150, 44
#define GRAD 148, 103, 189
#define TPS 140, 86, 75

TEST(plot_draw_four_panels)
{
	struct plot_metrics m;
	struct hug_error err = { 0 };
	struct picture p;
	REQUIRE(parse(synthetic_metrics(300, 0.1), &m, &err) == 0);
	CHECK(m.grad.n == 301 && m.tps.n == 301);
	struct plot_opts o = plot_opts_default();
	o.width = 800;
	o.height = 700;
	REQUIRE(draw(&m, &o, &p, &err) == 0);
	CHECK(p.w == 800 && p.h == 700);
	/* the panels stack top to bottom: loss, lr, grad norm, tokens/s; the
	 * first row and last row with each colour say where it was drawn */
	int first[4], last[4];
	const int col[4][3] = { { TRAIN }, { LR }, { GRAD }, { TPS } };
	for (int k = 0; k < 4; k++) {
		first[k] = last[k] = -1;
		for (int y = 0; y < p.h; y++)
			if (count_color(&p, y, y + 1, col[k][0], col[k][1], col[k][2]) > 0) {
				if (first[k] < 0)
					first[k] = y;
				last[k] = y;
			}
		CHECK(first[k] >= 0);
	}
	CHECK(last[0] < first[1] && last[1] < first[2] && last[2] < first[3]);
	/* the loss panel is the tallest; each curve spans most of the width */
	CHECK(last[0] - first[0] > last[1] - first[1]);
	CHECK(columns_with(&p, 0, p.w, first[0], last[0] + 1, TRAIN) > p.w * 3 / 5);
	CHECK(columns_with(&p, 0, p.w, first[1], last[1] + 1, LR) > p.w * 3 / 5);
	CHECK(columns_with(&p, 0, p.w, first[3], last[3] + 1, TPS) > p.w * 3 / 5);
	/* six validation markers in the loss panel, and text and grid around */
	CHECK(count_color(&p, first[0], last[0] + 1, VALID) > 6 * 20);
	CHECK(count_color(&p, first[1], p.h, VALID) == 0);
	CHECK(count_non_bg(&p, 0, first[0]) > 300);   /* the title */
	/* tick labels in the left margin (the frame starts further right) */
	CHECK(count_dark(&p, 0, p.w / 25, 0, p.h) > 150);
	picture_free(&p);
	o.log_y = true;
	CHECK(draw(&m, &o, &p, &err) == 0);
	picture_free(&p);
	/* a non-positive loss cannot go on a log scale */
	m.loss.pts[0].value = 0;
	CHECK(draw(&m, &o, &p, &err) == -1 && strstr(err.msg, "--log-y"));
	picture_free(&p);
	o.log_y = false;
	o.width = 100;
	hug_error_clear(&err);
	CHECK(draw(&m, &o, &p, &err) == -1 && strstr(err.msg, "--width"));
	picture_free(&p);
	plot_metrics_free(&m);
}

TEST(plot_draw_smooths_dense_loss)
{
	struct plot_metrics m;
	struct hug_error err = { 0 };
	struct picture p;
	struct plot_opts o = plot_opts_default();
	o.width = 640;
	o.height = 480;
	REQUIRE(parse(synthetic_metrics(2000, 1.0), &m, &err) == 0);
	/* auto: the raw curve faint (30% over white), the moving average over it */
	REQUIRE(draw(&m, &o, &p, &err) == 0);
	int faint_auto = count_exact(&p, 0, p.h / 2, 188, 214, 233);
	CHECK(count_color(&p, 0, p.h / 2, TRAIN) > 300);
	picture_free(&p);
	o.smooth = 0;
	REQUIRE(draw(&m, &o, &p, &err) == 0);
	int faint_off = count_exact(&p, 0, p.h / 2, 188, 214, 233);
	picture_free(&p);
	CHECK(faint_auto > 3 * faint_off + 100);
	o.smooth = -2;
	CHECK(draw(&m, &o, &p, &err) == -1 && strstr(err.msg, "--smooth"));
	picture_free(&p);
	plot_metrics_free(&m);
}

TEST(plot_draw_single_point_huge_values_and_loss_only)
{
	struct plot_metrics m;
	struct hug_error err = { 0 };
	struct picture p;
	struct plot_opts o = plot_opts_default();
	REQUIRE(parse("{\"step\": 7, \"loss\": 4.25}\n", &m, &err) == 0);
	REQUIRE(draw(&m, &o, &p, &err) == 0);
	CHECK(count_color(&p, 0, p.h, TRAIN) > 0);
	CHECK(count_color(&p, 0, p.h, LR) == 0);   /* no lr logged: no lr panel */
	picture_free(&p);
	plot_metrics_free(&m);
	REQUIRE(parse("{\"step\": 100, \"valid_loss\": 4.25}\n", &m, &err) == 0);
	REQUIRE(draw(&m, &o, &p, &err) == 0);
	CHECK(count_color(&p, 0, p.h, VALID) > 0);
	picture_free(&p);
	plot_metrics_free(&m);
	/* values near the double's limits, a constant series, a zero lr */
	REQUIRE(parse("{\"step\": 0, \"loss\": 1e308, \"lr\": 0, \"grad_norm\": -1.7e308}\n"
		      "{\"step\": 1, \"loss\": -1e308, \"lr\": 0, \"grad_norm\": 1.7e308}\n"
		      "{\"step\": 9007199254740992, \"loss\": 5e-324, \"lr\": 0, \"grad_norm\": 0, "
		      "\"tokens_per_s\": 3}\n",
		      &m, &err) == 0);
	REQUIRE(draw(&m, &o, &p, &err) == 0);
	CHECK(count_color(&p, 0, p.h, TRAIN) > 0 && count_color(&p, 0, p.h, GRAD) > 0);
	picture_free(&p);
	o.log_y = true;
	CHECK(draw(&m, &o, &p, &err) == -1 && strstr(err.msg, "--log-y"));
	picture_free(&p);
	plot_metrics_free(&m);
	/* no loss at all */
	memset(&m, 0, sizeof(m));
	hug_error_clear(&err);
	CHECK(draw(&m, &o, &p, &err) == -1 && strstr(err.msg, "no loss"));
	picture_free(&p);
}

/* ---- files ---- */

/* Whether the text is well-formed XML as far as tags go: every element
 * closed in order, with the root element an <svg>. NULL or what is wrong. */
static const char *xml_check(const char *t)
{
	char stack[64][32];
	int depth = 0, roots = 0;
	const char *q = t;
	while ((q = strchr(q, '<'))) {
		if (!strncmp(q, "<?", 2) || !strncmp(q, "<!", 2)) {
			q = strchr(q, '>');
			if (!q)
				return "unterminated declaration";
			continue;
		}
		const char *end = strchr(q, '>');
		if (!end)
			return "unterminated tag";
		bool closing = q[1] == '/', self = end[-1] == '/';
		const char *n = q + 1 + closing;
		size_t len = strcspn(n, " \t\r\n/>");
		if (len == 0 || len >= 32)
			return "bad tag name";
		if (closing) {
			if (depth == 0 || strlen(stack[depth - 1]) != len ||
			    strncmp(stack[depth - 1], n, len))
				return "mismatched closing tag";
			depth--;
		} else if (!self) {
			if (depth == 0 && (roots++ || strncmp(n, "svg", len)))
				return "root is not one <svg>";
			if (depth == 64)
				return "too deep";
			memcpy(stack[depth], n, len);
			stack[depth++][len] = '\0';
		}
		q = end + 1;
	}
	return depth ? "unclosed element" : roots == 1 ? NULL : "no <svg>";
}

/* Whether an "rgb(...)" colour in the text (as percentages or 0-255
 * integers) is within 2/255 of (r, g, b). */
static bool svg_has_color(const char *t, int r, int g, int b)
{
	for (const char *q = t; (q = strstr(q, "rgb(")); q += 4) {
		double v[3];
		char u[3] = { 0 };
		const char *c = q + 4;
		int k;
		for (k = 0; k < 3; k++) {
			char *e;
			v[k] = strtod(c, &e);
			if (e == c)
				break;
			u[k] = *e;
			c = e + (*e == '%');
			c += strspn(c, " ,");
		}
		if (k < 3)
			continue;
		double f = u[0] == '%' ? 255 / 100.0 : 1;
		if (fabs(v[0] * f - r) <= 2 && fabs(v[1] * f - g) <= 2 && fabs(v[2] * f - b) <= 2)
			return true;
	}
	return false;
}

static size_t count_str(const char *t, const char *s)
{
	size_t n = 0;
	for (const char *q = t; (q = strstr(q, s)); q++)
		n++;
	return n;
}

TEST(plot_run_writes_png_of_requested_size)
{
	char dir[] = "/tmp/hug-plot-XXXXXX", path[256], used[256];
	REQUIRE(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/metrics.jsonl", dir);
	test_write_file(path, synthetic_metrics(500, 0.1));
	struct plot_opts o = plot_opts_default();
	o.width = 700;
	o.height = 420;
	struct hug_error err = { 0 };
	size_t skipped = 99;
	REQUIRE(plot_run(dir, NULL, &o, &skipped, used, sizeof(used), &err) == 0);
	CHECK(skipped == 0);
	snprintf(path, sizeof(path), "%s/curves.png", dir);
	CHECK(!strcmp(used, path));
	size_t n;
	char *f = test_read_file(path, &n);
	REQUIRE(f);
	CHECK(n > 8 && !memcmp(f, "\x89PNG\r\n\x1a\n", 8));
	hug_free(f);
	/* cairo reads it back at the size asked, with the curves in it */
	struct picture p;
	picture_of(&p, cairo_image_surface_create_from_png(path));
	REQUIRE(cairo_surface_status(p.sf) == CAIRO_STATUS_SUCCESS);
	CHECK(p.w == 700 && p.h == 420);
	CHECK(columns_with(&p, 0, p.w, 0, p.h / 2, TRAIN) > p.w / 2);
	CHECK(count_color(&p, 0, p.h, LR) > 100 && count_color(&p, 0, p.h, GRAD) > 100);
	picture_free(&p);
	unlink(path);
	/* an SVG when the name says so */
	snprintf(path, sizeof(path), "%s/curves.SVG", dir);
	REQUIRE(plot_run(dir, path, &o, NULL, NULL, 0, &err) == 0);
	char *svg = test_read_file(path, &n);
	REQUIRE(svg);
	const char *why = xml_check(svg);
	CHECK(why == NULL);
	if (why)
		fprintf(stderr, "svg: %s\n", why);
	CHECK(!strncmp(svg, "<?xml", 5) && strstr(svg, "width=\"700") && strstr(svg, "height=\"420"));
	CHECK(count_str(svg, "<path") > 20);
	CHECK(svg_has_color(svg, TRAIN) && svg_has_color(svg, VALID) && svg_has_color(svg, LR));
	CHECK(svg_has_color(svg, GRAD) && svg_has_color(svg, TPS));
	CHECK(!svg_has_color(svg, 1, 2, 3));
	hug_free(svg);
	unlink(path);
	/* an SVG where it cannot be written, and a missing directory for a PNG */
	snprintf(path, sizeof(path), "%s/no/such/dir/c.svg", dir);
	CHECK(plot_run(dir, path, &o, NULL, NULL, 0, &err) == -1 && strstr(err.msg, path));
	snprintf(path, sizeof(path), "%s/no/such/dir/c.png", dir);
	hug_error_clear(&err);
	CHECK(plot_run(dir, path, &o, NULL, NULL, 0, &err) == -1 && strstr(err.msg, path));
	/* the smallest size still holds the four panels */
	o.width = PLOT_MIN_WIDTH;
	o.height = PLOT_MIN_HEIGHT;
	snprintf(path, sizeof(path), "%s/small.png", dir);
	hug_error_clear(&err);
	CHECK(plot_run(dir, path, &o, NULL, NULL, 0, &err) == 0);
	struct stat st;
	CHECK(stat(path, &st) == 0);
	unlink(path);
	/* an error found while drawing (a zero loss on a log scale) leaves no
	 * SVG behind */
	o.width = 700;
	o.height = 420;
	o.log_y = true;
	snprintf(path, sizeof(path), "%s/metrics.jsonl", dir);
	test_write_file(path, "{\"step\": 0, \"loss\": 0}\n{\"step\": 1, \"loss\": 1}\n");
	snprintf(path, sizeof(path), "%s/log.svg", dir);
	hug_error_clear(&err);
	CHECK(plot_run(dir, path, &o, NULL, NULL, 0, &err) == -1 && strstr(err.msg, "--log-y"));
	CHECK(stat(path, &st) != 0);
	o.log_y = false;
	snprintf(path, sizeof(path), "%s/metrics.jsonl", dir);
	test_write_file(path, "");
	hug_error_clear(&err);
	CHECK(plot_run(dir, NULL, &o, NULL, NULL, 0, &err) == -1);
	CHECK(strstr(err.msg, "metrics.jsonl: empty") != NULL);
	test_write_file(path, "{\"step\": 0, \"loss\": NaN}\n{\"step\": 1, \"loss\": Infinity}\n");
	hug_error_clear(&err);
	CHECK(plot_run(dir, NULL, &o, NULL, NULL, 0, &err) == -1);
	CHECK(strstr(err.msg, "no finite \"loss\"") != NULL);
	unlink(path);
	hug_error_clear(&err);
	CHECK(plot_run(dir, NULL, &o, NULL, NULL, 0, &err) == -1);
	CHECK(strstr(err.msg, "metrics.jsonl: cannot open") != NULL);
	snprintf(path, sizeof(path), "%s/curves.png", dir);
	CHECK(stat(path, &st) != 0);
	rmdir(dir);
}

/* ---- the command ---- */

TEST(plot_cli)
{
	const char *hug = getenv("HUG_BIN");
	if (!hug)
		SKIP("HUG_BIN not set (run through make test)");
	char dir[] = "/tmp/hug-plotcli-XXXXXX", path[256], cmd[1024], out[4096];
	REQUIRE(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/metrics.jsonl", dir);
	test_write_file(path, "{\"step\": 0, \"loss\": 5, \"lr\": 1e-4, \"grad_norm\": 2}\n"
		   "{\"step\": 1, \"loss\": NaN, \"lr\": 1e-4, \"grad_norm\": 1}\n"
		   "{\"step\": 2, \"loss\": 4, \"lr\": 1e-4, \"grad_norm\": 1}\n");
	snprintf(cmd, sizeof(cmd), "%s plot %s --out %s/c.png --width 500 --height 400",
		 hug, dir, dir);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
	CHECK(strstr(out, "skipped 1 non-finite value") != NULL);
	snprintf(path, sizeof(path), "%s/c.png", dir);
	cairo_surface_t *sf = cairo_image_surface_create_from_png(path);
	CHECK(cairo_surface_status(sf) == CAIRO_STATUS_SUCCESS &&
	      cairo_image_surface_get_width(sf) == 500 && cairo_image_surface_get_height(sf) == 400);
	cairo_surface_destroy(sf);
	unlink(path);
	/* headless with no font at all: fontconfig finds nothing, cairo falls
	 * back to its built-in font, and the PNG is still written */
	char conf[256];
	snprintf(conf, sizeof(conf), "%s/fonts.conf", dir);
	test_write_file(conf, "<?xml version=\"1.0\"?>\n<fontconfig></fontconfig>\n");
	snprintf(cmd, sizeof(cmd), "env -u DISPLAY FONTCONFIG_FILE=%s FONTCONFIG_PATH=%s "
		 "XDG_CACHE_HOME=%s %s plot %s --out %s/nofont.png", conf, dir, dir, hug, dir, dir);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
	snprintf(path, sizeof(path), "%s/nofont.png", dir);
	sf = cairo_image_surface_create_from_png(path);
	CHECK(cairo_surface_status(sf) == CAIRO_STATUS_SUCCESS);
	if (cairo_surface_status(sf) == CAIRO_STATUS_SUCCESS) {
		struct picture p;
		picture_of(&p, sf);
		CHECK(count_dark(&p, 0, p.w / 25, 0, p.h) > 50);   /* labels drawn */
	}
	cairo_surface_destroy(sf);
	unlink(path);
	unlink(conf);
	snprintf(cmd, sizeof(cmd), "rm -rf %s/fontconfig", dir);
	CHECK(system(cmd) == 0);
	snprintf(cmd, sizeof(cmd), "%s plot %s --out %s/c.svg", hug, dir, dir);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 0 && strstr(out, "c.svg"));
	snprintf(path, sizeof(path), "%s/c.svg", dir);
	char *svg = test_read_file(path, NULL);
	CHECK(svg && xml_check(svg) == NULL && svg_has_color(svg, GRAD));
	hug_free(svg);
	unlink(path);
	snprintf(path, sizeof(path), "%s/metrics.jsonl", dir);
	test_write_file(path, "{\"step\": 0, \"loss\": 5, \"lr\": 1e-4}\n{\"step\": 1, \"loss\": 4,\n");
	snprintf(cmd, sizeof(cmd), "%s plot %s", hug, dir);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, "hug plot: ") && strstr(out, "metrics.jsonl:2:"));
	test_write_file(path, "");
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, "empty") != NULL);
	snprintf(cmd, sizeof(cmd), "%s plot %s --width 10", hug, dir);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2 && strstr(out, "--width"));
	snprintf(cmd, sizeof(cmd), "%s plot", hug);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2 && strstr(out, "usage"));
	snprintf(path, sizeof(path), "%s/curves.png", dir);
	struct stat st;
	CHECK(stat(path, &st) != 0);   /* nothing written on errors */
	snprintf(path, sizeof(path), "%s/metrics.jsonl", dir);
	unlink(path);
	snprintf(cmd, sizeof(cmd), "%s plot %s/missing", hug, dir);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2 && strstr(out, "cannot open"));
	rmdir(dir);
}
