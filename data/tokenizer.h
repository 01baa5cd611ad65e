/* tokenizer.h: byte-level BPE tokenizers in Hugging Face's tokenizer.json
 * format (GPT-2, BLOOM and the like): loading, encoding, decoding, and
 * training new ones.
 *
 * Supported tokenizer.json: model.type "BPE" (vocab; merges as "a b" or
 * ["a", "b"]; ignore_merges; unk_token/fuse_unk), added_tokens (matched in
 * the raw text before pre-tokenization, leftmost-longest, as HF does;
 * lstrip/rstrip honoured), normalizer null, pre_tokenizer ByteLevel (GPT-2
 * regex or none, add_prefix_space) or a Sequence of Split steps with the
 * BLOOM or the GPT-2 regex (behavior Isolated) ending in ByteLevel,
 * decoder ByteLevel or null, post_processor null, ByteLevel,
 * TemplateProcessing or a Sequence of them (accepted; encode never adds
 * template tokens, like HF's add_special_tokens=False). truncation and
 * padding are ignored: hug always encodes whole texts. Anything else is
 * refused with a message naming the feature and its JSON path.
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

/* Loads the tokenizer.json at `path` into a new *tok. Returns 0, or -1 with
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

/* Decodes ids[0..n) into *out (replacing its contents): the ByteLevel
 * decoder, byte for byte, without replacing invalid UTF-8, so
 * decode(encode(x)) == x for a tokenizer without add_prefix_space. Added
 * tokens marked special are left out when skip_special. Returns 0, or -1
 * with err naming the first id outside the vocabulary. */
int tokenizer_decode(const struct tokenizer *tok, const int32_t *ids, int64_t n,
		     bool skip_special, struct buf *out, struct hug_error *err);

/* Number of ids: one more than the largest id in the vocabulary or the
 * added tokens. */
int64_t tokenizer_vocab_size(const struct tokenizer *tok);

/* Returns the id of the token whose text is `s` (an added token first, then
 * the vocabulary), or -1. */
int32_t tokenizer_token_id(const struct tokenizer *tok, const char *s);

/* The end-of-document id: the added token "</s>", else "<|endoftext|>",
 * else "<eos>"; -1 when there is none. */
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
