/* tokenizer_impl.h: the inside of struct tokenizer, shared by the
 * data/tokenizer_*.c files only (not part of the public API). */
#ifndef HUG_DATA_TOKENIZER_IMPL_H
#define HUG_DATA_TOKENIZER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

struct tok_added {
	char *content;
	size_t len;
	int32_t id;
	bool special, lstrip, rstrip, normalized;
};

enum tok_step_kind {
	STEP_SPLIT_BLOOM,  /* Split, BLOOM's regex, Isolated */
	STEP_SPLIT_GPT2,   /* Split, the GPT-2 regex, Isolated */
	STEP_BYTELEVEL,    /* ByteLevel: always the last step */
};

struct tok_step {
	enum tok_step_kind kind;
	bool add_prefix_space; /* ByteLevel */
	bool use_regex;        /* ByteLevel: split with the GPT-2 regex */
};

#define TOK_MAX_STEPS 8

struct tokenizer {
	int64_t vocab_size;     /* max id + 1 */
	char **text;            /* (vocab_size) token text as in the JSON, or NULL */
	char **bytes;           /* (vocab_size) what decode writes for the id */
	uint32_t *bytes_len;    /* (vocab_size) */
	uint8_t *special;       /* (vocab_size) 1 for added tokens marked special */
	struct tok_strmap text_map;   /* vocabulary text -> id */
	struct tok_strmap bytes_map;  /* vocabulary bytes -> id (ignore_merges) */
	struct tok_pairmap merges;
	int64_t n_merges;
	int32_t byte_id[256];   /* id of each single-byte token, or -1 */
	int32_t unk_id;         /* -1: none */
	bool fuse_unk, ignore_merges;
	struct tok_added *added;
	int n_added;
	uint8_t added_first[256]; /* bit 0: an added token (pass 0) starts with
				   * this byte; bit 1: one of pass 1 does */
	struct tok_step steps[TOK_MAX_STEPS];
	int n_steps;
	int32_t eos_id;
	char hash[TOKENIZER_HASH_LEN];
};

/* --- loading (tokenizer_load.c, tokenizer_pipeline.c) --- */

struct cJSON;

/* Reads pre_tokenizer, decoder and post_processor of the tokenizer.json
 * `root` into t->steps (refusing what hug does not implement); 0 or -1
 * with err naming `name` and the JSON path. */
int tok_load_pipeline(const struct cJSON *root, const char *name, struct tokenizer *t,
		      struct hug_error *err);

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

/* --- BPE (tokenizer_bpe.c) --- */

/* Merges the byte ids of one word with the heap algorithm (any length) or
 * the rank-scan one; both give HF's result. ids[0..n) in, result written
 * back; returns the new count. Exposed so tests can compare the two. */
int tok_bpe_heap(const struct tokenizer *tok, int32_t *ids, int n);
int tok_bpe_scan(const struct tokenizer *tok, int32_t *ids, int n);

/* Computes tok->hash from the vocabulary, merges and added tokens;
 * `merge_pairs` holds (a, b) for each merge in rank order. */
void tok_compute_hash(struct tokenizer *tok, const int32_t *merge_pairs);

#endif
