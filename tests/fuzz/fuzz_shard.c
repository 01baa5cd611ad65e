/* fuzz_shard.c: libFuzzer harness for the HDF5 token-shard reader
 * (data/shard_h5.c, data/shard_read.c): the input is the .h5 file; a
 * shard that opens reads its first and last tokens and document offsets.
 * The reader checks each file in a forked child first (a file that hangs
 * libhdf5 is killed at HUG_SHARD_CHECK_SECONDS); the harness shortens that
 * bound to 0.25 s, since valid inputs check in milliseconds and a 10 s
 * bound made every hanging mutant cost 10 s (about one exec a second). */
#include "../../data/shard.h"
#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("HUG_SHARD_CHECK_SECONDS", "0.25", 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shard_reader *r = NULL;
	struct hug_error err = {0};
	if (shard_reader_open(fuzz_file(data, size), &r, &err) != 0)
		return 0;
	int64_t n = shard_reader_tokens(r), docs = shard_reader_docs(r);
	int32_t tokens[64];
	uint8_t mask[64];
	int64_t k = n < 64 ? n : 64;
	(void)shard_reader_read(r, 0, k, tokens, mask, &err);
	(void)shard_reader_read(r, n - k, k, tokens, mask, &err);
	int64_t offs[16];
	int64_t m = docs + 1 < 16 ? docs + 1 : 16;
	(void)shard_reader_doc_offsets(r, 0, m, offs, &err);
	shard_reader_close(r);
	return 0;
}
