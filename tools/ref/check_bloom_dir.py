#!/usr/bin/env python3
"""check_bloom_dir.py: checks that a BLOOM directory written by hug loads
in Hugging Face transformers as it is and computes the fixture's logits.

    HUG_BLOOM_SAVE_OUT=/tmp/hug-bloom-a build/bin/hug_tests bloom_parity_roundtrip
    python3 tools/ref/check_bloom_dir.py /tmp/hug-bloom-a/bloom-tiny-a
    python3 tools/ref/check_bloom_dir.py DIR [FIXTURE_DIR]

Loads DIR with BloomForCausalLM.from_pretrained(DIR, dtype=float32,
output_loading_info=True), fails on any missing, unexpected or mismatched
key, runs the fixture's input_ids and attention_mask through it (stock HF,
eager attention, float32) and compares the logits at positions where
attention_mask == 1 with the fixture's float64 reference:
max|diff| / max|ref| <= 1e-5. FIXTURE_DIR defaults to the directory under
tests/fixtures/ whose config.json has the same sizes. Prints MATCH (exit 0)
or what differs (exit 1).
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file
from transformers import BloomForCausalLM

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
TOL = 1e-5
SIZE_KEYS = ("vocab_size", "hidden_size", "n_layer", "n_head",
             "apply_residual_connection_post_layernorm")


def read_sizes(d):
    with open(os.path.join(d, "config.json")) as f:
        c = json.load(f)
    aliases = {"hidden_size": "n_embed", "n_layer": "num_hidden_layers",
               "n_head": "num_attention_heads"}
    out = {}
    for k in SIZE_KEYS:
        v = c.get(k, c.get(aliases.get(k, k)))
        if k == "apply_residual_connection_post_layernorm":
            v = bool(v)
        out[k] = v
    return out


def find_fixture(d):
    want = read_sizes(d)
    for name in sorted(os.listdir(FIXTURES)):
        f = os.path.join(FIXTURES, name)
        if (name.startswith("bloom-tiny-")
                and os.path.exists(os.path.join(f, "reference.safetensors"))
                and read_sizes(f) == want):
            return f
    return None


def check(d, fixture=None):
    """Returns a list of problems (empty on a match)."""
    problems = []
    fixture = fixture or find_fixture(d)
    if fixture is None:
        return [f"{d}: no fixture under {FIXTURES} has sizes {read_sizes(d)}"]
    model, info = BloomForCausalLM.from_pretrained(
        d, dtype=torch.float32, output_loading_info=True)
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys",
              "error_msgs"):
        if info.get(k):
            problems.append(f"{k}: {sorted(map(str, info[k]))}")
    model.eval()
    ref = load_file(os.path.join(fixture, "reference.safetensors"))
    ids = ref["input_ids"].long()
    mask = ref["attention_mask"].long()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask,
                       use_cache=False).logits.double()
    keep = mask.bool()
    got, want = logits[keep], ref["logits"][keep]
    if got.shape != want.shape:
        problems.append(f"logits shape {tuple(logits.shape)}, want "
                        f"{tuple(ref['logits'].shape)}")
        return problems
    diff = (got - want).abs()
    err = (diff.max() / want.abs().max()).item()
    if not err <= TOL:
        flat = int(diff.argmax())
        pos = keep.nonzero()[flat // want.shape[-1]].tolist()
        problems.append(f"logits: relative error {err:.3e} > {TOL:g} "
                        f"(worst at batch {pos[0]}, position {pos[1]}, "
                        f"vocab {flat % want.shape[-1]})")
    print(f"{d}: fixture {os.path.relpath(fixture, ROOT)}, logits at tokens "
          f"relative error {err:.3e}")
    return problems


def main(argv):
    if len(argv) not in (1, 2):
        print(__doc__)
        return 2
    problems = check(argv[0], argv[1] if len(argv) == 2 else None)
    if problems:
        for p in problems:
            print("DIFFERS:", p)
        return 1
    print("MATCH")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
