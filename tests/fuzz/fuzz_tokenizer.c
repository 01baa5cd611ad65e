/* fuzz_tokenizer.c: libFuzzer harness for tokenizer.json loading
 * (data/tokenizer_load.c and the pipeline parts: normalizers, Split
 * regexes through Oniguruma, Metaspace, added tokens, templates, decoder
 * chains) and encoding: the input is the JSON; a tokenizer that loads
 * encodes a few fixed strings with and without special tokens, through
 * the plain call and a caching encoder, and decodes the ids both ways. */
#include "../../data/tokenizer.h"
#include "fuzz_util.h"

static const char *const texts[] = {
	"Hello, world! 123 dogs",
	"  leading spaces\tand\nnewlines  \r\n",
	"Grüße, 你好, Привет — émoji \xf0\x9f\x98\x80 e\xcc\x81 \xef\xac\x81 \xc4\xb0",
	"\xff\xfe invalid \xc3 utf8 \xe2\x96\x81",
	"<|endoftext|>x</s><s> <mask> [SW]a <|begin_of_text|><0x41>",
	"\xe2\x96\x81\xe2\x96\x81 metaspace\xe2\x96\x81 1234567 a-b--c",
	"",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tokenizer *tok = NULL;
	struct hug_error err = {0};
	if (tokenizer_load_json((const char *)data, size, "fuzz.json", &tok, &err) != 0)
		return 0;
	(void)tokenizer_hash(tok);
	struct tok_encoder *enc = tok_encoder_new(tok);
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		struct tok_ids ids = {0};
		size_t n = strlen(texts[i]);
		tokenizer_encode(tok, texts[i], n, &ids);
		tok_encoder_encode_special(enc, texts[i], n, i % 2 == 0, &ids);
		struct buf out = {0};
		tokenizer_decode(tok, ids.v, ids.n, false, &out, &err);
		tokenizer_decode(tok, ids.v, ids.n, true, &out, &err);
		buf_free(&out);
		tok_ids_free(&ids);
	}
	tok_encoder_free(enc);
	tokenizer_free(tok);
	return 0;
}
