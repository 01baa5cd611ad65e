#!/usr/bin/env python3
"""check_tensorboard.py: reads the TensorBoard event files of a directory
with TensorBoard's own reader (EventAccumulator, orphaned data purged as
TensorBoard does after a session start) and prints what it found as JSON:
{tag: [[step, value], ...]} for scalars and for text tensors.

  python3 tools/ref/check_tensorboard.py DIR [--out FILE]

With --out it writes the JSON to FILE (tests/fixtures/tensorboard/read.json
is made this way from the fixture events file written by
tests/test_tensorboard.c with HUG_TB_FIXTURE_WRITE=1).
Needs: pip install tensorboard
"""
import argparse
import json
import sys

from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.util import tensor_util


def read(dir_):
    acc = ea.EventAccumulator(dir_, size_guidance={ea.SCALARS: 0, ea.TENSORS: 0},
                              purge_orphaned_data=True)
    acc.Reload()
    out = {}
    tags = acc.Tags()
    for tag in tags.get("scalars", []):
        out[tag] = [[e.step, e.value] for e in acc.Scalars(tag)]
    for tag in tags.get("tensors", []):
        rows = []
        for e in acc.Tensors(tag):
            v = tensor_util.make_ndarray(e.tensor_proto)
            v = v.item() if v.shape == () else v.tolist()
            rows.append([e.step, v.decode("utf-8") if isinstance(v, bytes) else v])
        out[tag] = rows
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--out")
    a = ap.parse_args()
    text = json.dumps(read(a.dir), sort_keys=True) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
