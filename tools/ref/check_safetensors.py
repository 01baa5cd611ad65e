#!/usr/bin/env python3
"""check_safetensors.py: checks a file written by hug's safetensors writer
against the reference `safetensors` library.

    HUG_ST_OUT=/tmp/hug_written.safetensors \
        build/bin/hug_tests safetensors_write_for_python
    python3 tools/ref/check_safetensors.py /tmp/hug_written.safetensors

The C test (tests/test_safetensors.c, safetensors_write_for_python) writes
the tensors of expected() below, in the order the Python writer uses (dtype
alignment descending, then name), so the file must load with the library,
hold the same values, and be byte-identical to safetensors.torch.save of the
same dict. Prints MATCH or what differs; exit status 0 on a match.
"""
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save


def expected():
    base = torch.arange(6, dtype=torch.float32).reshape(3, 2) * 1.5
    return {
        "a.f64": torch.tensor([[-0.5, -0.25], [0.0, 0.25]], dtype=torch.float64),
        # written from a transposed (non-contiguous) view
        "b.f32": base.t().contiguous(),
        "s.f32": torch.tensor(42.5, dtype=torch.float32),
        "c.i32": torch.tensor([7, -8, 2147483647], dtype=torch.int32),
        # written from f32 with conversion on the way out
        "d.bf16": torch.tensor([1.5, -2.0, 0.1, 3.14159],
                               dtype=torch.float32).to(torch.bfloat16),
        # written from f64: f64 -> f32 -> f16, as hug converts
        "e.f16": torch.tensor([[0.5, -1.0], [1.0 / 3.0, 1000.1]],
                              dtype=torch.float64).float().half(),
    }


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    path = sys.argv[1]
    want = expected()
    problems = []
    got = load_file(path)
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    if meta != {"format": "pt"}:
        problems.append(f"metadata {meta!r}, want {{'format': 'pt'}}")
    if set(got) != set(want):
        problems.append(f"keys {sorted(got)}, want {sorted(want)}")
    for k in sorted(set(got) & set(want)):
        g, w = got[k], want[k]
        if g.dtype != w.dtype or g.shape != w.shape:
            problems.append(f"{k}: {g.dtype} {list(g.shape)}, "
                            f"want {w.dtype} {list(w.shape)}")
        elif not torch.equal(g, w):
            problems.append(f"{k}: values {g.tolist()}, want {w.tolist()}")
    ref = save(want, metadata={"format": "pt"})
    with open(path, "rb") as fh:
        mine = fh.read()
    if mine != ref:
        n = next((i for i, (a, b) in enumerate(zip(mine, ref)) if a != b),
                 min(len(mine), len(ref)))
        problems.append(f"bytes differ from safetensors.torch.save at offset "
                        f"{n} (hug {len(mine)} bytes, reference {len(ref)})")
    if problems:
        print(f"MISMATCH {path}:")
        for p in problems:
            print("  " + p)
        return 1
    print(f"MATCH {path}: loads with safetensors {len(got)} tensors, values "
          f"equal, bytes identical to safetensors.torch.save")
    return 0


if __name__ == "__main__":
    sys.exit(main())
