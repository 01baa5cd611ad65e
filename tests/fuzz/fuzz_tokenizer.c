/* fuzz_tokenizer.c: libFuzzer harness for tokenizer.json loading
 * (data/tokenizer_load.c) and encoding: the input is the JSON; a tokenizer
 * that loads encodes and decodes a few fixed strings. */
#include "../../data/tokenizer.h"
#include "fuzz_util.h"

static const char *const texts[] = {
	"Hello, world! 123 dogs",
	"  leading spaces\tand\nnewlines  ",
	"Grüße, 你好, Привет — émoji \xf0\x9f\x98\x80",
	"\xff\xfe invalid \xc3 utf8",
	"<|endoftext|>x</s>",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tokenizer *tok = NULL;
	struct hug_error err = {0};
	if (tokenizer_load_json((const char *)data, size, "fuzz.json", &tok, &err) != 0)
		return 0;
	(void)tokenizer_hash(tok);
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		struct tok_ids ids = {0};
		tokenizer_encode(tok, texts[i], strlen(texts[i]), &ids);
		struct buf out = {0};
		tokenizer_decode(tok, ids.v, ids.n, false, &out, &err);
		buf_free(&out);
		tok_ids_free(&ids);
	}
	tokenizer_free(tok);
	return 0;
}
