#!/usr/bin/env python3
"""check_shards.py: reads hug token shards with h5py and checks them against
docs/shard-format.md (format v1), independently of hug's C reader.

    python3 tools/ref/check_shards.py SHARD.h5 [...]
    HUG_SHARD_OUT=/tmp/hugshard build/bin/hug_tests shard_write_for_python
    python3 tools/ref/check_shards.py --hug-test /tmp/hugshard-u16.h5 \
        /tmp/hugshard-i32.h5
    python3 tools/ref/check_shards.py --make-fixture   # tests/fixtures/shard_h5py.h5

For every file: the root attributes (format "hug-shard", format_version 1,
vocab_size, eos_id, tokenizer_hash, source, n_tokens, n_docs) and their
kinds; `tokens` 1-D uint16 when vocab_size <= 65536 else int32, ids below
vocab_size; `doc_offsets` int64 with n_docs + 1 entries, 0 first,
non-decreasing, n_tokens last; `loss_mask` (optional) uint8 of n_tokens
bytes, each 0 or 1. With --hug-test it also checks the contents that the C
test shard_write_for_python writes: token i = (i * 7919) % vocab_size,
documents of 1000 tokens, mask i % 4 != 0.

--make-fixture writes tests/fixtures/shard_h5py.h5 with h5py's own
defaults (variable-length str attributes, Python ints as int64, contiguous
tokens, a gzip-compressed chunked loss_mask) for the C test
shard_reads_h5py_fixture: vocab 50257, 1000 tokens (i * 37) % 50257,
documents [0, 100, 350, 351, 1000], mask i % 5 != 0.

Prints OK per file or what is wrong; exit status 0 when all are OK.
"""
import os
import sys

import h5py
import numpy as np


def fail(path, msg):
    raise ValueError(f"{path}: {msg}")


def attr_str(f, path, name):
    if name not in f.attrs:
        fail(path, f"attribute {name} is missing")
    v = f.attrs[name]
    if isinstance(v, bytes):
        v = v.decode("utf-8")
    if not isinstance(v, str):
        fail(path, f"attribute {name}: expected a string, found {type(v)}")
    return v


def attr_int(f, path, name):
    if name not in f.attrs:
        fail(path, f"attribute {name} is missing")
    v = f.attrs[name]
    if not np.issubdtype(np.asarray(v).dtype, np.integer) or np.ndim(v):
        fail(path, f"attribute {name}: expected one integer, found {v!r}")
    return int(v)


def check(path, hug_test=False):
    with h5py.File(path, "r") as f:
        if attr_str(f, path, "format") != "hug-shard":
            fail(path, "attribute format is not hug-shard")
        if attr_int(f, path, "format_version") != 1:
            fail(path, "format_version is not 1")
        vocab = attr_int(f, path, "vocab_size")
        eos = attr_int(f, path, "eos_id")
        attr_str(f, path, "tokenizer_hash")
        attr_str(f, path, "source")
        n_tokens = attr_int(f, path, "n_tokens")
        n_docs = attr_int(f, path, "n_docs")
        if not (1 <= vocab <= 2**31 - 1) or not (-1 <= eos < vocab):
            fail(path, f"vocab_size {vocab} / eos_id {eos} out of range")

        tok = f["tokens"]
        want = np.uint16 if vocab <= 65536 else np.int32
        if tok.ndim != 1 or tok.shape[0] != n_tokens:
            fail(path, f"tokens shape {tok.shape}, n_tokens {n_tokens}")
        if tok.dtype != want:
            fail(path, f"tokens dtype {tok.dtype}, expected {np.dtype(want)}")
        t = tok[...].astype(np.int64)
        if n_tokens and (t.min() < 0 or t.max() >= vocab):
            fail(path, f"token ids span {t.min()} .. {t.max()}, vocab {vocab}")

        off = f["doc_offsets"]
        if off.dtype != np.int64 or off.shape != (n_docs + 1,):
            fail(path, f"doc_offsets {off.dtype} {off.shape}, n_docs {n_docs}")
        o = off[...]
        if o[0] != 0 or o[-1] != n_tokens or np.any(np.diff(o) < 0):
            fail(path, "doc_offsets not 0 .. n_tokens non-decreasing")

        m = None
        if "loss_mask" in f:
            mk = f["loss_mask"]
            if mk.dtype != np.uint8 or mk.shape != (n_tokens,):
                fail(path, f"loss_mask {mk.dtype} {mk.shape}")
            m = mk[...]
            if m.size and m.max() > 1:
                fail(path, "loss_mask holds values other than 0 and 1")

        if hug_test:
            i = np.arange(n_tokens, dtype=np.int64)
            if not np.array_equal(t, (i * 7919) % vocab):
                fail(path, "tokens differ from (i * 7919) % vocab_size")
            if not np.array_equal(o, np.arange(0, n_tokens + 1, 1000)):
                fail(path, "doc_offsets differ from multiples of 1000")
            if m is None or not np.array_equal(m, (i % 4 != 0)):
                fail(path, "loss_mask differs from i % 4 != 0")
            if f["tokens"].chunks is None:
                fail(path, "tokens is not chunked")
        return (f"OK {path}: {n_tokens} tokens ({tok.dtype}), {n_docs} docs, "
                f"vocab {vocab}, mask {'yes' if m is not None else 'no'}, "
                f"tokenizer_hash {attr_str(f, path, 'tokenizer_hash')!r}, "
                f"source {attr_str(f, path, 'source')!r}")


def make_fixture():
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "..", "..", "tests", "fixtures", "shard_h5py.h5")
    i = np.arange(1000, dtype=np.int64)
    with h5py.File(out, "w", track_order=False) as f:
        f.attrs["format"] = "hug-shard"
        f.attrs["format_version"] = 1
        f.attrs["vocab_size"] = 50257
        f.attrs["eos_id"] = 0
        f.attrs["tokenizer_hash"] = "sha256:h5py"
        f.attrs["source"] = "made by h5py"
        f.attrs["n_tokens"] = 1000
        f.attrs["n_docs"] = 4
        f.create_dataset("tokens", data=((i * 37) % 50257).astype(np.uint16),
                         track_times=False)
        f.create_dataset("doc_offsets",
                         data=np.array([0, 100, 350, 351, 1000], np.int64),
                         track_times=False)
        f.create_dataset("loss_mask", data=(i % 5 != 0).astype(np.uint8),
                         chunks=(128,), compression="gzip",
                         track_times=False)
    print(check(out))


def main():
    args = sys.argv[1:]
    if args == ["--make-fixture"]:
        make_fixture()
        return 0
    hug_test = False
    if args and args[0] == "--hug-test":
        hug_test = True
        args = args[1:]
    if not args:
        print(__doc__)
        return 2
    ok = True
    for p in args:
        try:
            print(check(p, hug_test))
        except (ValueError, KeyError, OSError) as e:
            print(f"BAD {p}: {e}")
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
