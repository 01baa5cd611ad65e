/* load.c: a checkpoint (and adapter) for the inference commands, and the
 * tokenizer of a command's flags. */
#include "load.h"

#include <string.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../io/dir_checksums.h"
#include "../io/hf_checkpoint.h"
#include "../peft/lora_io.h"

int cli_model_load(const char *dir, const char *adapter, struct model *m, struct hug_error *err)
{
	memset(m, 0, sizeof(*m));
	if (dir_checksums_check(dir, NULL, err) || hf_model_load(dir, DT_F32, false, m, err))
		return -1;
	if (!adapter)
		return 0;
	struct lora_model lm = { 0 };
	if (lora_load(&lm, m, adapter, false, err)) {
		model_free(m);
		return -1;
	}
	lora_merge(&lm);
	lora_model_free(&lm); /* merged weights stay merged; detached before a move */
	return 0;
}

int cli_tokenizer_find(const char *given, const char *model, const char *adapter,
		       struct tokenizer **tok, struct hug_error *err)
{
	*tok = NULL;
	if (given) {
		char *file = fs_is_dir(given) ? fs_join(given, "tokenizer.json") : hug_strdup(given);
		int rc = fs_exists(file) ? tokenizer_load(file, tok, err)
			 : hug_error_set(err, "--tokenizer: no tokenizer: looked for %s (no such file)",
					 file);
		hug_free(file);
		return rc;
	}
	const char *dirs[2] = { adapter, model }, *what[2] = { "--adapter", "--model" };
	char tried[1536] = "";
	for (int i = 0; i < 2; i++) {
		if (!dirs[i])
			continue;
		char *file = fs_join(dirs[i], "tokenizer.json");
		if (fs_exists(file)) {
			int rc = tokenizer_load(file, tok, err);
			hug_free(file);
			return rc;
		}
		size_t used = strlen(tried);
		snprintf(tried + used, sizeof(tried) - used, "%s%s (the %s directory)",
			 used ? ", " : "", file, what[i]);
		hug_free(file);
	}
	return hug_error_set(err, "no tokenizer: looked for %s; give one with --tokenizer T.json",
			     tried[0] ? tried : "nothing (no --model or --adapter directory)");
}
