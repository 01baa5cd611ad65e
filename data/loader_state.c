/* loader_state.c: the loader position as JSON, for trainer_state.json.
 * Counts are JSON numbers (exact up to 2^53, far beyond any run); the seed
 * is a decimal string because any 64-bit value is allowed. */
#include "loader_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/json.h"

cJSON *loader_state_to_json(const struct loader_state *st)
{
	char seed[32];
	hug_json_init();
	cJSON *j = cJSON_CreateObject();
	snprintf(seed, sizeof(seed), "%" PRIu64, st->seed);
	cJSON_AddNumberToObject(j, "version", st->version);
	cJSON_AddStringToObject(j, "seed", seed);
	cJSON_AddNumberToObject(j, "seq_len", (double)st->seq_len);
	cJSON_AddNumberToObject(j, "cursor", (double)st->cursor);
	cJSON *arr = cJSON_AddArrayToObject(j, "sources");
	for (int s = 0; s < st->n_sources; s++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "drawn", (double)st->drawn[s]);
		cJSON_AddNumberToObject(o, "n_train", (double)st->n_train[s]);
		cJSON_AddItemToArray(arr, o);
	}
	return j;
}

/* Reads integer member `key` of o (0 <= v <= 2^53) into *v; errors name
 * "<what>.<key>". */
static int get_int(const cJSON *o, const char *what, const char *key,
		   int64_t *v, struct hug_error *err)
{
	return hug_json_get_int(&(struct json_at){ NULL, what }, o, key, 0, HUG_JSON_INT_MAX,
				true, v, err);
}

int loader_state_from_json(const cJSON *j, const char *what,
			   struct loader_state *st, struct hug_error *err)
{
	int64_t version, n;
	char sub[256];
	memset(st, 0, sizeof(*st));
	if (!cJSON_IsObject(j))
		return hug_error_set(err, "%s: expected an object", what);
	if (get_int(j, what, "version", &version, err) < 0 ||
	    hug_json_get_u64_string(&(struct json_at){ NULL, what }, j, "seed", true,
				    &st->seed, err) < 0 ||
	    get_int(j, what, "seq_len", &st->seq_len, err) < 0 ||
	    get_int(j, what, "cursor", &st->cursor, err) < 0)
		return -1;
	if (version != LOADER_STATE_VERSION)
		return hug_error_set(err, "%s.version: %lld, expected %d", what,
				     (long long)version, LOADER_STATE_VERSION);
	st->version = (int32_t)version;
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "sources");
	n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
	if (n < 1 || n > LOADER_MAX_SOURCES)
		return hug_error_set(err, "%s.sources: expected an array of 1 .."
				     " %d objects", what, LOADER_MAX_SOURCES);
	st->n_sources = (int32_t)n;
	for (int s = 0; s < n; s++) {
		const cJSON *o = cJSON_GetArrayItem(arr, s);
		snprintf(sub, sizeof(sub), "%s.sources[%d]", what, s);
		if (get_int(o, sub, "drawn", &st->drawn[s], err) < 0 ||
		    get_int(o, sub, "n_train", &st->n_train[s], err) < 0)
			return -1;
	}
	return 0;
}
