/* lora.h: a LoRA adapter on one linear layer. The adapter struct and its
 * forward (lora_apply) live with the linear layer in nn/linear.h, so that
 * models apply adapters without knowing peft/; peft/ allocates, targets,
 * merges and saves them. */
#ifndef HUG_PEFT_LORA_H
#define HUG_PEFT_LORA_H

#include "../nn/linear.h"

#endif
