#!/usr/bin/env python3
"""make_bloom_fixtures.py: tiny random BLOOM models and their reference
forward/backward, for hug's whole-model parity test
(tests/test_bloom_parity.c).

For each fixture below the script builds a BloomForCausalLM with
torch.manual_seed fixed and dropout 0, randomises EVERY parameter (LayerNorm
weights 1 + 0.1 N(0,1), biases 0.1 N(0,1), other weights 0.2 N(0,1), so
every gradient is far from trivial), and writes to tests/fixtures/<name>/:

  config.json, generation_config.json, model.safetensors
      model.save_pretrained(dir, safe_serialization=True), float32.
  reference.safetensors
      the model in float64 (model.double(), so exactly the float32 weights)
      on a fixed padded batch:
        input_ids (B, T) i32, attention_mask (B, T) i32 (1 token, 0 pad),
        labels (B, T) i32 (input_ids, -100 where attention_mask == 0),
        logits (B, T, V) f64, loss () f64 (Hugging Face's causal-LM loss:
        logits[t] predict labels[t + 1], mean over counted targets),
        grad.<name> f64 for every parameter (d loss / d param; the tied
        lm_head's gradient is inside grad.transformer.word_embeddings.weight),
        loss_hf_eager () f64: the loss of unmodified HF eager attention
        (see "padding" below), for information only.

Two deliberate departures from running the stock model in float64, both
measured and printed:

  * HF computes the attention softmax in float32 (F.softmax(...,
    dtype=torch.float32)) and the loss on logits.float(); in float64 that
    would cap the reference at float32 precision. Here the softmax stays in
    the input dtype and the loss is the same formula without the cast.
  * Padding: a query whose keys are all masked (the padded positions of a
    left-padded row) gets a uniform average over ALL T positions in HF's
    eager attention (every score is dtype-min); hug's attention outputs
    zeros there (documented). The reference uses hug's convention (zero
    probabilities for such rows). Logits at padded positions are therefore
    not comparable. They do matter for the loss in one place: with left
    padding the last padded position predicts the first real token
    (labels are shifted), so that term differs between the two conventions.
    The script shows which positions influence the loss (d loss / d
    inputs_embeds) and how big the difference is.

Kept as HF has it: the GeLU constant 0.79788456 for sqrt(2/pi) (and the
matching backward). The script prints how much the exact constant would
move the float64 logits (about 2.5e-10 relative here).

Run from anywhere:   python3 tools/ref/make_bloom_fixtures.py
Check a directory hug saved (see check_bloom_dir.py):
                     python3 tools/ref/make_bloom_fixtures.py --check DIR
Needs: pip install torch transformers safetensors
"""
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import transformers.models.bloom.modeling_bloom as mb
from transformers import BloomConfig, BloomForCausalLM

from causal_lm_ref import lm_loss, padded_batch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
F64 = torch.float64
T = 9
PAD_ID = 3

FIXTURE_SPECS = [
    {
        "name": "bloom-tiny-a",
        "seed": 1234,
        "config": dict(vocab_size=97, hidden_size=24, n_layer=2, n_head=3,
                       apply_residual_connection_post_layernorm=False),
        "rows": ["full", "right3"],
    },
    {
        "name": "bloom-tiny-b",
        "seed": 5678,
        "config": dict(vocab_size=101, hidden_size=32, n_layer=2, n_head=4,
                       apply_residual_connection_post_layernorm=True),
        "rows": ["full", "right3", "left2"],
    },
]


# ---- a switchable attention softmax for modeling_bloom ----

class _SoftmaxMode:
    """Replaces the `F` that modeling_bloom uses. mode "hf" leaves every
    call as it is; "f64" keeps the softmax in the input dtype (no float32
    cast); "f64-zero" does that and also gives zero probabilities to rows
    whose scores are all masked (hug's convention)."""

    def __init__(self):
        self.mode = "hf"

    def __getattr__(self, name):
        return getattr(F, name)

    def softmax(self, x, dim=-1, dtype=None):
        if self.mode == "hf":
            return F.softmax(x, dim=dim, dtype=dtype)
        p = F.softmax(x, dim=dim)
        if self.mode == "f64-zero":
            # HF adds finfo.min to masked scores: a row is fully masked when
            # every entry is that small.
            masked = x < torch.finfo(x.dtype).min / 2
            full = masked.all(dim=dim, keepdim=True)
            p = torch.where(full, torch.zeros_like(p), p)
        return p


