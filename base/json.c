/* json.c: routes cJSON's allocations through base/alloc.h. */
#include "json.h"

#include <pthread.h>

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
