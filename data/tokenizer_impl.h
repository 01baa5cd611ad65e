/* tokenizer_impl.h: the inside of struct tokenizer, shared by the
 * data/tokenizer_*.c files only (not part of the public API). */
#ifndef HUG_DATA_TOKENIZER_IMPL_H
#define HUG_DATA_TOKENIZER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/buf.h"
#include "tokenizer.h"

/* --- hash tables (tokenizer_table.c) --- */

/* 64-bit hash of n bytes. */
uint64_t tok_hash_bytes(const void *p, size_t n);

/* Byte string -> int32; keys are borrowed (they must outlive the map). */
struct tok_strmap {
	struct tok_strmap_slot {
		const char *key;   /* NULL: empty */
		uint32_t len;
		int32_t val;
		uint64_t hash;
	} *slots;
	size_t cap, n;         /* cap a power of two */
};

/* Inserts or replaces key -> val. */
void tok_strmap_put(struct tok_strmap *m, const char *key, size_t len, int32_t val);
/* Returns the value for key, or -1. */
int32_t tok_strmap_get(const struct tok_strmap *m, const char *key, size_t len);
void tok_strmap_free(struct tok_strmap *m);

/* (left id, right id) -> (rank, merged id). */
struct tok_pairmap {
	struct tok_pair_slot {
		uint64_t key;      /* UINT64_MAX: empty */
		int32_t rank, id;
	} *slots;
	size_t cap, n;
};

