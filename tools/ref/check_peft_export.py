#!/usr/bin/env python3
"""check_peft_export.py: checks that a LoRA adapter hug wrote loads in
Hugging Face PEFT as it is and computes what hug computes.

Two ways to call it:

  # what the C test leaves (adapter/, merged/, hug_logits.safetensors):
  HUG_PEFT_OUT=/tmp/hug-peft build/bin/hug_tests peft_export_for_python
  python3 tools/ref/check_peft_export.py /tmp/hug-peft/bloom-tiny-a

  # any export, e.g. the README's walk-through:
  python3 tools/ref/check_peft_export.py --base export/base \\
      --adapter export/adapter [--merged export/merged] \\
      [--ids ids.json --hug-logits logits.safetensors]
  (ids.json: [[id, ...], ...], the --input of `hug eval`; logits from
  `hug eval --model export/merged --input ids.json --dump-logits ...`)

Checks, each printed with its number:
  1. PeftModel.from_pretrained(base, adapter) loads every tensor of
     adapter_model.safetensors into the model unchanged (no missing or
     unexpected adapter keys);
  2. the PEFT model's logits (float32, transformers' stock BLOOM) equal
     hug's at every unpadded position: max|diff| / max|hug| <= 1e-5;
  3. with --merged: BloomForCausalLM.from_pretrained(merged) loads with no
     missing or unexpected keys, its logits match hug's within 1e-5, and
     its weights match PEFT's merge_and_unload() within 1e-6.
Without hug's logits, 2 compares the PEFT model with the merged model.
Prints MATCH (exit 0) or what differs (exit 1).

Needs: pip install torch transformers safetensors peft
"""
import argparse
import json
import os
import sys

import torch
from safetensors.torch import load_file
from peft import PeftModel
from transformers import BloomForCausalLM

TOL_LOGITS = 1e-5
TOL_MERGED = 1e-6


def relerr(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def load_base(path):
    return BloomForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def check_adapter_loaded(model, adapter_dir):
    """Every saved tensor sits unchanged in the PEFT model."""
    saved = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    params = dict(model.named_parameters())
    bad = []
    for key, t in saved.items():
        name = key.replace(".lora_A.weight", ".lora_A.default.weight").replace(
            ".lora_B.weight", ".lora_B.default.weight")
        p = params.get(name)
        if p is None or p.shape != t.shape or not torch.equal(p.detach(), t.float()):
            bad.append(key)
    n_lora = sum(1 for n in params if ".lora_" in n)
    ok = not bad and n_lora == len(saved)
    print(f"  1. adapter: {len(saved)} tensors in the file, {n_lora} LoRA tensors in "
          f"the PEFT model; {'all loaded unchanged' if ok else 'DIFFER: ' + str(bad[:4])}")
    return ok


def logits_of(model, ids, mask):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float()


def check_merged(merged_dir, peft_model, ids, mask, ref, ref_name):
    merged, info = BloomForCausalLM.from_pretrained(merged_dir, dtype=torch.float32,
                                                    output_loading_info=True)
    merged.eval()
    keys_ok = not (info["missing_keys"] or info["unexpected_keys"] or
                   info["mismatched_keys"])
    keep = mask.bool()
    e = relerr(logits_of(merged, ids, mask)[keep], ref[keep])
    ours = merged.state_dict()
    theirs = peft_model.merge_and_unload().state_dict()
    w = max((ours[k] - theirs[k]).abs().max().item() for k in theirs if k in ours)
    ok = keys_ok and e <= TOL_LOGITS and w <= TOL_MERGED
    print(f"  3. merged: loading info {'clean' if keys_ok else info}; logits vs "
          f"{ref_name} {e:.2e}; weights vs PEFT merge_and_unload max|diff| {w:.2e}")
    return ok


def batch_from(args, hug):
    if "input_ids" in hug:
        return hug["input_ids"].long(), hug["attention_mask"].long()
    with open(args.ids) as f:
        seqs = json.load(f)
    t = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), t), 3, dtype=torch.long)
    mask = torch.zeros((len(seqs), t), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return ids, mask


def resolve(args):
    if args.dir:
        args.adapter = args.adapter or os.path.join(args.dir, "adapter")
        args.merged = args.merged or os.path.join(args.dir, "merged")
        args.hug_logits = args.hug_logits or os.path.join(args.dir, "hug_logits.safetensors")
    if not args.adapter:
        sys.exit("give DIR or --adapter (see --help)")
    if not args.base:
        with open(os.path.join(args.adapter, "adapter_config.json")) as f:
            args.base = json.load(f)["base_model_name_or_path"]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", nargs="?")
    ap.add_argument("--adapter")
    ap.add_argument("--base")
    ap.add_argument("--merged")
    ap.add_argument("--hug-logits")
    ap.add_argument("--ids")
    args = ap.parse_args()
    resolve(args)
    torch.set_num_threads(1)
    print(f"{args.adapter} on {args.base}")
    model = PeftModel.from_pretrained(load_base(args.base), args.adapter).eval()
    ok = check_adapter_loaded(model, args.adapter)
    if args.hug_logits:
        hug = load_file(args.hug_logits)
        ids, mask = batch_from(args, hug)
        ref, ref_name = hug["logits"].float(), "hug"
    else:
        with open(args.ids) as f:
            seqs = json.load(f)
        ids = torch.tensor(seqs)
        mask = torch.ones_like(ids)
        ref = logits_of(BloomForCausalLM.from_pretrained(args.merged).eval(), ids, mask)
        ref_name = "the merged model"
    keep = mask.bool()
    e = relerr(logits_of(model, ids, mask)[keep], ref[..., :keep.shape[1], :][keep])
    print(f"  2. logits: PEFT model vs {ref_name}: {e:.2e} (max|diff| / max|ref| over "
          f"{int(keep.sum())} positions)")
    ok = ok and e <= TOL_LOGITS
    if args.merged and os.path.isdir(args.merged):
        ok = check_merged(args.merged, model, ids, mask, ref, ref_name) and ok
    print("MATCH" if ok else "DIFFER")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