SOFTMAX = _SoftmaxMode()
mb.F = SOFTMAX


# ---- models and batches ----

def is_layernorm(name):
    return "layernorm" in name or name.startswith("transformer.ln_f")


def build_model(spec):
    torch.manual_seed(spec["seed"])
    cfg = BloomConfig(hidden_dropout=0.0, attention_dropout=0.0,
                      pad_token_id=PAD_ID, **spec["config"])
    model = BloomForCausalLM(cfg).float()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif is_layernorm(name):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
    assert model.lm_head.weight is model.transformer.word_embeddings.weight
    model.eval()
    return model


def make_batch(spec):
    """input_ids, attention_mask, labels (int64) for the rows of `spec`."""
    return padded_batch(spec["config"]["vocab_size"], spec["rows"], spec["seed"] + 1, T,
                        PAD_ID)


def run(model, ids, mask, labels, mode, delta=None):
    """Forward + backward in softmax mode `mode`, with `delta` (B, T, C)
    added to the input embeddings when given; returns logits, loss,
    {param name: grad} (all detached) and d loss / d inputs_embeds."""
    SOFTMAX.mode = mode
    model.zero_grad(set_to_none=True)
    wte = model.transformer.word_embeddings.weight
    embeds = wte[ids]           # the same as nn.Embedding, differentiable
    if delta is not None:
        embeds = embeds + delta
    embeds.retain_grad()
    out = model(inputs_embeds=embeds, attention_mask=mask, use_cache=False)
    loss = lm_loss(out.logits, labels)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    SOFTMAX.mode = "hf"
    return out.logits.detach(), loss.detach(), grads, embeds.grad.detach()


def relerr(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


def max_grad_relerr(ga, gb):
    return max(relerr(ga[n], gb[n]) for n in gb)


# ---- checks printed while making the fixtures ----

def check_precision_patches(model, ids, mask, labels, ref_logits):
    """How far the stock float64 forward (float32 softmax and loss) is from
    the reference: expected around float32 rounding. Rows with left padding
    are left out: there the stock model casts scores of dtype-min (float64)
    to float32, i.e. -inf, and a fully masked row becomes NaN, which then
    spreads to every position of the row (0 * NaN in the next layer)."""
    rows = mask[:, 0] == 1
    ids, mask, labels = ids[rows], mask[rows], labels[rows]
    SOFTMAX.mode = "hf"
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, labels=labels,
                    use_cache=False)
        ref_loss = lm_loss(ref_logits[rows], labels)
    keep = mask.bool()
    e = relerr(out.logits[keep], ref_logits[rows][keep])
    print(f"  stock HF float64 (f32 softmax and loss) vs reference, rows "
          f"{rows.nonzero().flatten().tolist()}: logits {e:.2e}, loss "
          f"{abs(out.loss - ref_loss).item():.2e}")
    assert e < 1e-5, "the float64 patches changed more than rounding"


def check_gelu_constant(model, ids, mask, labels, ref_logits):
    """HF's GeLU uses 0.79788456 for sqrt(2/pi); how much the exact value
    changes the float64 logits (hug uses the exact one)."""
    saved = mb.bloom_gelu_forward
    exact = math.sqrt(2.0 / math.pi)
    mb.bloom_gelu_forward = lambda x: x * 0.5 * (1.0 + torch.tanh(
        exact * x * (1 + 0.044715 * x * x)))
    try:
        SOFTMAX.mode = "f64-zero"
        with torch.no_grad():
            lg = model(input_ids=ids, attention_mask=mask,
                       use_cache=False).logits
    finally:
        mb.bloom_gelu_forward = saved
        SOFTMAX.mode = "hf"
    keep = mask.bool()
    e = relerr(lg[keep], ref_logits[keep])
    print(f"  GeLU with exact sqrt(2/pi) instead of 0.79788456: logits "
          f"{e:.2e} (float64)")


