#!/usr/bin/env python3
"""check_hf_load.py: checks that a model directory written by hug loads in
Hugging Face transformers exactly as it is.

    HUG_HF_OUT=/tmp/hug_hf build/bin/hug_tests hf_save_for_python
    python3 tools/ref/check_hf_load.py /tmp/hug_hf/single
    python3 tools/ref/check_hf_load.py /tmp/hug_hf/sharded
    python3 tools/ref/check_hf_load.py /tmp/hug_hf/bf16

Loads DIR with BloomForCausalLM.from_pretrained(DIR,
output_loading_info=True) in float32 and prints the missing, unexpected and
mismatched keys and the error messages (all must be empty), checks that
lm_head is tied to the word embeddings and that every parameter equals the
tensor stored in the files, then prints the logits on a fixed input. If
hug_logits.safetensors (written by the C test next to the directories, or
given with --hug-logits FILE) exists, hug's logits for the same input are
compared with transformers' (max |diff| / max |ref|; only for an f32
directory, since the bf16 one holds rounded weights).

Exit status 0 when the directory loads cleanly (and the logits agree,
where compared), 1 otherwise.
"""
import argparse
import glob
import json
import os
import sys
import warnings

import torch
from safetensors.torch import load_file
from transformers import BloomForCausalLM
from transformers.utils import logging as hf_logging

# the input the C test (hf_save_for_python) runs through hug
INPUT_IDS = [
    [1, 17, 42, 99, 3, 200, 7, 255],
    [5, 0, 128, 64, 33, 2, 250, 11],
]


def stored_tensors(d):
    """Every tensor in the directory's safetensors files, by name."""
    out = {}
    for f in sorted(glob.glob(os.path.join(d, "*.safetensors"))):
        out.update(load_file(f))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--hug-logits", help="hug's logits (default: "
                    "DIR/../hug_logits.safetensors when it exists)")
    ap.add_argument("--tol", type=float, default=1e-5)
    args = ap.parse_args()
    d = args.dir.rstrip("/")

    problems = []
    captured = []
    hf_logging.set_verbosity_warning()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, info = BloomForCausalLM.from_pretrained(
            d, output_loading_info=True, dtype=torch.float32)
        captured.extend(str(w.message) for w in caught)
    model.eval()

    with open(os.path.join(d, "config.json")) as fh:
        cfg = json.load(fh)
    print(f"{d}: transformers loaded BloomForCausalLM "
          f"(hidden_size {cfg['hidden_size']}, n_layer {cfg['n_layer']}, "
          f"n_head {cfg['n_head']}, vocab_size {cfg['vocab_size']}, "
          f"torch_dtype {cfg.get('torch_dtype')})")
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys",
                "error_msgs"):
        val = info.get(key, [])
        val = sorted(val) if not isinstance(val, list) else val
        print(f"  {key}: {list(val)}")
        if val:
            problems.append(f"{key} not empty")
    for w in captured:
        print(f"  python warning: {w}")

    if model.lm_head.weight.data_ptr() != \
            model.transformer.word_embeddings.weight.data_ptr():
        problems.append("lm_head is not tied to word_embeddings")
    else:
        print("  lm_head.weight is tied to transformer.word_embeddings.weight")

    files = stored_tensors(d)
    sd = model.state_dict()
    n_equal = 0
    for name, t in files.items():
        if name not in sd:
            problems.append(f"file tensor {name} is not in the model")
            continue
        if not torch.equal(sd[name], t.to(torch.float32)):
            problems.append(f"{name}: loaded values differ from the file")
        else:
            n_equal += 1
    print(f"  {n_equal} of {len(files)} stored tensors equal the loaded "
          f"parameters; {sum(p.numel() for p in model.parameters()):,} "
          f"parameters")

    ids = torch.tensor(INPUT_IDS, dtype=torch.long)
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    torch.set_printoptions(precision=6, sci_mode=False)
    print(f"  logits {list(logits.shape)}, sum {logits.sum().item():.6f}, "
          f"mean |x| {logits.abs().mean().item():.6f}")
    print(f"  logits[0, 0, :6] = {logits[0, 0, :6].tolist()}")
    print(f"  logits[1, 7, -6:] = {logits[1, 7, -6:].tolist()}")

    hug_path = args.hug_logits or os.path.join(os.path.dirname(d) or ".",
                                               "hug_logits.safetensors")
    if os.path.exists(hug_path) and cfg.get("torch_dtype") == "float32":
        hug = load_file(hug_path)
        if hug["input_ids"].tolist() != INPUT_IDS:
            problems.append(f"{hug_path}: a different input")
        else:
            ref = logits.double()
            diff = (hug["logits"].double() - ref).abs().max().item()
            rel = diff / ref.abs().max().item()
            print(f"  hug logits ({hug_path}): max|diff| {diff:.3g}, "
                  f"relative {rel:.3g} (tolerance {args.tol:g})")
            if not rel <= args.tol:
                problems.append(f"hug logits differ: relative {rel:.3g}")

    if problems:
        print("PROBLEMS:")
        for p in problems:
            print("  " + p)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
