/* plot_metrics.c: reading metrics.jsonl for plot.h: one JSON object a
 * line, parsed with cJSON after bare non-finite tokens (NaN, Infinity,
 * nan, inf, with a sign) are rewritten to null; then each series is sorted
 * by step with the last line of a repeated step kept. */
#include "plot.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../base/json.h"

/* Steps above 2^53 are not exact in a double. */
#define STEP_MAX 9007199254740992.0

static void series_push(struct plot_series *s, double step, double value)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 256;
		s->pts = hug_realloc(s->pts, s->cap * sizeof(*s->pts));
	}
	s->pts[s->n++] = (struct plot_point){ step, value };
}

struct seq_point {
	double step, value;
	size_t seq;
};

static int seq_cmp(const void *pa, const void *pb)
{
	const struct seq_point *a = pa, *b = pb;
	if (a->step != b->step)
		return a->step < b->step ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Sorts s by step, keeping the last point (in file order) of each step. */
static void series_finish(struct plot_series *s)
{
	if (s->n < 2)
		return;
	struct seq_point *t = hug_malloc(s->n * sizeof(*t));
	for (size_t i = 0; i < s->n; i++)
		t[i] = (struct seq_point){ s->pts[i].step, s->pts[i].value, i };
	qsort(t, s->n, sizeof(*t), seq_cmp);
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (i + 1 < s->n && t[i + 1].step == t[i].step)
			continue;
		s->pts[k++] = (struct plot_point){ t[i].step, t[i].value };
	}
	s->n = k;
	hug_free(t);
}

/* Whether s[0..n) is, ignoring case and one leading sign, nan, inf or
 * infinity. */
static bool nonfinite_word(const char *s, size_t n)
{
	if (n && (*s == '-' || *s == '+')) {
		s++;
		n--;
	}
	return (n == 3 && !strncasecmp(s, "nan", 3)) ||
	       (n == 3 && !strncasecmp(s, "inf", 3)) ||
	       (n == 8 && !strncasecmp(s, "infinity", 8));
}

/* Copies line[0..n) to out (room for 2n + 1 bytes), NUL-terminated, with
 * non-finite words outside strings replaced by null. */
static void sanitize(const char *line, size_t n, char *out)
{
	bool in_str = false;
	size_t i = 0;
	while (i < n) {
		char c = line[i];
		if (in_str) {
			*out++ = c;
			if (c == '\\' && i + 1 < n)
				*out++ = line[++i];
			else if (c == '"')
				in_str = false;
			i++;
			continue;
		}
		size_t j = i + (c == '-' || c == '+');
		while (j < n && isalpha((unsigned char)line[j]))
			j++;
		if (j > i && isalpha((unsigned char)line[j - 1])) {
			/* a whole word: true, false, null, or a non-finite one */
			if (nonfinite_word(line + i, j - i)) {
				memcpy(out, "null", 4);
				out += 4;
			} else {
				memcpy(out, line + i, j - i);
				out += j - i;
			}
			i = j;
			continue;
		}
		in_str = c == '"';
		*out++ = c;
		i++;
	}
	*out = '\0';
}

/* Reads key from obj into *v. 1: a finite number; 0: absent; 2: present
 * but non-finite (null, a non-finite number, or a string such as "nan");
 * -1 with err for any other type. */
static int get_value(const cJSON *obj, const char *key, double *v, const char *name,
		     size_t line, struct hug_error *err)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!it)
		return 0;
	if (cJSON_IsNumber(it)) {
		*v = it->valuedouble;
		return isfinite(*v) ? 1 : 2;
	}
	if (cJSON_IsNull(it))
		return 2;
	if (cJSON_IsString(it) && nonfinite_word(it->valuestring, strlen(it->valuestring)))
		return 2;
	return hug_error_set(err, "%s:%zu: \"%s\": expected a number, got %s", name, line,
			     key, cJSON_IsString(it) ? "a string" : cJSON_IsBool(it) ?
			     "a boolean" : cJSON_IsArray(it) ? "an array" : "an object");
}

