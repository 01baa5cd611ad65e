/* lora_internal.h: helpers shared by the files of peft/, not part of its
 * interface. */
#ifndef HUG_PEFT_LORA_INTERNAL_H
#define HUG_PEFT_LORA_INTERNAL_H

#include <regex.h>
#include <stddef.h>

#include "../nn/model.h"

/* Compiles `pattern` (POSIX extended) to match whole strings only, as
 * Python's re.fullmatch does; 0 or regcomp's error code (re then unset).
 * Patterns over 4096 bytes (REG_ESPACE) and stacked repetition operators
 * such as "a++" (REG_BADRPT) are refused: glibc's regcomp can take
 * gigabytes for them. */
int lora_regex_compile(const char *pattern, regex_t *re);

#endif
