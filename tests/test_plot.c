/* test_plot.c: `hug plot` and its parts: CRC-32 and Adler-32 against their
 * published check values, the PNG encoder decoded back by an independent
 * reader written here (chunk CRCs, IHDR, stored-block zlib, pixels), the
 * rasterizer, nice ticks and labels, metrics.jsonl parsing and its errors,
 * and the rendered picture, in process and through the binary. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../train/plot.h"
#include "../train/png.h"
#include "../train/raster.h"
#include "harness.h"

/* ---- an independent PNG reader for what png.c writes ---- */

/* Bit-at-a-time CRC-32, unlike png.c's table. */
static uint32_t ref_crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
	}
	return ~c;
}

/* Adler-32 with a modulo after every byte. */
static uint32_t ref_adler32(const uint8_t *p, size_t n)
{
	uint32_t a = 1, b = 0;
	for (size_t i = 0; i < n; i++) {
		a = (a + p[i]) % 65521u;
		b = (b + a) % 65521u;
	}
	return (b << 16) | a;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

struct decoded {
	int w, h;
	uint8_t *rgb;        /* (h, w, 3), malloc'd */
	int n_blocks;        /* stored deflate blocks seen */
};

/* Decodes an 8-bit RGB PNG whose zlib stream holds stored blocks and whose
 * rows use filter 0. Returns NULL on success, else what was wrong. */
static const char *decode_png(const uint8_t *f, size_t n, struct decoded *d)
{
	static const uint8_t sig[8] = { 137, 80, 78, 71, 13, 10, 26, 10 };
	uint8_t *z = NULL;
	size_t zn = 0, pos = 8;
	bool ihdr = false, iend = false;
	memset(d, 0, sizeof(*d));
	if (n < 8 || memcmp(f, sig, 8))
		return "bad signature";
	while (pos + 12 <= n && !iend) {
		uint32_t len = be32(f + pos);
		const uint8_t *type = f + pos + 4, *data = f + pos + 8;
		if (pos + 12 + (size_t)len > n)
			return "chunk runs past the end";
		if (be32(data + len) != ref_crc32(type, 4 + (size_t)len))
			return "chunk CRC mismatch";
		if (!memcmp(type, "IHDR", 4)) {
			if (len != 13 || ihdr)
				return "bad IHDR";
			d->w = (int)be32(data);
			d->h = (int)be32(data + 4);
			if (data[8] != 8 || data[9] != 2 || data[10] || data[11] || data[12])
				return "IHDR is not 8-bit RGB, deflate, filter 0, no interlace";
			ihdr = true;
		} else if (!memcmp(type, "IDAT", 4)) {
			z = realloc(z, zn + len);
			memcpy(z + zn, data, len);
			zn += len;
		} else if (!memcmp(type, "IEND", 4)) {
			iend = true;
		}
		pos += 12 + (size_t)len;
	}
	const char *why = NULL;
	if (!ihdr || !iend || pos != n)
		why = "missing IHDR or IEND, or bytes after IEND";
	if (!why && (zn < 6 || (z[0] & 0x0F) != 8 || ((z[0] << 8) | z[1]) % 31 || (z[1] & 0x20)))
		why = "bad zlib header";
	size_t raw_n = (size_t)d->h * (1 + 3 * (size_t)d->w), got = 0, zp = 2;
	uint8_t *raw = why ? NULL : malloc(raw_n);
	bool final = false;
	while (!why && !final) {
		if (zp + 5 > zn)
			why = "truncated deflate block";
		else if ((z[zp] >> 1) & 3)
			why = "not a stored block";
		else if ((z[zp + 1] | z[zp + 2] << 8) != (uint16_t)~(z[zp + 3] | z[zp + 4] << 8))
			why = "LEN and NLEN disagree";
		if (why)
			break;
		final = z[zp] & 1;
		size_t len = (size_t)(z[zp + 1] | z[zp + 2] << 8);
		zp += 5;
		if (zp + len > zn || got + len > raw_n) {
			why = "stored block too long";
			break;
		}
		memcpy(raw + got, z + zp, len);
		got += len;
		zp += len;
		d->n_blocks++;
	}
	if (!why && (got != raw_n || zp + 4 != zn || be32(z + zp) != ref_adler32(raw, raw_n)))
		why = "wrong data length or Adler-32";
	if (!why) {
		d->rgb = malloc(raw_n);
		for (int y = 0; y < d->h && !why; y++) {
			const uint8_t *row = raw + (size_t)y * (1 + 3 * (size_t)d->w);
			if (row[0] != 0)
				why = "row filter is not 0";
			memcpy(d->rgb + (size_t)y * 3 * (size_t)d->w, row + 1, 3 * (size_t)d->w);
		}
	}
	free(raw);
	free(z);
	return why;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* ---- checksums and the encoder ---- */

TEST(plot_png_crc32_adler32_check_values)
{
	CHECK(png_crc32("123456789", 9) == 0xCBF43926u);
	CHECK(png_crc32("", 0) == 0);
	CHECK(png_crc32_update(png_crc32("12345", 5), "6789", 4) == 0xCBF43926u);
	CHECK(png_adler32("Wikipedia", 9) == 0x11E60398u);
	CHECK(png_adler32("", 0) == 1);
	/* long inputs exercise the deferred modulo */
	size_t n = 100000;
	uint8_t *buf = malloc(n);
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(255 - (i * 7) % 13);
	CHECK(png_adler32(buf, n) == ref_adler32(buf, n));
	CHECK(png_crc32(buf, n) == ref_crc32(buf, n));
	free(buf);
}

static void roundtrip(int w, int h)
{
	size_t n_px = (size_t)w * (size_t)h * 3, len;
	uint8_t *rgb = malloc(n_px);
	for (size_t i = 0; i < n_px; i++)
		rgb[i] = (uint8_t)((i * 2654435761u) >> 13);
	uint8_t *png = png_encode_rgb(rgb, w, h, &len);
	struct decoded d;
	const char *why = decode_png(png, len, &d);
	if (why)
		test_fail_at(__FILE__, __LINE__, "%dx%d: %s", w, h, why);
	CHECK(d.w == w && d.h == h);
	CHECK(d.rgb && !memcmp(d.rgb, rgb, n_px));
	/* 65535 bytes at most per stored block */
	size_t raw = (size_t)h * (1 + 3 * (size_t)w);
	CHECK(d.n_blocks == (int)((raw + 65534) / 65535));
	free(d.rgb);
	hug_free(png);
	free(rgb);
}

TEST(plot_png_roundtrip_through_independent_decoder)
{
	roundtrip(1, 1);
	roundtrip(37, 23);
	roundtrip(300, 250);     /* several stored blocks */
	roundtrip(1456, 15);     /* exactly one full block: 15 x 4369 bytes */
	roundtrip(428, 102);     /* exactly two full blocks */
}

TEST(plot_png_write_file)
{
	char dir[] = "/tmp/hug-png-XXXXXX", path[256];
	REQUIRE(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/x.png", dir);
	uint8_t rgb[2 * 3 * 3] = { 255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9, 1, 2, 3, 200, 100, 50 };
	struct hug_error err = { 0 };
	REQUIRE(png_write_rgb(path, rgb, 3, 2, &err) == 0);
	size_t n;
	uint8_t *f = (uint8_t *)test_read_file(path, &n);
	struct decoded d;
	REQUIRE(f);
	CHECK(decode_png(f, n, &d) == NULL);
	CHECK(d.w == 3 && d.h == 2 && d.rgb && !memcmp(d.rgb, rgb, sizeof(rgb)));
	free(d.rgb);
	hug_free(f);
	unlink(path);
	snprintf(path, sizeof(path), "%s/no/such/dir/x.png", dir);
	CHECK(png_write_rgb(path, rgb, 3, 2, &err) == -1);
	CHECK(strstr(err.msg, "no/such/dir") != NULL);
	rmdir(dir);
}

/* ---- rasterizer ---- */

TEST(plot_raster_clip_and_text)
{
	const struct raster_color white = { 255, 255, 255 }, red = { 255, 0, 0 };
	struct raster r;
	raster_init(&r, 40, 30, white);
	double x[3] = { -10, 20, 60 }, y[3] = { 15, 15, 40 };
	struct raster_rect clip = { 10, 10, 30, 20 };
	raster_polyline(&r, x, y, 3, 2.0, red, clip);
	int inside = 0, outside = 0;
	for (int j = 0; j < r.h; j++)
		for (int i = 0; i < r.w; i++) {
			struct raster_color c = raster_get(&r, i, j);
			bool in = i >= 10 && i < 30 && j >= 10 && j < 20;
			bool painted = c.g != 255;
			inside += in && painted;
			outside += !in && painted;
		}
	CHECK(inside > 20);
	CHECK(outside == 0);
	/* a centred 2-pixel horizontal line covers rows 14 and 15 fully */
	CHECK(raster_get(&r, 15, 14).g == 0 && raster_get(&r, 15, 15).g == 0);
	CHECK(raster_get(&r, 15, 12).g == 255);
	CHECK(raster_text_width("", 2) == 0);
	CHECK(raster_text_width("a", 1) == RASTER_GLYPH_W);
	CHECK(raster_text_width("ab", 2) == 2 * (RASTER_GLYPH_ADVANCE + RASTER_GLYPH_W));
	raster_fill_rect(&r, 0, 0, 40, 30, white);
	raster_text(&r, 1, 1, "8", 1, red);   /* '8' has a pixel at column 1, row 0 */
	CHECK(raster_get(&r, 2, 1).g == 0 && raster_get(&r, 1, 1).g == 255);
	raster_text(&r, 35, 25, "Wg", 3, red);   /* clipped at the border, no crash */
	raster_disc(&r, 20, 20, 3, red, (struct raster_rect){ 0, 0, 40, 30 });
	CHECK(raster_get(&r, 20, 20).g == 0 && raster_get(&r, 25, 20).g == 255);
	raster_free(&r);
}

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

/* ---- rendering ---- */

/* A decaying loss with a periodic wobble of the given amplitude, warmup and
 * cosine lr, and a validation loss every 50 steps, as metrics.jsonl text. */
static const char *synthetic_metrics(int steps, double noise)
{
	static char buf[1 << 18];
	size_t k = 0;
	for (int s = 0; s <= steps && k + 200 < sizeof(buf); s++) {
		double loss = 3 + 8 * exp(-s / 40.0) + noise * sin(s * 1.7);
		double lr = s < 20 ? 3e-4 * (s + 1) / 20 : 3e-5 + 2.7e-4 * (1 + cos(M_PI * (s - 20) / (steps - 20))) / 2;
		k += (size_t)snprintf(buf + k, sizeof(buf) - k,
				      "{\"step\": %d, \"loss\": %.6f, \"lr\": %.8g}\n", s, loss, lr);
		if (s % 50 == 49)
			k += (size_t)snprintf(buf + k, sizeof(buf) - k,
					      "{\"step\": %d, \"valid_loss\": %.6f, \"valid_ppl\": 1}\n",
					      s, loss + 0.2);
	}
	return buf;
}

/* Counts the pixels near colour (r, g, b) in rows [y0, y1). */
static int count_color(const uint8_t *rgb, int w, int y0, int y1, int r, int g, int b)
{
	int n = 0;
	for (int y = y0; y < y1; y++)
		for (int x = 0; x < w; x++) {
			const uint8_t *p = rgb + 3 * ((size_t)y * (size_t)w + (size_t)x);
			n += abs(p[0] - r) + abs(p[1] - g) + abs(p[2] - b) < 60;
		}
	return n;
}

static int count_non_bg(const uint8_t *rgb, int w, int y0, int y1)
{
	int n = 0;
	for (int y = y0; y < y1; y++)
		for (int x = 0; x < w; x++) {
			const uint8_t *p = rgb + 3 * ((size_t)y * (size_t)w + (size_t)x);
			n += p[0] != 255 || p[1] != 255 || p[2] != 255;
		}
	return n;
}

TEST(plot_render_synthetic_two_panels)
{
	struct plot_metrics m;
	struct hug_error err = { 0 };
	REQUIRE(parse(synthetic_metrics(300, 0.1), &m, &err) == 0);
	struct plot_opts o = plot_opts_default();
	o.width = 640;
	o.height = 480;
	struct raster r;
	REQUIRE(plot_render(&m, &o, &r, &err) == 0);
	CHECK(r.w == 640 && r.h == 480);
	/* the loss panel takes the upper ~60%, the lr panel the rest */
	int top = 480 * 55 / 100, bottom = 480 * 62 / 100;
	CHECK(count_color(r.rgb, r.w, 0, top, 31, 119, 180) > 300);      /* train */
	CHECK(count_color(r.rgb, r.w, 0, top, 230, 110, 10) > 20);       /* valid */
	CHECK(count_color(r.rgb, r.w, bottom, r.h, 44, 150, 44) > 300);  /* lr */
	CHECK(count_color(r.rgb, r.w, bottom, r.h, 31, 119, 180) == 0);
	CHECK(count_non_bg(r.rgb, r.w, 0, top) > 2000);
	CHECK(count_non_bg(r.rgb, r.w, bottom, r.h) > 2000);
	raster_free(&r);
	o.log_y = true;
	REQUIRE(plot_render(&m, &o, &r, &err) == 0);
	raster_free(&r);
	/* a non-positive loss cannot go on a log scale */
	m.loss.pts[0].value = 0;
	CHECK(plot_render(&m, &o, &r, &err) == -1 && strstr(err.msg, "--log-y"));
	raster_free(&r);
	o.log_y = false;
	o.width = 100;
	hug_error_clear(&err);
	CHECK(plot_render(&m, &o, &r, &err) == -1 && strstr(err.msg, "--width"));
	raster_free(&r);
	plot_metrics_free(&m);
}

TEST(plot_render_smooths_dense_loss)
{
	struct plot_metrics m;
	struct hug_error err = { 0 };
	struct raster r;
	struct plot_opts o = plot_opts_default();
	o.width = 640;
	o.height = 480;
	REQUIRE(parse(synthetic_metrics(2000, 1.0), &m, &err) == 0);
	/* auto: the raw curve in a tint, the moving average over it */
	REQUIRE(plot_render(&m, &o, &r, &err) == 0);
	int tint_auto = count_color(r.rgb, r.w, 0, r.h / 2, 177, 207, 229);
	CHECK(count_color(r.rgb, r.w, 0, r.h / 2, 31, 119, 180) > 300);
	raster_free(&r);
	o.smooth = 0;
	REQUIRE(plot_render(&m, &o, &r, &err) == 0);
	int tint_off = count_color(r.rgb, r.w, 0, r.h / 2, 177, 207, 229);
	raster_free(&r);
	CHECK(tint_auto > 3 * tint_off + 100);
	o.smooth = -2;
	CHECK(plot_render(&m, &o, &r, &err) == -1 && strstr(err.msg, "--smooth"));
	raster_free(&r);
	plot_metrics_free(&m);
}

TEST(plot_render_single_point_and_no_lr)
{
	struct plot_metrics m;
	struct hug_error err = { 0 };
	struct raster r;
	struct plot_opts o = plot_opts_default();
	REQUIRE(parse("{\"step\": 7, \"loss\": 4.25}\n", &m, &err) == 0);
	REQUIRE(plot_render(&m, &o, &r, &err) == 0);
	CHECK(count_color(r.rgb, r.w, 0, r.h / 2, 31, 119, 180) > 0);
	raster_free(&r);
	plot_metrics_free(&m);
	REQUIRE(parse("{\"step\": 100, \"valid_loss\": 4.25}\n", &m, &err) == 0);
	REQUIRE(plot_render(&m, &o, &r, &err) == 0);
	CHECK(count_color(r.rgb, r.w, 0, r.h / 2, 230, 110, 10) > 0);
	raster_free(&r);
	plot_metrics_free(&m);
}

TEST(plot_run_writes_png_of_requested_size)
{
	char dir[] = "/tmp/hug-plot-XXXXXX", path[256], used[256];
	REQUIRE(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/metrics.jsonl", dir);
	write_text(path, synthetic_metrics(500, 0.1));
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
	uint8_t *f = (uint8_t *)test_read_file(path, &n);
	REQUIRE(f);
	struct decoded d;
	CHECK(decode_png(f, n, &d) == NULL);
	CHECK(d.w == 700 && d.h == 420);
	if (d.rgb) {
		CHECK(count_non_bg(d.rgb, d.w, 0, d.h / 2) > 1000);
		CHECK(count_non_bg(d.rgb, d.w, d.h * 62 / 100, d.h) > 1000);
	}
	free(d.rgb);
	hug_free(f);
	unlink(path);
	snprintf(path, sizeof(path), "%s/metrics.jsonl", dir);
	write_text(path, "");
	CHECK(plot_run(dir, NULL, &o, NULL, NULL, 0, &err) == -1);
	CHECK(strstr(err.msg, "metrics.jsonl: empty") != NULL);
	unlink(path);
	hug_error_clear(&err);
	CHECK(plot_run(dir, NULL, &o, NULL, NULL, 0, &err) == -1);
	CHECK(strstr(err.msg, "cannot open") != NULL);
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
	write_text(path, "{\"step\": 0, \"loss\": 5, \"lr\": 1e-4}\n"
		   "{\"step\": 1, \"loss\": NaN, \"lr\": 1e-4}\n"
		   "{\"step\": 2, \"loss\": 4, \"lr\": 1e-4}\n");
	snprintf(cmd, sizeof(cmd), "%s plot %s --out %s/c.png --width 500 --height 300",
		 hug, dir, dir);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
	CHECK(strstr(out, "skipped 1 non-finite value") != NULL);
	snprintf(path, sizeof(path), "%s/c.png", dir);
	struct stat st;
	CHECK(stat(path, &st) == 0 && st.st_size > 500 * 300 * 3);
	unlink(path);
	snprintf(path, sizeof(path), "%s/metrics.jsonl", dir);
	write_text(path, "{\"step\": 0, \"loss\": 5, \"lr\": 1e-4}\n{\"step\": 1, \"loss\": 4,\n");
	snprintf(cmd, sizeof(cmd), "%s plot %s", hug, dir);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, "hug plot: ") && strstr(out, "metrics.jsonl:2:"));
	write_text(path, "");
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, "empty") != NULL);
	snprintf(cmd, sizeof(cmd), "%s plot %s --width 10", hug, dir);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2 && strstr(out, "--width"));
	snprintf(cmd, sizeof(cmd), "%s plot", hug);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2 && strstr(out, "usage"));
	snprintf(path, sizeof(path), "%s/curves.png", dir);
	CHECK(stat(path, &st) != 0);   /* nothing written on errors */
	snprintf(path, sizeof(path), "%s/metrics.jsonl", dir);
	unlink(path);
	rmdir(dir);
}