/* Reads the step of a line that carries metrics; 0 or -1 with err. */
static int get_step(const cJSON *obj, double *step, const char *name, size_t line,
		    struct hug_error *err)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, "step");
	if (!it)
		return hug_error_set(err, "%s:%zu: missing \"step\"", name, line);
	double v = it->valuedouble;
	if (!cJSON_IsNumber(it) || !(v >= 0 && v <= STEP_MAX) || v != floor(v))
		return hug_error_set(err, "%s:%zu: \"step\": expected a non-negative integer",
				     name, line);
	*step = v;
	return 0;
}

/* Adds the metrics of one JSON object (line number `line`) to m. */
static int take_object(const cJSON *obj, struct plot_metrics *m, const char *name,
		       size_t line, struct hug_error *err)
{
	static const char *const keys[5] = { "loss", "lr", "grad_norm", "tokens_per_s",
					     "valid_loss" };
	struct plot_series *dst[5] = { &m->loss, &m->lr, &m->grad, &m->tps, &m->valid };
	double v[5], step = 0;
	int got[5];
	bool any = false;
	for (int k = 0; k < 5; k++) {
		got[k] = get_value(obj, keys[k], &v[k], name, line, err);
		if (got[k] < 0)
			return -1;
		any |= got[k] != 0;
	}
	if (!any)
		return 0;   /* some other kind of record */
	if (get_step(obj, &step, name, line, err))
		return -1;
	for (int k = 0; k < 5; k++) {
		if (got[k] == 1)
			series_push(dst[k], step, v[k]);
		else if (got[k] == 2)
			m->n_nonfinite++;
	}
	return 0;
}

/* Parses one non-blank line; buf has room for 2n + 1 bytes. */
static int take_line(const char *s, size_t n, char *buf, struct plot_metrics *m,
		     const char *name, size_t line, struct hug_error *err)
{
	const char *end = NULL;
	sanitize(s, n, buf);
	cJSON *obj = cJSON_ParseWithOpts(buf, &end, 1);
	if (!obj) {
		const char *at = cJSON_GetErrorPtr();
		if (!at || at < buf || at > buf + strlen(buf))
			at = buf;
		return hug_error_set(err, "%s:%zu: not valid JSON (near \"%.20s\")", name,
				     line, at);
	}
	int rc = 0;
	if (!cJSON_IsObject(obj))
		rc = hug_error_set(err, "%s:%zu: expected a JSON object", name, line);
	else
		rc = take_object(obj, m, name, line, err);
	cJSON_Delete(obj);
	return rc;
}

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isspace((unsigned char)s[i]))
			return false;
	return true;
}

int plot_metrics_parse(const char *text, size_t len, const char *name,
		       struct plot_metrics *m, struct hug_error *err)
{
	hug_json_init();
	size_t cap = 0, line = 0, pos = 0;
	char *buf = NULL;
	int rc = 0;
	while (pos < len && !rc) {
		const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;
		pos += n + (nl != NULL);
		line++;
		if (blank(s, n))
			continue;
		m->n_lines++;
		if (2 * n + 1 > cap) {
			cap = 2 * n + 1;
			buf = hug_realloc(buf, cap);
		}
		rc = take_line(s, n, buf, m, name, line, err);
	}
	hug_free(buf);
	if (rc)
		return -1;
	series_finish(&m->loss);
	series_finish(&m->lr);
	series_finish(&m->grad);
	series_finish(&m->tps);
	series_finish(&m->valid);
	if (m->n_lines == 0)
		return hug_error_set(err, "%s: empty: no metrics logged yet", name);
	if (m->loss.n == 0 && m->valid.n == 0)
		return hug_error_set(err, "%s: no finite \"loss\" or \"valid_loss\" in %zu "
				     "line%s", name, m->n_lines, m->n_lines == 1 ? "" : "s");
	return 0;
}

int plot_metrics_read(const char *path, struct plot_metrics *m, struct hug_error *err)
{
	char *text = NULL;
	size_t len = 0;
	if (fs_read_file(path, (size_t)1 << 34, &text, &len, err))
		return -1;
	int rc = plot_metrics_parse(text, len, path, m, err);
	hug_free(text);
	return rc;
}

void plot_metrics_free(struct plot_metrics *m)
{
	hug_free(m->loss.pts);
	hug_free(m->lr.pts);
	hug_free(m->grad.pts);
	hug_free(m->tps.pts);
	hug_free(m->valid.pts);
	memset(m, 0, sizeof(*m));
}
