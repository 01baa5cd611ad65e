/* json.c: routes cJSON's allocations through base/alloc.h. */
#include "json.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

static void *json_malloc(size_t size)
{
	return hug_malloc(size);
}

static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void hooks_install(void)
{
	cJSON_Hooks hooks = { .malloc_fn = json_malloc, .free_fn = hug_free };
	cJSON_InitHooks(&hooks);
}

void hug_json_init(void)
{
	pthread_once(&hooks_once, hooks_install);
}

const char *hug_json_kind(const cJSON *item)
{
	if (cJSON_IsObject(item))
		return "an object";
	if (cJSON_IsArray(item))
		return "an array";
	if (cJSON_IsString(item))
		return "a string";
	if (cJSON_IsNumber(item))
		return "a number";
	if (cJSON_IsBool(item))
		return "a boolean";
	if (cJSON_IsNull(item))
		return "null";
	return "invalid JSON";
}

const char *hug_json_text(const cJSON *item, char *buf, size_t n)
{
	char *s = cJSON_PrintUnformatted(item);
	if (!s) {
		snprintf(buf, n, "%s", hug_json_kind(item));
		return buf;
	}
	if (strlen(s) >= n && n > 4)
		snprintf(buf, n, "%.*s...", (int)(n - 4), s);
	else
		snprintf(buf, n, "%s", s);
	cJSON_free(s);
	return buf;
}