def check_padding(model, ids, mask, labels, ref):
    """Verifies the padding claim: the loss and gradients do not depend on
    the padded positions. Two probes, under both conventions: the
    gradient of the loss at the padded positions' input embeddings, and
    random perturbations of those embeddings."""
    keep = mask.bool()
    pad = ~keep
    ref_logits, ref_loss, ref_grads, _ = ref
    hf = run(model, ids, mask, labels, "f64")
    print(f"  HF eager (uniform rows) vs zero rows: logits at tokens "
          f"{relerr(hf[0][keep], ref_logits[keep]):.2e}, loss "
          f"{hf[1].item():.15f} vs {ref_loss.item():.15f} "
          f"(diff {abs(hf[1] - ref_loss).item():.2e}), grads "
          f"{max_grad_relerr(hf[2], ref_grads):.2e}")
    g = torch.Generator().manual_seed(99)
    width = model.config.hidden_size
    for mode in ("f64-zero", "f64"):
        base = run(model, ids, mask, labels, mode)
        demb = base[3]
        for r in range(ids.shape[0]):
            if pad[r].any():
                per_pos = demb[r].abs().amax(dim=-1)
                print(f"    [{mode}] row {r}: max |d loss / d emb| at "
                      f"padded positions {pad[r].nonzero().flatten().tolist()}:"
                      f" {[f'{v:.1e}' for v in per_pos[pad[r]].tolist()]}")
        worst_loss = worst_grad = 0.0
        for _ in range(3):
            delta = torch.zeros(*ids.shape, width, dtype=F64)
            delta[pad] = torch.randn(int(pad.sum()), width, generator=g,
                                     dtype=F64)
            p = run(model, ids, mask, labels, mode, delta=delta)
            worst_loss = max(worst_loss, abs(p[1] - base[1]).item())
            worst_grad = max(worst_grad, max_grad_relerr(p[2], base[2]))
        ok = worst_loss == 0.0 and worst_grad == 0.0
        print(f"    [{mode}] perturbing padded embeddings: loss changes by "
              f"{worst_loss:.2e}, grads by {worst_grad:.2e} (relative) -> "
              f"claim {'HOLDS' if ok else 'FAILS'}")
    return hf[1]


# ---- the fixtures ----

def file_size(path):
    return os.path.getsize(path)


def make_fixture(spec):
    name = spec["name"]
    out = os.path.join(FIXTURES, name)
    os.makedirs(out, exist_ok=True)
    print(f"{name}: {spec['config']}, rows {spec['rows']}")
    model = build_model(spec)
    model.save_pretrained(out, safe_serialization=True)

    model = model.double()
    ids, mask, labels = make_batch(spec)
    ref = run(model, ids, mask, labels, "f64-zero")
    logits, loss, grads, _ = ref
    names = [n for n, _ in model.named_parameters()]
    assert all(n.startswith("transformer.") for n in names)
    for n in names:
        assert grads[n].abs().max() > 0, f"zero gradient for {n}"
    print(f"  loss {loss.item():.15f}; {len(names)} parameters, smallest "
          f"max|grad| {min(grads[n].abs().max().item() for n in names):.3e}")

    check_precision_patches(model, ids, mask, labels, logits)
    check_gelu_constant(model, ids, mask, labels, logits)
    hf_loss = check_padding(model, ids, mask, labels, ref)

    d = {
        "input_ids": ids.to(torch.int32),
        "attention_mask": mask.to(torch.int32),
        "labels": labels.to(torch.int32),
        "logits": logits.contiguous(),
        "loss": loss.reshape(()),
        "loss_hf_eager": hf_loss.reshape(()),
    }
    for n in names:
        d["grad." + n] = grads[n].contiguous()
    ref_path = os.path.join(out, "reference.safetensors")
    save_file(d, ref_path, metadata={"format": "pt"})
    for f in sorted(os.listdir(out)):
        print(f"  wrote {os.path.join('tests/fixtures', name, f)}: "
              f"{file_size(os.path.join(out, f))} bytes")


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--check":
        import check_bloom_dir
        sys.exit(check_bloom_dir.main(sys.argv[2:]))
    if len(sys.argv) != 1:
        print(__doc__)
        sys.exit(2)
    torch.set_num_threads(1)
    for spec in FIXTURE_SPECS:
        make_fixture(spec)


if __name__ == "__main__":
    main()
