/* recipe_agree.c: canonical recipe text, its comparison across ranks and
 * the first differing key (see recipe_agree.h). */
#include "recipe_agree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/json.h"
#include "../base/sha256.h"

static int by_key(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	return strcmp(x->string, y->string);
}

/* Sorts every object's members by key, recursively (cJSON keeps members
 * in a list whose head's prev is the tail). */
static void sort_keys(cJSON *j)
{
	int n = 0;
	for (cJSON *c = j->child; c; c = c->next) {
		sort_keys(c);
		n++;
	}
	if (!cJSON_IsObject(j) || n < 2)
		return;
	cJSON **v = hug_calloc((size_t)n, sizeof(*v));
	int i = 0;
	for (cJSON *c = j->child; c; c = c->next)
		v[i++] = c;
	qsort(v, (size_t)n, sizeof(*v), by_key);
	for (i = 0; i < n; i++) {
		v[i]->prev = i ? v[i - 1] : v[n - 1];
		v[i]->next = i + 1 < n ? v[i + 1] : NULL;
	}
	j->child = v[0];
	hug_free(v);
}

char *recipe_canonical(const char *json, bool resume)
{
	hug_json_init();
	cJSON *j = json ? cJSON_Parse(json) : NULL;
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return NULL;
	}
	if (resume)
		cJSON_AddBoolToObject(j, "--resume", true);
	sort_keys(j);
	char *text = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	char *out = text ? hug_strdup(text) : NULL;
	cJSON_free(text);
	return out;
}

static void value_text(const cJSON *v, char *out, size_t n)
{
	if (!v) {
		snprintf(out, n, "(absent)");
		return;
	}
	char *t = cJSON_PrintUnformatted(v);
	snprintf(out, n, "%s", t ? t : "?");
	if (t && strlen(t) >= n && n > 4)
		memcpy(out + n - 4, "...", 4);
	cJSON_free(t);
}

/* The first difference under a and b (at key path `at`), or 0. */
static int diff(const cJSON *a, const cJSON *b, const char *at, char *path, size_t n)
{
	char sub[512];
	if (cJSON_IsObject(a) && cJSON_IsObject(b)) {
		const cJSON *x = a->child, *y = b->child;
		while (x || y) {
			int c = !x ? 1 : !y ? -1 : strcmp(x->string, y->string);
			const char *key = c <= 0 ? x->string : y->string;
			snprintf(sub, sizeof(sub), "%s%s%s", at, at[0] ? "." : "", key);
			if (c != 0 || diff(x, y, sub, path, n)) {
				if (c != 0)
					snprintf(path, n, "%s", sub);
				return 1;
			}
			x = x->next;
			y = y->next;
		}
		return 0;
	}
	if (cJSON_IsArray(a) && cJSON_IsArray(b)) {
		const cJSON *x = a->child, *y = b->child;
		for (int i = 0; x || y; i++) {
			snprintf(sub, sizeof(sub), "%s[%d]", at, i);
			if (!x || !y || diff(x, y, sub, path, n)) {
				if (!x || !y)
					snprintf(path, n, "%s", sub);
				return 1;
			}
			x = x->next;
			y = y->next;
		}
		return 0;
	}
	if (cJSON_Compare(a, b, true))
		return 0;
	snprintf(path, n, "%s", at[0] ? at : "(the whole recipe)");
	return 1;
}

/* The item at a key path made by diff (".", "[i]"), or NULL. */
static const cJSON *at_path(const cJSON *j, const char *path)
{
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *s = buf; j && *s;) {
		if (*s == '[') {
			char *end;
			long i = strtol(s + 1, &end, 10);
			j = cJSON_IsArray(j) ? cJSON_GetArrayItem(j, (int)i) : NULL;
			s = *end == ']' ? end + 1 : end;
		} else {
			if (*s == '.')
				s++;
			size_t len = strcspn(s, ".[");
			char save = s[len];
			s[len] = '\0';
			j = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, s) : NULL;
			s[len] = save;
			s += len;
		}
	}
	return j;
}

int recipe_first_difference(const char *a, const char *b, char *path, size_t n, char *va,
			    char *vb, size_t nv)
{
	hug_json_init();
	cJSON *x = cJSON_Parse(a), *y = cJSON_Parse(b);
	int rc = -1;
	if (x && y) {
		rc = diff(x, y, "", path, n);
		if (rc) {
			bool whole = !strcmp(path, "(the whole recipe)");
			value_text(whole ? x : at_path(x, path), va, nv);
			value_text(whole ? y : at_path(y, path), vb, nv);
		}
	}
	cJSON_Delete(x);
	cJSON_Delete(y);
	return rc;
}

int recipe_agree(const struct parallel *par, const char *json, bool resume,
		 struct hug_error *err)
{
	int size = par->world.size, rank = par->world.rank;
	if (size <= 1)
		return 0;
	char *mine = recipe_canonical(json, resume);
	if (!mine) /* recipe_load made json: cannot happen; agree on an empty text */
		mine = hug_strdup("{}");
	struct sha256 s;
	uint8_t *hashes = hug_calloc((size_t)size, 32), digest[32];
	sha256_init(&s);
	sha256_update(&s, mine, strlen(mine));
	sha256_final(&s, digest);
	comm_allgather(&par->world, digest, hashes, 32, DT_U8);
	int first = -1;
	for (int r = 1; r < size && first < 0; r++)
		if (memcmp(hashes, hashes + 32 * r, 32))
			first = r;
	bool differ = memcmp(hashes, digest, 32) != 0;
	hug_free(hashes);
	if (first < 0) {
		hug_free(mine);
		return 0;
	}
	/* rank 0's text to every rank, which names its first difference */
	int len = rank == 0 ? (int)strlen(mine) + 1 : 0;
	comm_broadcast(&par->world, &len, 1, DT_I32, 0);
	char *ref = rank == 0 ? mine : hug_calloc((size_t)len, 1);
	comm_broadcast(&par->world, ref, len, DT_U8, 0);
	ref[len - 1] = '\0';
	if (rank == 0) {
		hug_error_set(err, "the recipe of rank %d differs from this rank's (every rank "
			      "must train the same recipe; see rank %d's message)", first, first);
	} else if (differ) {
		char path[512], va[128], vb[128];
		if (recipe_first_difference(ref, mine, path, sizeof(path), va, vb, sizeof(va)) == 1)
			hug_error_set(err, "the recipe differs from rank 0's at %s: rank 0 has %s, "
				      "rank %d has %s (every rank must train the same recipe)",
				      path, va, rank, vb);
		else
			hug_error_set(err, "the recipe differs from rank 0's (every rank must train "
				      "the same recipe)");
	}
	if (ref != mine)
		hug_free(ref);
	hug_free(mine);
	return rank == 0 || differ ? -1 : 0;
}
