#!/usr/bin/env python3
"""make_peft_fixtures.py: LoRA adapters made by Hugging Face PEFT on the tiny
BLOOM, Llama and Qwen2 fixtures, with PEFT's forward, backward and merge as
references, for hug's LoRA tests (tests/test_peft_parity.c).

For each fixture below the script loads the base model saved by
make_bloom_fixtures.py or make_family_fixtures.py (tests/fixtures/<base>,
float32, eager attention, loaded by its
relative path so that base_model_name_or_path is that path), wraps it with
get_peft_model(LoraConfig(...)), sets every lora_A and lora_B weight to
0.2 N(0, 1) (PEFT's own init has B = 0, which would make the adapter a
no-op and its A gradient zero) and writes to tests/fixtures/peft/<name>/:

  adapter_config.json, adapter_model.safetensors
      model.save_pretrained(dir): an adapter exactly as PEFT saves it (the
      model card README.md it also writes is removed).
  trainable.txt
      what model.print_trainable_parameters() prints.
  reference.safetensors
      the PEFT model in float64 (model.double(): exactly the float32
      weights) on the batch of the base fixture's reference.safetensors
      (input_ids, attention_mask, labels are copied in, and position_ids
      for the families after BLOOM, which the forward is given):
        logits (B, T, V) f64, loss () f64 (Hugging Face's causal-LM loss),
        grad.<saved adapter name> f64 for every lora_A / lora_B weight,
        merged.<base weight name> f32: the adapted base weights after
          merge_and_unload() of the float32 model (PEFT's merge, in f32).

The outputs are byte-for-byte reproducible (the script runs itself with
PYTHONHASHSEED=0: PEFT writes target_modules from a set).

The float64 run keeps the attention softmax in float64 and gives fully
masked query rows zero probabilities, as make_bloom_fixtures.py explains
(it is imported for that patch and the loss); for Llama and Qwen2 the
patches of make_family_fixtures.py (softmax, RMSNorm, RoPE) apply.

Run from anywhere:   python3 tools/ref/make_peft_fixtures.py
Needs: pip install torch transformers safetensors peft
"""
import contextlib
import copy
import io
import os
import sys

import torch
from safetensors.torch import load_file, save_file

import make_bloom_fixtures as mbf
import make_family_fixtures as mff
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

ROOT = mbf.ROOT
OUT = os.path.join(ROOT, "tests", "fixtures", "peft")

FIXTURE_SPECS = [
    {
        # PEFT's usual shape: a list of module names, alpha / r scaling
        "name": "bloom-tiny-a-lora",
        "base": "bloom-tiny-a",
        "seed": 4321,
        "config": dict(r=4, lora_alpha=8,
                       target_modules=["query_key_value", "dense_4h_to_h"]),
    },
    {
        # every linear layer, rank-stabilised scaling alpha / sqrt(r)
        "name": "bloom-tiny-b-rslora",
        "base": "bloom-tiny-b",
        "seed": 8765,
        "config": dict(r=3, lora_alpha=5, use_rslora=True,
                       target_modules=["query_key_value", "dense",
                                       "dense_h_to_4h", "dense_4h_to_h"]),
    },
    {
        # target_modules as one regular expression: two modules of layer 1
        "name": "bloom-tiny-a-regex",
        "base": "bloom-tiny-a",
        "seed": 1111,
        "config": dict(r=2, lora_alpha=3,
                       target_modules=r".*\.h\.1\.self_attention\."
                                      r"(query_key_value|dense)"),
    },
    {
        # the model families after BLOOM: PEFT's default targets for Llama
        # (target_modules unset: q_proj and v_proj), GQA base
        "name": "llama-tiny-a-lora",
        "base": "llama-tiny-a",
        "seed": 2468,
        "config": dict(r=4, lora_alpha=8),
    },
    {
        # "all-linear": every linear layer of the blocks (not lm_head)
        "name": "llama-tiny-a-all",
        "base": "llama-tiny-a",
        "seed": 1357,
        "config": dict(r=3, lora_alpha=6, target_modules="all-linear"),
    },
    {
        # Qwen2: LoRA on the biased q/k/v projections and o_proj, rsLoRA
        "name": "qwen2-tiny-lora",
        "base": "qwen2-tiny",
        "seed": 9753,
        "config": dict(r=4, lora_alpha=4, use_rslora=True,
                       target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
    },
]


def saved_name(name):
    """PEFT's in-memory parameter name -> the key it saves."""
    return name.replace(".default", "")


def is_bloom(spec):
    return spec["base"].startswith("bloom")


def load_base(path):
    """The base model saved at `path` (float32, eager attention: the
    attention the float64 patches replace)."""
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32,
                                                attn_implementation="eager")


