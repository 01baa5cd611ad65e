#!/usr/bin/env python3
"""make_autograd_fixtures.py: reference values for hug's autograd op tests.

Writes (relative to the repository root):
  tests/fixtures/autograd_ops.safetensors  float64 inputs, outputs and
      gradients of layernorm, gelu, softmax, attention (ALiBi, causal,
      padding mask), attention_nomask and cross_entropy, computed in
      torch.float64 with torch.manual_seed(0); keys "<case>.<name>".
  tests/fixtures/safetensors_py.safetensors  a few small tensors written by
      the reference `safetensors` library, for hug's reader test.

Run from anywhere:  python3 tools/ref/make_autograd_fixtures.py
Needs: pip install torch safetensors
"""
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
F64 = torch.float64


def alibi_slopes(n_head):
    """ALiBi slopes as transformers' build_alibi_tensor computes them
    (there in float32; here in float64, identical for power-of-two bases)."""
    closest = 2 ** math.floor(math.log2(n_head))
    base = 2.0 ** (-(2.0 ** -(math.log2(closest) - 3)))
    slopes = [base ** p for p in range(1, 1 + closest)]
    if closest != n_head:
        extra_base = 2.0 ** (-(2.0 ** -(math.log2(2 * closest) - 3)))
        n_rest = min(closest, n_head - closest)
        slopes += [extra_base ** p for p in range(1, 1 + 2 * n_rest, 2)]
    return torch.tensor(slopes, dtype=F64)


def attention(q, k, v, slopes, mask):
    """hug's fused attention: causal, ALiBi bias slope_h * pos_j, padding
    mask; a query row whose keys are all masked gives zeros (not NaN)."""
    B, H, T, D = q.shape
    if mask is None:
        keep = torch.ones(B, T, dtype=torch.bool)
        pos = torch.arange(T, dtype=F64).expand(B, T)
    else:
        keep = mask.bool()
        pos = ((torch.cumsum(mask.long(), dim=-1) - 1) * mask.long()).to(F64)
    s = q @ k.transpose(-1, -2) / math.sqrt(D)
    s = s + slopes.view(1, H, 1, 1) * pos.view(B, 1, 1, T)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    allowed = causal.view(1, 1, T, T) & keep.view(B, 1, 1, T)
    mx = torch.where(allowed, s, torch.full_like(s, -math.inf))
    mx = mx.amax(dim=-1, keepdim=True).detach()
    mx = torch.where(torch.isfinite(mx), mx, torch.zeros_like(mx))
    e = torch.exp(torch.where(allowed, s - mx, torch.zeros_like(s)))
    e = e * allowed
    denom = e.sum(dim=-1, keepdim=True)
    p = e / torch.where(denom > 0, denom, torch.ones_like(denom))
    return p @ v


def grads(out, dout, *inputs):
    return torch.autograd.grad(out, inputs, grad_outputs=dout)


def leaf(t):
    return t.detach().clone().requires_grad_(True)


def case_layernorm(d):
    x = leaf(torch.randn(3, 5, 7, dtype=F64))
    w = leaf(1 + 0.5 * torch.randn(7, dtype=F64))
    b = leaf(0.5 * torch.randn(7, dtype=F64))
    eps = 1e-5
    y = F.layer_norm(x, (7,), w, b, eps)
    dy = torch.randn_like(y)
    dx, dw, db = grads(y, dy, x, w, b)
    d.update({"layernorm.x": x, "layernorm.weight": w, "layernorm.bias": b,
              "layernorm.eps": torch.tensor(eps, dtype=F64),
              "layernorm.y": y, "layernorm.dy": dy, "layernorm.dx": dx,
              "layernorm.dweight": dw, "layernorm.dbias": db})


def case_gelu(d):
    x = torch.randn(4, 9, dtype=F64)
    x[0, :4] = torch.tensor([3.0, -3.2, 2.9, -2.7], dtype=F64)
    x = leaf(x)
    y = F.gelu(x, approximate="tanh")
    dy = torch.randn_like(y)
    (dx,) = grads(y, dy, x)
    d.update({"gelu.x": x, "gelu.y": y, "gelu.dy": dy, "gelu.dx": dx})


def case_softmax(d):
    x = leaf(2 * torch.randn(3, 11, dtype=F64))
    y = torch.softmax(x, dim=-1)
    dy = torch.randn_like(y)
    (dx,) = grads(y, dy, x)
    d.update({"softmax.x": x, "softmax.y": y, "softmax.dy": dy,
              "softmax.dx": dx})


