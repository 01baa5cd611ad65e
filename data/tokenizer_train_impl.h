/* tokenizer_train_impl.h: the trainer's state, shared by
 * tokenizer_train.c (counting and merging) and tokenizer_train_state.c
 * (its tables, heap and the tokenizer.json writer). Private to data/. */
#ifndef HUG_DATA_TOKENIZER_TRAIN_IMPL_H
#define HUG_DATA_TOKENIZER_TRAIN_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer_impl.h"

struct tt_word {
	uint64_t hash;
	size_t off;          /* bytes in tt_words.pool */
	uint32_t len;
	uint32_t n_syms;     /* current symbols, at tt_state.syms + sym_off */
	size_t sym_off;
	int64_t count;       /* occurrences in the corpus */
	uint32_t stamp;      /* merge step that last visited the word */
};

struct tt_words {
	uint32_t *slots;     /* (cap) word index + 1, 0: empty */
	size_t cap;
	struct tt_word *w;
	size_t n, w_cap;
	uint8_t *pool;
	size_t pool_n, pool_cap;
};

struct tt_token {
	char *text;          /* byte-level text, as in tokenizer.json */
	size_t len;
};

struct tt_pair {
	int32_t a, b;
	int64_t count;
	uint32_t *words;     /* words that held the pair (may repeat or be stale) */
	uint32_t n_words, cap;
	uint32_t fresh;      /* merge step that queued it in tt_state.fresh */
};

struct tt_heap_ent {
	int64_t count;
	int32_t a, b;
};

struct tt_state {
	struct tt_words W;
	int32_t *syms;                 /* symbols of all words */
	size_t n_syms;
	struct tt_token *tok;          /* (n_tok) */
	size_t n_tok, tok_cap;
	struct tok_strmap by_text;     /* token text -> id */
	int32_t byte_tok[256];
	struct tt_pair *pairs;
	size_t n_pairs, pairs_cap;
	struct tok_pairmap pair_ix;    /* (a, b) -> index in pairs (as .id) */
	struct tt_heap_ent *heap;
	size_t n_heap, heap_cap;
	uint32_t *fresh;               /* pairs that gained count this step */
	size_t n_fresh, fresh_cap;
	int32_t *merges;               /* (a, b) per merge */
	int64_t n_merges, merges_cap;
	uint32_t stamp;
};

void tt_state_init(struct tt_state *S);
void tt_state_free(struct tt_state *S);

/* Doubles the word table. */
void tt_words_grow(struct tt_words *W);
/* Appends word s[0..n) with count 1; returns its index + 1. */
uint32_t tt_words_add(struct tt_words *W, const uint8_t *s, size_t n, uint64_t h);

/* Special tokens (ids 0..) then the 256 byte tokens in GPT-2 order; -1
 * with err on a bad option (duplicate special, vocab_size too small). */
int tt_add_base_tokens(struct tt_state *S, const struct tok_train_opts *o,
		       struct hug_error *err);
/* Appends a token whose text (hug_malloc'd, taken over) is s[0..n). */
int32_t tt_token_add(struct tt_state *S, char *s, size_t n);

/* Splits every word into byte tokens, counts the pairs, fills the heap. */
void tt_init_pairs(struct tt_state *S);
/* Adds `delta` to the count of pair (a, b) (creating it); a positive delta
 * records word wi in the pair's list and queues the pair in fresh. */
void tt_pair_add(struct tt_state *S, int32_t a, int32_t b, int64_t delta, uint32_t wi);
struct tt_pair *tt_pair_get(struct tt_state *S, int32_t a, int32_t b);
/* Frees the word list of a merged pair. */
void tt_pair_release(struct tt_state *S, uint32_t pi);
/* Pushes every fresh pair with a positive count onto the heap. */
void tt_push_new_pairs(struct tt_state *S);
void tt_merge_record(struct tt_state *S, int32_t a, int32_t b);

void tt_heap_push(struct tt_state *S, struct tt_heap_ent e);
bool tt_heap_pop(struct tt_state *S, struct tt_heap_ent *out);

/* Writes the trained tokenizer as tokenizer.json (to a temporary file,
 * then renamed to path); 0 or -1 with err. */
int tt_write_json(const struct tt_state *S, const struct tok_train_opts *o,
		  const char *path, struct hug_error *err);

#endif