static inline uint64_t tok_pair_key(int32_t a, int32_t b)
{
	return (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
}

/* Inserts or replaces key -> (rank, id); returns false if key was present
 * (a repeated merge keeps its last rank, as HF's merge map does). */
bool tok_pairmap_put(struct tok_pairmap *m, uint64_t key, int32_t rank, int32_t id);
/* Returns the slot for key or NULL. */
const struct tok_pair_slot *tok_pairmap_get(const struct tok_pairmap *m, uint64_t key);
void tok_pairmap_free(struct tok_pairmap *m);

/* --- the ByteLevel alphabet (tokenizer_table.c) --- */

/* GPT-2's bytes_to_unicode: the code point that stands for byte b. */
uint32_t tok_byte_to_cp(uint8_t b);
/* The byte that code point cp stands for, or -1. */
int tok_cp_to_byte(uint32_t cp);
/* Writes the UTF-8 form of byte b's stand-in to out (2 bytes at most);
 * returns its length. */
int tok_byte_utf8(uint8_t b, char out[4]);

/* --- the tokenizer --- */

/* --- regular expressions (tokenizer_regex.c, Oniguruma) --- */

struct tok_regex {
	void *re;               /* Oniguruma's regex_t */
	char *source;           /* the pattern as written in the JSON */
	bool literal;           /* a String pattern (escaped before compiling) */
};

/* Match spans: v[2i], v[2i+1] are the start and end offsets of match i. */
struct tok_matches {
	size_t *v;
	size_t n, cap;
};

/* Compiles pattern[0..n) (a literal string when `literal`); NULL with
 * Oniguruma's message in msg on a bad pattern. Free with tok_regex_free.
 * A compiled regex may be searched by any number of threads at once. */
struct tok_regex *tok_regex_new(const char *pattern, size_t n, bool literal, char *msg,
				size_t msg_cap);
void tok_regex_free(struct tok_regex *x);

/* Replaces *m with the matches of x in s[0..n), as tokenizers' find_iter
 * enumerates them (empty matches included, except one right after the
 * previous match). */
void tok_regex_find(const struct tok_regex *x, const uint8_t *s, size_t n,
		    struct tok_matches *m);
void tok_matches_free(struct tok_matches *m);

/* --- the tokenizer --- */

struct tok_added {
	char *content;
	size_t len;
	char *match;            /* what is searched for: content, normalized when
				 * `normalized` and there is a normalizer */
	size_t match_len;
	int32_t id;
	bool special, lstrip, rstrip, normalized, single_word;
};

enum tok_step_kind {
	STEP_SPLIT,        /* Split by a regex (Digits, Punctuation, Whitespace,
			    * WhitespaceSplit become one too) */
	STEP_SPLIT_BLOOM,  /* Split, BLOOM's regex, Isolated: matched by hand */
	STEP_SPLIT_GPT2,   /* Split, the GPT-2 regex, Isolated: matched by hand */
	STEP_METASPACE,    /* Metaspace */
	STEP_BYTELEVEL,    /* ByteLevel: always the last step */
};

/* SplitDelimiterBehavior. */
enum tok_split_behavior {
	SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS,
};

enum tok_prepend { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };

struct tok_step {
	enum tok_step_kind kind;
	bool add_prefix_space; /* ByteLevel */
	bool use_regex;        /* ByteLevel: split with the GPT-2 regex */
	struct tok_regex *re;  /* Split (owned) */
	enum tok_split_behavior behavior;
	bool invert;
	char repl[8];          /* Metaspace: the replacement character (UTF-8) */
	int repl_len;
	enum tok_prepend prepend;
	bool split;            /* Metaspace: split on the replacement */
};

enum tok_norm_kind {
	NORM_NFC, NORM_NFD, NORM_NFKC, NORM_NFKD, NORM_LOWERCASE, NORM_REPLACE, NORM_PREPEND,
	NORM_STRIP,
};

struct tok_norm {
	enum tok_norm_kind kind;
	struct tok_regex *re;  /* Replace (owned) */
	char *content;         /* Replace: the replacement; Prepend: the prefix */
	size_t content_len;
	bool left, right;      /* Strip */
};

enum tok_dec_kind {
	DEC_BYTELEVEL, DEC_METASPACE, DEC_BYTEFALLBACK, DEC_FUSE, DEC_STRIP, DEC_REPLACE,
};

struct tok_dec {
	enum tok_dec_kind kind;
	struct tok_regex *re;  /* Replace (owned) */
	char *content;         /* Replace: the replacement */
	size_t content_len;
	char repl[8];          /* Metaspace: the replacement; Strip: the content */
	int repl_len;
	bool prepend;          /* Metaspace: prepend_scheme is not "never" */
	int start, stop;       /* Strip */
};

#define TOK_MAX_STEPS 16

struct tokenizer {
	int64_t vocab_size;     /* max id + 1 */
	char **text;            /* (vocab_size) token text as in the JSON, or NULL */
	char **bytes;           /* (vocab_size) what the ByteLevel decoder writes */
	uint32_t *bytes_len;    /* (vocab_size) */
	uint8_t *special;       /* (vocab_size) 1 for added tokens marked special */
	struct tok_strmap text_map;   /* vocabulary text -> id */
	struct tok_strmap bytes_map;  /* vocabulary bytes -> id (ignore_merges) */
	struct tok_pairmap merges;
	int64_t n_merges;
	int32_t byte_id[256];   /* id of each single-byte token, or -1 */
	int32_t fallback_id[256]; /* id of "<0xNN>" when byte_fallback, or -1 */
	int32_t unk_id;         /* -1: none */
	bool fuse_unk, ignore_merges, byte_fallback;
	bool byte_level;        /* the pre-tokenizer ends in ByteLevel: words are
				 * bytes; else words are characters */
	struct tok_added *added;
	int n_added;
	uint8_t added_first[256]; /* bit 0: an added token (pass 0) starts with
				   * this byte; bit 1: one of pass 1 does */
	struct tok_norm norms[TOK_MAX_STEPS];
	int n_norms;
	struct tok_step steps[TOK_MAX_STEPS];
	int n_steps;
	struct tok_dec decs[TOK_MAX_STEPS];
	int n_decs;
	bool has_decoder;       /* false: decode joins token texts with " " */
	int32_t *tmpl_pre, *tmpl_post; /* TemplateProcessing "single": ids
					* before and after the text */
	int n_tmpl_pre, n_tmpl_post;
	int32_t eos_id;
	char hash[TOKENIZER_HASH_LEN];
};

/* --- loading (tokenizer_load.c, tokenizer_pipeline.c, tokenizer_parts.c) --- */

struct cJSON;

/* Where loading reports errors. */
struct tok_pipe {
	const char *name;       /* file name for messages */
	struct hug_error *err;
	struct tokenizer *t;
};

/* Reads pre_tokenizer and post_processor of the tokenizer.json `root`
 * into t (refusing what hug does not implement); 0 or -1 with err naming
 * `name` and the JSON path. Needs the vocabulary loaded (template ids). */
int tok_load_pipeline(const struct cJSON *root, const char *name, struct tokenizer *t,
		      struct hug_error *err);

/* Reads normalizer (into t->norms) and decoder (into t->decs); 0 or -1. */
int tok_load_normalizer(struct tok_pipe *P, const struct cJSON *root);
int tok_load_decoder(struct tok_pipe *P, const struct cJSON *root);

/* A pattern object {"String": s} or {"Regex": r} at `path`, compiled;
 * NULL with P->err set. */
struct tok_regex *tok_load_pattern(struct tok_pipe *P, const struct cJSON *obj,
				   const char *path);

/* Room for an Oniguruma error message. */
#define ONIG_MSG_CAP 256

/* Metaspace's options at `path` (pre-tokenizer or decoder): replacement
 * (default U+2581), prepend_scheme (or the older add_prefix_space), split
 * (default true). 0 or -1. */
int tok_metaspace_options(struct tok_pipe *P, const struct cJSON *o, const char *path,
			  char repl[8], int *repl_len, enum tok_prepend *prepend, bool *split);

/* Frees what the pipeline parts own. */
void tok_free_pipeline(struct tokenizer *t);

/* --- normalizing (tokenizer_normalize.c) --- */

/* Writes t's normalizer applied to s[0..n) to *out (replacing its
 * contents); *tmp is scratch. Invalid UTF-8 bytes pass through unchanged. */
void tok_normalize(const struct tokenizer *t, const uint8_t *s, size_t n, struct buf *out,
		   struct buf *tmp);

/* Whether the character at s[0..n) is White_Space; its length in *len. */
bool tok_is_space(const uint8_t *s, size_t n, int *len);

/* Whether non-ASCII code point cp is a word character of \w (a letter,
 * mark, decimal digit, letter number or connector punctuation). */
bool tok_is_word_cp(uint32_t cp);

/* BLOOM's Split regex, as written in tokenizer.json. */
const char *tok_bloom_regex(void);

/* --- pre-tokenization (tokenizer_pretok.c) --- */

/* Length of the GPT-2 regex match at the start of s[0..n), n > 0. */
size_t tok_gpt2_piece(const uint8_t *s, size_t n);

/* Calls fn(p, len, ctx) for each GPT-2 regex match of s[0..n), in order
 * (they cover s). */
void tok_gpt2_pieces(const uint8_t *s, size_t n,
		     void (*fn)(const uint8_t *p, size_t len, void *ctx), void *ctx);

/* Calls fn(s + off, len, ctx) for each piece of BLOOM's Split (Isolated):
 * the matches of ` ?[^(\s|[.,!?…。，、।۔،])]+` and the stretches between. */
void tok_bloom_pieces(const uint8_t *s, size_t n,
		      void (*fn)(const uint8_t *p, size_t len, void *ctx), void *ctx);

/* Turns the matches m of a Split pattern in a piece of n bytes into the
 * pieces Split keeps under behavior b (invert: the spans between matches
 * count as the matches), as tokenizers does; writes their (start, end)
 * pairs to *out, empty ones left out. */
void tok_split_ranges(const struct tok_matches *m, size_t n, enum tok_split_behavior b,
		      bool invert, struct tok_matches *out);

/* --- BPE (tokenizer_bpe.c) --- */

/* Merges the symbol ids of one word with the heap algorithm (any length) or
 * the rank-scan one; both give HF's result. ids[0..n) in, result written
 * back; returns the new count. Exposed so tests can compare the two. */
int tok_bpe_heap(const struct tokenizer *tok, int32_t *ids, int n);
int tok_bpe_scan(const struct tokenizer *tok, int32_t *ids, int n);

/* Computes tok->hash from the vocabulary, merges and added tokens;
 * `merge_pairs` holds (a, b) for each merge in rank order. */
void tok_compute_hash(struct tokenizer *tok, const int32_t *merge_pairs);

#endif
