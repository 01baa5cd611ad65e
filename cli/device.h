/* device.h: the --device flag of the inference commands (hug eval, hug
 * generate): "cpu", "cuda" (GPU 0) or "cuda:N". */
#ifndef HUG_CLI_DEVICE_H
#define HUG_CLI_DEVICE_H

#include "../base/error.h"
#include "../nn/model.h"

/* Moves host model *m to the device named by `spec` (NULL or "cpu": stays
 * on the host), starting the CUDA backend on that GPU. 0, or -1 with err
 * (an unknown spec, no CUDA in this build, no such GPU); *m is unchanged
 * on error. */
int cli_model_to_device(struct model *m, const char *spec, struct hug_error *err);

#endif
