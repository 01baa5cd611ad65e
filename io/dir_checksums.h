/* dir_checksums.h: SHA-256 records of the files in a directory hug wrote
 * (a checkpoint, an adapter), kept as a JSON object
 *   "files": { "model.safetensors": { "sha256": "<64 hex>", "bytes": N }, ... }
 * inside the directory's trainer_state.json, and their verification. */
#ifndef HUG_IO_DIR_CHECKSUMS_H
#define HUG_IO_DIR_CHECKSUMS_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "../base/error.h"

/* The file holding the record, and its key. */
#define DIR_CHECKSUMS_FILE "trainer_state.json"
#define DIR_CHECKSUMS_KEY "files"

/* The record of every regular file directly in `dir` except the one named
 * `skip` (may be NULL) and names ending in ".tmp": a new cJSON object
 * (caller deletes), or NULL with err naming the file that could not be
 * read. Files are read in fixed pieces (memory does not grow with them). */
cJSON *dir_checksums_compute(const char *dir, const char *skip, struct hug_error *err);

/* Checks every file named in `files` (a record as above, from the file
 * `source`, for messages) against dir: 0, or -1 with err naming the first
 * file that is missing, has another size, or another digest (expected vs
 * got). */
int dir_checksums_verify(const char *dir, const cJSON *files, const char *source,
			 struct hug_error *err);

/* Verifies dir against the record in dir/trainer_state.json when there is
 * one: *verified (may be NULL) tells whether a record was found and
 * checked. A directory without trainer_state.json, or whose
 * trainer_state.json has no record (a Hugging Face directory, a checkpoint
 * written before records existed) passes unverified. A trainer_state.json
 * that is not a JSON object fails. 0 or -1 with err. */
int dir_checksums_check(const char *dir, bool *verified, struct hug_error *err);

#endif
