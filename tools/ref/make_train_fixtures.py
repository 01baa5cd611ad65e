#!/usr/bin/env python3
"""make_train_fixtures.py: 30 steps of AdamW training of the tiny model
fixtures in PyTorch + transformers, for hug's training-parity test
(tests/test_train_parity.c; issue 16's "a 30-step AdamW training run from
the same init and batches matches PyTorch + transformers").

For each model fixture directory tests/fixtures/<name>/ (made by
make_bloom_fixtures.py or make_family_fixtures.py) the script loads the
model, converts it to float64 (model.double(): exactly the float32
weights), and runs STEPS optimizer steps the way hug's trainer does
(train/trainer.c, trainer_step):

  * each step is MICRO micro-batches of (B, T) inputs and targets; the
    targets are aligned with the inputs (hug's loader convention: the
    logits at t are scored against targets[t]; -100 is not counted);
  * the step's loss is the sum of the counted token losses of all its
    micro-batches divided by their count (the Trainer's num_items_in_batch
    normalisation), one backward per micro-batch, gradients accumulated;
  * the global gradient norm is taken before clipping and the gradients
    are clipped by torch.nn.utils.clip_grad_norm_ (factor
    max_norm / (norm + 1e-6) when below 1; hug's optim_clip_grads);
  * the learning rate of update s = step + 1 is hug's lr_at
    (optim/schedule.h): linear warmup over WARMUP steps, then cosine decay
    to MIN_LR at DECAY_STEPS;
  * torch.optim.AdamW (foreach off) with two parameter groups: weight
    decay on the parameters transformers' Trainer decays
    (Trainer.get_decay_parameter_names: not biases, not norm weights), 0
    on the others.

The batches are random ids in [4, V) with padding (pad id 3 at the end of
some rows, not counted) and a masked prompt at the start of some rows
(targets -100), as an SFT batch has. No attention mask is passed (hug's
trainer passes none either: right padding only, which causal attention
never lets a real token see).

The float64 run uses the patches of make_bloom_fixtures.py (BLOOM's
softmax in the input dtype) and make_family_fixtures.py (softmax,
RMSNorm, RoPE cos/sin without float32 round trips); they are imported for
that. Written to tests/fixtures/train/<name>.safetensors:

  input_ids, targets (STEPS, MICRO, B, T) i32
  loss, grad_norm, lr (STEPS) f64: per step, the loss before the update,
      the gradient norm before clipping, the learning rate used
  hp.<key> () f64: lr, min_lr, warmup_steps, decay_steps, beta1, beta2,
      eps, weight_decay, grad_clip
  decay.<param> () i32: 1 when the parameter is decayed
  delta.<param> f32: final - initial value of every parameter (the
      tied lm_head is inside the embedding)

Run:   python3 tools/ref/make_train_fixtures.py [name ...]
       (default: every model fixture listed in MODELS)
Needs: pip install torch transformers safetensors
"""
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import make_bloom_fixtures as mbf
import make_family_fixtures as mff
from transformers import AutoModelForCausalLM, Trainer

ROOT = mbf.ROOT
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(FIXTURES, "train")
F64 = torch.float64

MODELS = ["bloom-tiny-a", "llama-tiny-a", "llama-tiny-b", "qwen2-tiny", "qwen3-tiny",
          "mistral-tiny"]
STEPS, MICRO, B, T = 30, 2, 2, 8
PAD_ID = 3
HP = {"lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 5.0, "decay_steps": 30.0,
      "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1,
      "grad_clip": 3.0}


def lr_at(step):
    """hug's lr_at (optim/schedule.h) for update s = step + 1, cosine."""
    s, w, d = step + 1, HP["warmup_steps"], HP["decay_steps"]
    if s <= w:
        return HP["lr"] * s / w
    r = min(max((s - w) / (d - w), 0.0), 1.0)
    return HP["min_lr"] + (HP["lr"] - HP["min_lr"]) * (1 + math.cos(math.pi * r)) / 2


