/* tokenizer_train.c: byte-level BPE training. Words are counted per input
 * line through the pre-tokenizer; then the most frequent adjacent pair is
 * merged, again and again, with pair counts kept exact incrementally: a
 * merge visits only the words that hold the pair (each pair keeps a list of
 * them) and adjusts the counts of the neighbouring pairs. A max-heap with
 * lazily refreshed counts picks the next pair: highest count, then the
 * smallest (left id, right id), the order of HF's BpeTrainer. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"
#include "tokenizer_impl.h"
#include "tokenizer_train_impl.h"
#include "utf8.h"

/* --- word counting --- */

/* Adds one occurrence of word s[0..n) to the table. */
static void count_word(struct tt_words *W, const uint8_t *s, size_t n)
{
	if ((W->n + 1) * 2 > W->cap)
		tt_words_grow(W);
	uint64_t h = tok_hash_bytes(s, n);
	for (size_t i = h & (W->cap - 1);; i = (i + 1) & (W->cap - 1)) {
		uint32_t k = W->slots[i];
		if (!k) {
			W->slots[i] = tt_words_add(W, s, n, h);
			return;
		}
		struct tt_word *w = &W->w[k - 1];
		if (w->hash == h && w->len == n && !memcmp(W->pool + w->off, s, n)) {
			w->count++;
			return;
		}
	}
}

static void count_piece(const uint8_t *p, size_t len, void *W)
{
	count_word(W, p, len);
}

static void count_line(struct tt_words *W, enum tok_pretok_kind kind, const uint8_t *s,
		       size_t n)
{
	if (kind == TOK_PRETOK_BLOOM)
		tok_bloom_pieces(s, n, count_piece, W);
	else
		tok_gpt2_pieces(s, n, count_piece, W);
}

/* Counts the words of every line (newline included) of `path`. */
static int count_file(struct tt_words *W, enum tok_pretok_kind kind, const char *path,
		      bool verbose, struct hug_error *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return hug_error_set(err, "%s: cannot open: %s", path, strerror(errno));
	size_t cap = 1 << 20, have = 0;
	uint8_t *buf = hug_malloc(cap);
	uint64_t total = 0;
	int why = 0;
	for (;;) {
		errno = 0;
		size_t got = fread(buf + have, 1, cap - have, f);
		if (got == 0 && ferror(f)) {
			why = errno ? errno : EIO;
			break;
		}
		have += got;
		size_t start = 0;
		for (;;) {
			uint8_t *nl = memchr(buf + start, '\n', have - start);
			if (!nl)
				break;
			size_t end = (size_t)(nl - buf) + 1;
			count_line(W, kind, buf + start, end - start);
			start = end;
		}
		total += start;
		memmove(buf, buf + start, have - start);
		have -= start;
		if (got == 0)
			break;
		if (have == cap)
			buf = hug_realloc(buf, cap *= 2);
	}
	if (have)
		count_line(W, kind, buf, have);
	total += have;
	fclose(f);
	hug_free(buf);
	if (why)
		return hug_error_set(err, "%s: cannot read: %s", path, strerror(why));
	if (verbose)
		fprintf(stderr, "hug tokenizer train: %s: %.2f MB, %zu distinct words so far\n",
			path, (double)total / 1e6, W->n);
	return 0;
}

/* --- merging --- */

/* Applies merge (a, b) -> t to word w, keeping the pair counts exact. */
static void merge_word(struct tt_state *S, uint32_t wi, int32_t a, int32_t b, int32_t t)
{
	struct tt_word *w = &S->W.w[wi];
	int32_t *s = S->syms + w->sym_off;
	int64_t c = w->count;
	for (uint32_t i = 0; i + 1 < w->n_syms; i++) {
		if (s[i] != a || s[i + 1] != b)
			continue;
		tt_pair_add(S, a, b, -c, wi);
		if (i > 0) {
			tt_pair_add(S, s[i - 1], a, -c, wi);
			tt_pair_add(S, s[i - 1], t, c, wi);
		}
		if (i + 2 < w->n_syms) {
			tt_pair_add(S, b, s[i + 2], -c, wi);
			tt_pair_add(S, t, s[i + 2], c, wi);
		}
		s[i] = t;
		memmove(s + i + 1, s + i + 2, (w->n_syms - i - 2) * sizeof(int32_t));
		w->n_syms--;
	}
}

/* The id of the token a+b: an existing one with that text, or a new one. */
static int32_t merged_token(struct tt_state *S, int32_t a, int32_t b)
{
	struct tt_token *ta = &S->tok[a], *tb = &S->tok[b];
	size_t n = ta->len + tb->len;
	char *s = hug_malloc(n + 1);
	memcpy(s, ta->text, ta->len);
	memcpy(s + ta->len, tb->text, tb->len);
	s[n] = '\0';
	int32_t id = tok_strmap_get(&S->by_text, s, n);
	if (id >= 0) {
		hug_free(s);
		return id;
	}
	return tt_token_add(S, s, n);
}

/* One step: pops the best pair and merges it everywhere. Returns 1 when a
 * merge was made, 0 when training is over. */
static int merge_step(struct tt_state *S, int64_t min_frequency)
{
	for (;;) {
		struct tt_heap_ent top;
		if (!tt_heap_pop(S, &top))
			return 0;
		struct tt_pair *p = tt_pair_get(S, top.a, top.b);
		int64_t cur = p ? p->count : 0;
		if (cur != top.count) {
			if (cur > 0)
				tt_heap_push(S, (struct tt_heap_ent){ cur, top.a, top.b });
			continue;
		}
		if (cur < 1 || cur < min_frequency)
			return 0;
		int32_t t = merged_token(S, top.a, top.b);
		tt_merge_record(S, top.a, top.b);
		S->stamp++;
		/* the word list may grow while we merge (new pairs append) */
		uint32_t pi = (uint32_t)(p - S->pairs), n = p->n_words;
		for (uint32_t k = 0; k < n; k++) {
			uint32_t wi = S->pairs[pi].words[k];
			if (S->W.w[wi].stamp == S->stamp)
				continue;
			S->W.w[wi].stamp = S->stamp;
			merge_word(S, wi, top.a, top.b, t);
		}
		tt_pair_release(S, pi);
		tt_push_new_pairs(S);
		return 1;
	}
}

int tokenizer_train(const char *const *files, int n_files, const struct tok_train_opts *o,
		    const char *out_path, struct hug_error *err)
{
	struct tt_state S;
	int rc = -1;
	utf8_init();
	tt_state_init(&S);
	if (tt_add_base_tokens(&S, o, err))
		goto out;
	for (int i = 0; i < n_files; i++)
		if (count_file(&S.W, o->pretok, files[i], o->verbose, err))
			goto out;
	tt_init_pairs(&S);
	while ((int64_t)S.n_tok < o->vocab_size && merge_step(&S, o->min_frequency)) {
		if (o->verbose && S.n_merges % 1000 == 0)
			fprintf(stderr, "hug tokenizer train: %lld merges, vocab %lld\n",
				(long long)S.n_merges, (long long)S.n_tok);
	}
	rc = tt_write_json(&S, o, out_path, err);
out:
	tt_state_free(&S);
	return rc;
}
