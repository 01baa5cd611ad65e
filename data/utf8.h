/* utf8.h: UTF-8 decoding and the Unicode character classes that the
 * tokenizer's pre-tokenizers need (letter, number, whitespace, other).
 * Invalid UTF-8 is never an error here: each byte of a malformed sequence
 * decodes on its own as UTF8_INVALID, class "other". */
#ifndef HUG_DATA_UTF8_H
#define HUG_DATA_UTF8_H

#include <stddef.h>
#include <stdint.h>

#include "../base/buf.h"

/* The code point reported for a byte that does not start a well-formed
 * sequence (overlong forms, surrogates and values above U+10FFFF count as
 * malformed). */
#define UTF8_INVALID 0xFFFFFFFFu

enum utf8_class {
	UC_O = 0,  /* other: punctuation, symbols, marks, invalid bytes */
	UC_L = 1,  /* \p{L} */
	UC_N = 2,  /* \p{N} */
	UC_S = 3,  /* \s: the White_Space property */
};

struct utf8_range {
	uint32_t lo, hi;   /* inclusive */
	uint8_t cls;       /* enum utf8_class */
};

/* Generated tables (data/tokenizer_unicode.c). */
extern const struct utf8_range utf8_ranges[];
extern const int utf8_n_ranges;
extern const char utf8_unicode_version[];

/* Decodes the character at s[0..n) (n >= 1): returns its length in bytes
 * (1..4) and stores the code point in *cp, or returns 1 with *cp =
 * UTF8_INVALID when s[0] does not start a well-formed sequence. */
int utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);

/* Returns the offset of the first byte in s[0..n) that is not part of a
 * well-formed UTF-8 sequence, or -1 when all of it is valid. */
int64_t utf8_find_invalid(const uint8_t *s, size_t n);

/* The length of the maximal subpart of an ill-formed sequence at s[0..n)
 * (s[0] does not start a well-formed character): the lead byte and the
 * continuation bytes that could still begin a well-formed character
 * (Unicode's "substitution of maximal subparts", which Rust's
 * String::from_utf8_lossy and so the tokenizers library follow). 1..3. */
int utf8_invalid_len(const uint8_t *s, size_t n);

/* Appends s[0..n) to *out with each maximal ill-formed subpart replaced by
 * U+FFFD: String::from_utf8_lossy's result. */
void utf8_append_lossy(struct buf *out, const uint8_t *s, size_t n);

/* Builds the class lookup table; thread-safe, cheap after the first call.
 * Must run before utf8_class (tokenizer_load calls it). */
void utf8_init(void);

/* Returns the class of code point cp (UTF8_INVALID gives UC_O). */
enum utf8_class utf8_class(uint32_t cp);

/* Decodes the character at s[0..n) like utf8_decode, storing its class in
 * *cls; returns its length. ASCII takes a fast path. */
int utf8_next_class(const uint8_t *s, size_t n, enum utf8_class *cls);

#endif
