/* raster.c: drawing into an RGB buffer. Anti-aliasing uses the distance
 * from each pixel centre to the shape: coverage = clamp(r + 0.5 - d, 0, 1)
 * for a shape of half-width r, which is a one-pixel linear ramp across
 * every edge. */
#include "raster.h"

#include <math.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/panic.h"
#include "font.h"

void raster_init(struct raster *r, int w, int h, struct raster_color bg)
{
	HUG_ASSERT(w >= 1 && h >= 1);
	r->w = w;
	r->h = h;
	r->rgb = hug_malloc((size_t)w * (size_t)h * 3);
	raster_fill_rect(r, 0, 0, w, h, bg);
}

void raster_free(struct raster *r)
{
	hug_free(r->rgb);
	r->rgb = NULL;
	r->w = r->h = 0;
}

struct raster_color raster_get(const struct raster *r, int x, int y)
{
	HUG_ASSERT(x >= 0 && x < r->w && y >= 0 && y < r->h);
	const uint8_t *p = r->rgb + 3 * ((size_t)y * (size_t)r->w + (size_t)x);
	return (struct raster_color){ p[0], p[1], p[2] };
}

static uint8_t mix(uint8_t under, uint8_t over, float a)
{
	return (uint8_t)lrintf((float)under + ((float)over - (float)under) * a);
}

void raster_blend(struct raster *r, int x, int y, struct raster_color c, float a)
{
	if (x < 0 || x >= r->w || y < 0 || y >= r->h || !(a > 0.0f))
		return;
	if (a > 1.0f)
		a = 1.0f;
	uint8_t *p = r->rgb + 3 * ((size_t)y * (size_t)r->w + (size_t)x);
	p[0] = mix(p[0], c.r, a);
	p[1] = mix(p[1], c.g, a);
	p[2] = mix(p[2], c.b, a);
}

/* Intersects clip with the raster's own bounds. */
static struct raster_rect clip_to(const struct raster *r, struct raster_rect c)
{
	if (c.x0 < 0)
		c.x0 = 0;
	if (c.y0 < 0)
		c.y0 = 0;
	if (c.x1 > r->w)
		c.x1 = r->w;
	if (c.y1 > r->h)
		c.y1 = r->h;
	return c;
}

void raster_fill_rect(struct raster *r, int x0, int y0, int x1, int y1,
		      struct raster_color c)
{
	struct raster_rect b = clip_to(r, (struct raster_rect){ x0, y0, x1, y1 });
	for (int y = b.y0; y < b.y1; y++) {
		uint8_t *p = r->rgb + 3 * ((size_t)y * (size_t)r->w + (size_t)b.x0);
		for (int x = b.x0; x < b.x1; x++, p += 3) {
			p[0] = c.r;
			p[1] = c.g;
			p[2] = c.b;
		}
	}
}

/* Distance from (px, py) to the segment (ax, ay)-(bx, by). */
static double seg_dist(double px, double py, double ax, double ay, double bx, double by)
{
	double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
	double t = len2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0;
	t = t < 0 ? 0 : t > 1 ? 1 : t;
	double ex = px - (ax + t * dx), ey = py - (ay + t * dy);
	return sqrt(ex * ex + ey * ey);
}

/* Integer pixel range [*lo, *hi) touched by [a - pad, b + pad] (a <= b),
 * limited to [min, max). */
static void span(double a, double b, double pad, int min, int max, int *lo, int *hi)
{
	if (!isfinite(a) || !isfinite(b)) {
		*lo = *hi = min;
		return;
	}
	double l = floor(a - pad), h = ceil(b + pad) + 1;
	*lo = l < min ? min : l > max ? max : (int)l;
	*hi = h > max ? max : h < min ? min : (int)h;
}

/* Raises the coverage mask m (the pixels of clip b, row-major) with the
 * stroke of one segment of half-width hw. */
static void mask_segment(float *m, struct raster_rect b, double ax, double ay,
			 double bx, double by, double hw)
{
	int x0, x1, y0, y1;
	span(fmin(ax, bx), fmax(ax, bx), hw + 1, b.x0, b.x1, &x0, &x1);
	span(fmin(ay, by), fmax(ay, by), hw + 1, b.y0, b.y1, &y0, &y1);
	size_t bw = (size_t)(b.x1 - b.x0);
	for (int y = y0; y < y1; y++) {
		float *row = m + (size_t)(y - b.y0) * bw;
		for (int x = x0; x < x1; x++) {
			double d = seg_dist(x + 0.5, y + 0.5, ax, ay, bx, by);
			float cov = (float)(hw + 0.5 - d);
			if (cov > row[x - b.x0])
				row[x - b.x0] = cov > 1.0f ? 1.0f : cov;
		}
	}
}

void raster_polyline(struct raster *r, const double *x, const double *y, int n,
		     double width, struct raster_color c, struct raster_rect clip)
{
	struct raster_rect b = clip_to(r, clip);
	if (n < 1 || b.x0 >= b.x1 || b.y0 >= b.y1)
		return;
	int bw = b.x1 - b.x0, bh = b.y1 - b.y0;
	float *m = hug_calloc((size_t)bw * (size_t)bh, sizeof(float));
	double hw = width / 2;
	if (n == 1)
		mask_segment(m, b, x[0], y[0], x[0], y[0], hw);
	for (int i = 0; i + 1 < n; i++)
		mask_segment(m, b, x[i], y[i], x[i + 1], y[i + 1], hw);
	for (int yy = 0; yy < bh; yy++)
		for (int xx = 0; xx < bw; xx++)
			raster_blend(r, b.x0 + xx, b.y0 + yy, c, m[(size_t)yy * (size_t)bw + (size_t)xx]);
	hug_free(m);
}

void raster_disc(struct raster *r, double cx, double cy, double radius,
		 struct raster_color c, struct raster_rect clip)
{
	struct raster_rect b = clip_to(r, clip);
	int x0, x1, y0, y1;
	span(cx, cx, radius + 1, b.x0, b.x1, &x0, &x1);
	span(cy, cy, radius + 1, b.y0, b.y1, &y0, &y1);
	for (int y = y0; y < y1; y++)
		for (int x = x0; x < x1; x++) {
			double d = hypot(x + 0.5 - cx, y + 0.5 - cy);
			raster_blend(r, x, y, c, (float)(radius + 0.5 - d));
		}
}

int raster_text_width(const char *s, int scale)
{
	size_t n = strlen(s);
	if (n == 0)
		return 0;
	return (int)((n - 1) * RASTER_GLYPH_ADVANCE + RASTER_GLYPH_W) * scale;
}

void raster_text(struct raster *r, int x, int y, const char *s, int scale,
		 struct raster_color c)
{
	for (; *s; s++, x += RASTER_GLYPH_ADVANCE * scale)
		for (int row = 0; row < RASTER_GLYPH_H; row++)
			for (int col = 0; col < RASTER_GLYPH_W; col++)
				if (font_pixel(*s, col, row))
					raster_fill_rect(r, x + col * scale, y + row * scale,
							 x + (col + 1) * scale,
							 y + (row + 1) * scale, c);
}