def case_attention(d):
    B, H, T, D = 2, 3, 5, 4
    q = leaf(torch.randn(B, H, T, D, dtype=F64))
    k = leaf(torch.randn(B, H, T, D, dtype=F64))
    v = leaf(torch.randn(B, H, T, D, dtype=F64))
    slopes = alibi_slopes(H)
    mask = torch.tensor([[1, 1, 1, 1, 1], [0, 1, 1, 1, 0]], dtype=torch.int32)
    for name, m in (("attention", mask), ("attention_nomask", None)):
        out = attention(q, k, v, slopes, m)
        assert torch.isfinite(out).all()
        dout = torch.randn_like(out)
        dq, dk, dv = grads(out, dout, q, k, v)
        if m is not None:
            d.update({f"{name}.q": q, f"{name}.k": k, f"{name}.v": v,
                      f"{name}.slopes": slopes, f"{name}.mask": m})
        d.update({f"{name}.out": out, f"{name}.dout": dout,
                  f"{name}.dq": dq, f"{name}.dk": dk, f"{name}.dv": dv})
    self_check_attention(q, k, v, slopes, mask)


def self_check_attention(q, k, v, slopes, mask):
    """Cross-checks the reference against torch's own attention and
    finite differences, so the fixture does not rest on one formula."""
    B, H, T, D = q.shape
    bias = slopes.view(1, H, 1, 1) * torch.arange(T, dtype=F64).view(1, 1, 1, T)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    bias = bias.masked_fill(~causal, -math.inf)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    got = attention(q, k, v, slopes, None)
    assert torch.allclose(got, want, atol=1e-12), "nomask != sdpa"
    # with a mask: rows that keep some key match sdpa with a position bias
    # from the cumulative mask; the all-masked row (b=1, i=0) is zero
    pos = ((torch.cumsum(mask.long(), -1) - 1) * mask.long()).to(F64)
    bias = slopes.view(1, H, 1, 1) * pos.view(B, 1, 1, T)
    allowed = causal.view(1, 1, T, T) & mask.bool().view(B, 1, 1, T)
    bias = bias.masked_fill(~allowed, -math.inf)
    bias[1, :, 0, 0] = 0.0  # keep sdpa finite on the row compared as zero
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    got = attention(q, k, v, slopes, mask)
    assert torch.allclose(got[0], want[0], atol=1e-12)
    assert torch.allclose(got[1, :, 1:], want[1, :, 1:], atol=1e-12)
    assert (got[1, :, 0] == 0).all()
    ok = torch.autograd.gradcheck(
        lambda a, b, c: attention(a, b, c, slopes, mask),
        (leaf(q), leaf(k), leaf(v)))
    assert ok


def case_cross_entropy(d):
    logits = leaf(torch.randn(2, 5, 13, dtype=F64))
    targets = torch.randint(0, 13, (2, 5), dtype=torch.int64)
    targets[0, 1] = -100
    targets[1, 0] = -100
    targets[1, 4] = -100
    loss = F.cross_entropy(logits.reshape(-1, 13), targets.reshape(-1),
                           ignore_index=-100)
    (dlogits,) = torch.autograd.grad(loss, (logits,))
    d.update({"cross_entropy.logits": logits,
              "cross_entropy.targets": targets.to(torch.int32),
              "cross_entropy.loss": loss,
              "cross_entropy.dlogits": dlogits})


def write_autograd_ops():
    torch.manual_seed(0)
    d = {}
    for case in (case_layernorm, case_gelu, case_softmax, case_attention,
                 case_cross_entropy):
        case(d)
    d = {k: v.detach().contiguous() for k, v in d.items()}
    path = os.path.join(FIXTURES, "autograd_ops.safetensors")
    # one metadata key only: the library writes metadata in hash order, so
    # more keys would make regenerated files differ byte-wise
    save_file(d, path, metadata={"format": "pt"})
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(d)} tensors)")


def write_safetensors_py():
    """Small tensors with exactly representable values; the C test checks
    them bit for bit (see tests/test_safetensors.c)."""
    d = {
        "f32": torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.5 - 1,
        "bf16": torch.tensor([1.5, -2.0, 0.25, 3.0], dtype=torch.bfloat16),
        "i32": torch.tensor([1, -2, 2147483647], dtype=torch.int32),
        "f16": torch.tensor([[0.5, -1.0], [65504.0, 2.0 ** -14]],
                            dtype=torch.float16),
    }
    path = os.path.join(FIXTURES, "safetensors_py.safetensors")
    save_file(d, path, metadata={"format": "pt",
                                 "note": "made by safetensors"})
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def main():
    os.makedirs(FIXTURES, exist_ok=True)
    write_autograd_ops()
    write_safetensors_py()
    return 0


if __name__ == "__main__":
    sys.exit(main())
