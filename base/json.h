/* json.h: cJSON set up for hug: its allocations go through base/alloc.h
 * (aborting on failure, counted). Every module that parses JSON calls
 * hug_json_init() first. */
#ifndef HUG_BASE_JSON_H
#define HUG_BASE_JSON_H

#include <cjson/cJSON.h>

/* Installs hug's allocator as cJSON's, once per process (thread-safe,
 * cheap to call again). */
void hug_json_init(void);

/* "an object", "an array", "a string", "a number", "a boolean", "null" or
 * "invalid JSON": what `item` is, for messages. */
const char *hug_json_kind(const cJSON *item);

/* The JSON text of `item` for messages, shortened with "..." to fit
 * buf[n]; returns buf. */
const char *hug_json_text(const cJSON *item, char *buf, size_t n);

#endif
