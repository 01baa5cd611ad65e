/* lora_internal.h: helpers shared by the files of peft/, not part of its
 * interface. */
#ifndef HUG_PEFT_LORA_INTERNAL_H
#define HUG_PEFT_LORA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "../nn/model.h"

struct lora_regex;

/* Compiles a string target_modules as PEFT reads it: a Python regular
 * expression (Oniguruma's Python syntax), matched with re.fullmatch
 * semantics (lora_target.c). NULL with the reason in msg (msg_cap bytes)
 * when Python would not compile it: bad syntax, a repetition of a
 * repetition ("a**"; "a*?" and "a*+" are lazy and possessive), or over
 * 4096 bytes. Free with lora_regex_free. */
struct lora_regex *lora_regex_new(const char *pattern, char *msg, size_t msg_cap);
void lora_regex_free(struct lora_regex *re);

/* Whether the whole of s matches (re.fullmatch). */
bool lora_regex_full_match(const struct lora_regex *re, const char *s);

#endif
