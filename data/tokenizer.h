/* tokenizer.h: BPE tokenizers in Hugging Face's tokenizer.json format
 * (GPT-2, BLOOM, Llama 2/3, Mistral, Qwen2, Gemma, SmolLM and the like):
 * loading, encoding, decoding, and training new byte-level ones.
 *
 * Supported tokenizer.json (docs/tokenizers.md has the details):
 *   model: "BPE" (vocab; merges as "a b" or ["a", "b"]; ignore_merges;
 *     byte_fallback; unk_token/fuse_unk). WordPiece, Unigram, WordLevel,
 *     dropout and subword affixes are refused.
 *   added_tokens: special, single_word, lstrip, rstrip, normalized; those
 *     with normalized=false matched in the raw text, the others in the
 *     normalized text, leftmost-longest, before the pre-tokenizer, as HF.
 *   normalizer: NFC, NFD, NFKC, NFKD, Lowercase, Replace, Prepend, Strip,
 *     Sequence (utf8proc for Unicode).
 *   pre_tokenizer: Split (any String or Regex, matched by Oniguruma like
 *     HF; every behavior; invert), ByteLevel (last), Metaspace, Digits,
 *     Punctuation, Whitespace, WhitespaceSplit, Sequence, or null.
 *   post_processor: TemplateProcessing (single), ByteLevel, Sequence;
 *     template ids are added by the *_special encoders on request.
 *   decoder: ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace,
 *     Sequence, or null.
 * truncation and padding are ignored: hug always encodes whole texts.
 * Anything else is refused with a message naming the feature and its JSON
 * path.
 *
 * A loaded tokenizer is immutable, so any number of threads may encode
 * with it at once, each through its own struct tok_encoder. */
#ifndef HUG_DATA_TOKENIZER_H
#define HUG_DATA_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/buf.h"
#include "../base/error.h"

struct tokenizer;
struct tok_encoder;

/* A growable array of token ids; start from { 0 } and free with
 * tok_ids_free. Encoding appends. */
struct tok_ids {
	int32_t *v;
	int64_t n, cap;
};

/* "sha256:" + 64 hex digits + NUL. */
#define TOKENIZER_HASH_LEN 72

/* Loads the tokenizer.json at `path` (or, when `path` is a directory such
 * as a model directory, the tokenizer.json in it) into a new *tok. Returns 0, or -1 with
 * err naming the file, the JSON path and what was expected (malformed JSON
 * gives FILE:LINE:COLUMN). Free with tokenizer_free. */
int tokenizer_load(const char *path, struct tokenizer **tok, struct hug_error *err);

/* As tokenizer_load, from the JSON text json[0..len); `name` is used in
 * error messages in place of a file name. */
int tokenizer_load_json(const char *json, size_t len, const char *name,
			struct tokenizer **tok, struct hug_error *err);

/* Frees a tokenizer (NULL is a no-op). */
void tokenizer_free(struct tokenizer *tok);

/* Encodes text[0..len) (any bytes; invalid UTF-8 is kept byte for byte) and
 * appends the ids to *out; returns the number appended. Same ids as HF's
 * encode(text, add_special_tokens=False). Thread-safe; for speed in a loop
 * use a tok_encoder, which caches words. */
int64_t tokenizer_encode(const struct tokenizer *tok, const char *text, size_t len,
			 struct tok_ids *out);

/* As tokenizer_encode, with the post-processor's special tokens around the
 * text when add_special (HF's add_special_tokens=True: TemplateProcessing's
 * "single" template; nothing for other post-processors). */
int64_t tokenizer_encode_special(const struct tokenizer *tok, const char *text, size_t len,
				 bool add_special, struct tok_ids *out);

/* The ids TemplateProcessing puts before and after a single text (n 0
 * when there are none). Point into tok. */
void tokenizer_template(const struct tokenizer *tok, const int32_t **pre, int *n_pre,
			const int32_t **post, int *n_post);

/* Decodes ids[0..n) into *out (replacing its contents) through the
 * tokenizer's decoder, as HF's decode does (tokens joined with spaces when
 * there is no decoder), invalid UTF-8 written as U+FFFD the way the
 * library writes it (so decode(encode(x)) == x for valid UTF-8 x and a
 * byte-level tokenizer without add_prefix_space). Added tokens marked
 * special are left out when skip_special. Returns 0, or -1 with err naming
 * the first id outside the vocabulary. */
int tokenizer_decode(const struct tokenizer *tok, const int32_t *ids, int64_t n,
		     bool skip_special, struct buf *out, struct hug_error *err);

/* Number of ids: one more than the largest id in the vocabulary or the
 * added tokens. */
int64_t tokenizer_vocab_size(const struct tokenizer *tok);

/* Returns the id of the token whose text is `s` (an added token first, then
 * the vocabulary), or -1. */
int32_t tokenizer_token_id(const struct tokenizer *tok, const char *s);

/* The end-of-document id: the added token "</s>", else "<|endoftext|>",
 * else "<eos>", else "<|end_of_text|>"; -1 when there is none. */
int32_t tokenizer_eos_id(const struct tokenizer *tok);

/* Number of merges. */
int64_t tokenizer_n_merges(const struct tokenizer *tok);

/* A stable identifier of the vocabulary, the merges and the added tokens:
 * "sha256:<64 hex digits>" over a canonical serialisation (so reordering
 * keys or reformatting the JSON does not change it). Points into tok. */
const char *tokenizer_hash(const struct tokenizer *tok);

/* A word-caching encoder for one thread. Free with tok_encoder_free. */
struct tok_encoder *tok_encoder_new(const struct tokenizer *tok);
void tok_encoder_free(struct tok_encoder *enc);

/* As tokenizer_encode, through the encoder's cache and scratch space. */
int64_t tok_encoder_encode(struct tok_encoder *enc, const char *text, size_t len,
			   struct tok_ids *out);

/* As tokenizer_encode_special, through the encoder. */
int64_t tok_encoder_encode_special(struct tok_encoder *enc, const char *text, size_t len,
				   bool add_special, struct tok_ids *out);

/* Appends one id to *ids, growing it. */
void tok_ids_push(struct tok_ids *ids, int32_t id);
void tok_ids_free(struct tok_ids *ids);

/* Which pre-tokenizer a trained tokenizer gets. */
enum tok_pretok_kind {
	TOK_PRETOK_GPT2,   /* ByteLevel with the GPT-2 regex */
	TOK_PRETOK_BLOOM,  /* Split with BLOOM's regex, then ByteLevel without */
};

struct tok_train_opts {
	int64_t vocab_size;       /* total, special and byte tokens included */
	int64_t min_frequency;    /* stop when the best pair is rarer (0: never) */
	const char *const *special; /* special tokens, ids 0..n_special-1 */
	int n_special;
	enum tok_pretok_kind pretok;
	bool verbose;             /* progress lines on stderr */
};

/* Trains a byte-level BPE tokenizer on the text files files[0..n_files)
 * and writes it as tokenizer.json to out_path (written to a temporary name,
 * then renamed). Each line of the input (with its newline) is
 * pre-tokenized on its own, as HF's Tokenizer.train(files) does; ids are
 * the special tokens, then the 256 bytes in GPT-2 order, then one per
 * merge; the next merge is the most frequent pair, ties going to the
 * smallest (left id, right id), which is HF BpeTrainer's order. Returns 0,
 * or -1 with err (unreadable file, bad options). */
int tokenizer_train(const char *const *files, int n_files, const struct tok_train_opts *o,
		    const char *out_path, struct hug_error *err);

#endif