def build(spec):
    base = load_base(os.path.join("tests", "fixtures", spec["base"]))
    base.eval()
    cfg = LoraConfig(lora_dropout=0.0, task_type="CAUSAL_LM", **spec["config"])
    model = get_peft_model(base, cfg)
    torch.manual_seed(spec["seed"])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(0.2 * torch.randn_like(p))
    model.eval()
    return model


def forward_backward(model, ids, mask, pos, labels):
    """float64 logits, loss and {saved name: grad} of the adapters (pos:
    the position ids of a family fixture, None for BLOOM)."""
    mbf.SOFTMAX.mode = "f64-zero"
    mff.Mode.exact = True
    model.zero_grad(set_to_none=True)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False)
    loss = mbf.lm_loss(out.logits, labels)
    loss.backward()
    mbf.SOFTMAX.mode = "hf"
    mff.Mode.exact = False
    grads = {saved_name(n): p.grad.detach().clone()
             for n, p in model.named_parameters() if p.requires_grad}
    return out.logits.detach(), loss.detach(), grads


def merged_weights(model):
    """The adapted base weights after PEFT's merge_and_unload (float32)."""
    adapted = {saved_name(n).replace("base_model.model.", "").rsplit(".lora_", 1)[0]
               for n, _ in model.named_parameters() if "lora_" in n}
    merged = copy.deepcopy(model).merge_and_unload()
    sd = merged.state_dict()
    return {f"merged.{m}.weight": sd[f"{m}.weight"].contiguous() for m in sorted(adapted)}


def check_reload(model, out, ids, mask, pos):
    """The saved adapter, loaded back by PEFT, computes the same logits."""
    base = load_base(model.peft_config["default"].base_model_name_or_path)
    again = PeftModel.from_pretrained(base, out).eval()
    with torch.no_grad():
        a = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        b = again(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    keep = mask.bool()
    assert torch.equal(a[keep], b[keep]), "reloaded adapter differs"


def make_fixture(spec):
    out = os.path.join(OUT, spec["name"])
    os.makedirs(out, exist_ok=True)
    model = build(spec)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        model.print_trainable_parameters()
    with open(os.path.join(out, "trainable.txt"), "w") as f:
        f.write(buf.getvalue())
    model.save_pretrained(out)
    card = os.path.join(out, "README.md")
    if os.path.exists(card):
        os.remove(card)

    ref = load_file(os.path.join(ROOT, "tests", "fixtures", spec["base"],
                                 "reference.safetensors"))
    ids = ref["input_ids"].long()
    mask = ref["attention_mask"].long()
    labels = ref["labels"].long()
    pos = None if is_bloom(spec) else ref["position_ids"].long()
    check_reload(model, out, ids, mask, pos)
    merged = merged_weights(model)

    m64 = copy.deepcopy(model).double()
    logits, loss, grads = forward_backward(m64, ids, mask, pos, labels)
    keep = mask.bool()
    base_logits = ref["logits"]
    moved = mbf.relerr(logits[keep], base_logits[keep])
    print(f"{spec['name']}: {buf.getvalue().strip()}")
    print(f"  loss {loss.item():.15f} (base {ref['loss'].item():.15f}); the adapter "
          f"moves the logits by {moved:.2e} relative; {len(grads)} adapter tensors, "
          f"{len(merged)} merged weights")
    d = {"input_ids": ref["input_ids"], "attention_mask": ref["attention_mask"],
         **({} if pos is None else {"position_ids": ref["position_ids"]}),
         "labels": ref["labels"], "logits": logits.contiguous(), "loss": loss.reshape(())}
    for n, g in grads.items():
        assert g.abs().max() > 0, f"zero gradient for {n}"
        d["grad." + n] = g.contiguous()
    d.update(merged)
    save_file(d, os.path.join(out, "reference.safetensors"), metadata={"format": "pt"})
    for f in sorted(os.listdir(out)):
        print(f"  wrote tests/fixtures/peft/{spec['name']}/{f}: "
              f"{os.path.getsize(os.path.join(out, f))} bytes")


def main():
    if len(sys.argv) != 1:
        print(__doc__)
        sys.exit(2)
    if os.environ.get("PYTHONHASHSEED") != "0":
        # PEFT keeps target_modules in a set: fix the hash seed so that
        # adapter_config.json lists them in the same order every run
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable] + sys.argv)
    torch.set_num_threads(1)
    os.chdir(ROOT)
    for spec in FIXTURE_SPECS:
        make_fixture(spec)


if __name__ == "__main__":
    main()