def batches(vocab, seed):
    """input_ids, targets (STEPS, MICRO, B, T) int64."""
    g = torch.Generator().manual_seed(seed)
    seq = torch.randint(4, vocab, (STEPS, MICRO, B, T + 1), generator=g)
    ids, tg = seq[..., :T].clone(), seq[..., 1:].clone()
    pad = torch.randint(0, 4, (STEPS, MICRO, B), generator=g)    # padded tail
    prompt = torch.randint(0, 4, (STEPS, MICRO, B), generator=g) # masked head
    pos = torch.arange(T)
    for idx in torch.cartesian_prod(*(torch.arange(n) for n in (STEPS, MICRO, B))):
        s, m, b = idx.tolist()
        p, q = pad[s, m, b].item(), prompt[s, m, b].item()
        if p:
            ids[s, m, b, T - p:] = PAD_ID
            tg[s, m, b, T - p - 1:] = -100  # the last real token predicts padding
        tg[s, m, b, pos < q] = -100
    assert ((tg != -100).sum(dim=(2, 3)) > 0).all()
    return ids, tg


def load(name):
    d = os.path.join(FIXTURES, name)
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32,
                                                 attn_implementation="eager")
    return model.double()


def train(name, seed):
    model = load(name)
    mbf.SOFTMAX.mode = "f64"
    mff.Mode.exact = True
    model.train()
    vocab = model.config.vocab_size
    ids, tg = batches(vocab, seed)
    params = dict(model.named_parameters())
    init = {n: p.detach().clone() for n, p in params.items()}
    decayed = set(Trainer.get_decay_parameter_names(None, model))
    groups = [
        {"params": [p for n, p in params.items() if n in decayed],
         "weight_decay": HP["weight_decay"]},
        {"params": [p for n, p in params.items() if n not in decayed], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=HP["lr"], betas=(HP["beta1"], HP["beta2"]),
                            eps=HP["eps"], foreach=False)
    losses, norms, lrs = [], [], []
    for s in range(STEPS):
        count = (tg[s] != -100).sum().item()
        total = 0.0
        for m in range(MICRO):
            logits = model(input_ids=ids[s, m], use_cache=False).logits
            loss = F.cross_entropy(logits.reshape(-1, vocab), tg[s, m].reshape(-1),
                                   ignore_index=-100, reduction="sum") / count
            loss.backward()
            total += loss.item()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), HP["grad_clip"])
        lr = lr_at(s)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(total)
        norms.append(norm.item())
        lrs.append(lr)
    mbf.SOFTMAX.mode = "hf"
    mff.Mode.exact = False
    clipped = sum(n > HP["grad_clip"] for n in norms)
    print(f"{name}: loss {losses[0]:.6f} -> {losses[-1]:.6f}; grad norm "
          f"{norms[0]:.3f} -> {norms[-1]:.3f}, clipped in {clipped} of {STEPS} steps; "
          f"{len(decayed)} of {len(params)} parameters decayed")
    out = {
        "input_ids": ids.to(torch.int32), "targets": tg.to(torch.int32),
        "loss": torch.tensor(losses, dtype=F64), "grad_norm": torch.tensor(norms, dtype=F64),
        "lr": torch.tensor(lrs, dtype=F64),
    }
    for k, v in HP.items():
        out["hp." + k] = torch.tensor(v, dtype=F64)
    for n, p in params.items():
        out["decay." + n] = torch.tensor(int(n in decayed), dtype=torch.int32)
        out["delta." + n] = (p.detach() - init[n]).float()
    return out


def main():
    names = sys.argv[1:] or MODELS
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for i, name in enumerate(names):
        out = train(name, 100 + MODELS.index(name) if name in MODELS else 100 + i)
        path = os.path.join(OUT, name + ".safetensors")
        save_file({k: v.contiguous() for k, v in out.items()}, path,
                  metadata={"format": "pt"})
        print(f"  wrote {os.path.relpath(path, ROOT)}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
