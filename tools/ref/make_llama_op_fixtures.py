#!/usr/bin/env python3
"""make_llama_op_fixtures.py: reference values for the ops of the Llama
families (ag_rmsnorm, ag_rope, ag_silu, ag_swiglu), from transformers'
own modules.

Writes tests/fixtures/llama_ops.safetensors, keys "<case>.<name>", made
with torch.manual_seed(0):

  rmsnorm.*   x (3, 5, 12), w (12), eps (1), dy; y, dx, dw in float64 (the
      formula of LlamaRMSNorm without its float32 round trip, which would
      spoil a float64 reference); y_f32: the stock LlamaRMSNorm in float32
      (hug's f32 forward must match it); y_bf16: the stock LlamaRMSNorm in
      bfloat16 (weight and x bf16), with x_bf16 and w_bf16 its inputs.
  qknorm.*    Qwen3's QK-norm: x (B, T, H, D) = q_proj(h).view(B, T, H, D),
      Qwen3RMSNorm(D) over it, then transpose(1, 2): y (B, H, T, D); the
      float64 reference as for rmsnorm, dy (B, H, T, D), dx, dw; y_f32 stock.
  rope.*      q (B, H, T, D) and position_ids (B, T) i32 following padding
      and packed documents (row 0 full: 0..T-1; row 1 left-padded by 2:
      0, 0, 0, 1, ...; row 2 two packed documents restarting at 0);
      inv_freq (D/2) f64 from LlamaRotaryEmbedding with llama3 scaling
      (float32 values); y: apply_rotary_pos_emb with cos/sin in float64
      from inv_freq, dy, dx (float64 autograd); y_f32: the stock float32
      path (LlamaRotaryEmbedding.forward's cos/sin, apply_rotary_pos_emb).
  swiglu.*    gate, up (3, 4, 10), dy; y = ACT2FN["silu"](gate) * up (as
      LlamaMLP forms it), dgate, dup in float64; y_f32 stock float32;
      silu_y, silu_dx: SiLU alone (its dy is swiglu.dy).

Run:   python3 tools/ref/make_llama_op_fixtures.py
Needs: pip install torch transformers safetensors
"""
import os

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig
from transformers.activations import ACT2FN
from transformers.models.llama.modeling_llama import (LlamaRMSNorm,
                                                      LlamaRotaryEmbedding,
                                                      apply_rotary_pos_emb)
from transformers.models.qwen3.modeling_qwen3 import Qwen3RMSNorm

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "llama_ops.safetensors")
F64 = torch.float64


def leaf(t):
    return t.detach().clone().requires_grad_(True)


def rms_ref(x, w, eps):
    """LlamaRMSNorm's formula, in x's dtype (float64 here)."""
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def stock_norm(cls, w, eps, x, dtype):
    m = cls(w.shape[0], eps=eps).to(dtype)
    with torch.no_grad():
        m.weight.copy_(w.to(dtype))
        return m(x.to(dtype))


def case_rmsnorm(d):
    eps = 1e-5
    x = leaf(2 * torch.randn(3, 5, 12, dtype=F64))
    w = leaf(1 + 0.3 * torch.randn(12, dtype=F64))
    y = rms_ref(x, w, eps)
    dy = torch.randn_like(y)
    dx, dw = torch.autograd.grad(y, (x, w), dy)
    d.update({"rmsnorm.x": x, "rmsnorm.w": w, "rmsnorm.eps": torch.tensor([eps], dtype=F64),
              "rmsnorm.y": y, "rmsnorm.dy": dy, "rmsnorm.dx": dx, "rmsnorm.dw": dw})
    d["rmsnorm.y_f32"] = stock_norm(LlamaRMSNorm, w, eps, x, torch.float32)
    xb, wb = x.to(torch.bfloat16), w.to(torch.bfloat16)
    d["rmsnorm.x_bf16"], d["rmsnorm.w_bf16"] = xb, wb
    d["rmsnorm.y_bf16"] = stock_norm(LlamaRMSNorm, wb, eps, xb, torch.bfloat16)


def case_qknorm(d):
    eps = 1e-6
    B, T, H, D = 2, 5, 3, 8
    x = leaf(torch.randn(B, T, H, D, dtype=F64))
    w = leaf(1 + 0.3 * torch.randn(D, dtype=F64))
    y = rms_ref(x, w, eps).transpose(1, 2)
    dy = torch.randn_like(y)
    dx, dw = torch.autograd.grad(y, (x, w), dy)
    d.update({"qknorm.x": x, "qknorm.w": w, "qknorm.eps": torch.tensor([eps], dtype=F64),
              "qknorm.y": y, "qknorm.dy": dy.contiguous(), "qknorm.dx": dx, "qknorm.dw": dw})
    d["qknorm.y_f32"] = stock_norm(Qwen3RMSNorm, w, eps, x, torch.float32).transpose(1, 2)


def case_rope(d):
    B, H, T, D = 3, 2, 7, 12
    cfg = LlamaConfig(hidden_size=H * D, num_attention_heads=H, head_dim=D,
                      max_position_embeddings=64,
                      rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0,
                                       "factor": 8.0, "low_freq_factor": 1.0,
                                       "high_freq_factor": 4.0,
                                       "original_max_position_embeddings": 16})
    rot = LlamaRotaryEmbedding(cfg)
    assert rot.attention_scaling == 1.0
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, :2] = 0
    pos = (torch.cumsum(mask, -1) - 1).clamp(min=0)
    pos[2] = torch.tensor([0, 1, 2, 0, 1, 2, 3])
    q = leaf(torch.randn(B, H, T, D, dtype=F64))
    inv = rot.inv_freq.to(F64)
    freqs = pos[..., None].to(F64) * inv
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    y, _ = apply_rotary_pos_emb(q, q, cos, sin)
    dy = torch.randn_like(y)
    (dx,) = torch.autograd.grad(y, (q,), dy)
    q32 = q.detach().float()
    c32, s32 = rot(q32, pos)
    y32, _ = apply_rotary_pos_emb(q32, q32, c32, s32)
    d.update({"rope.x": q, "rope.pos": pos.to(torch.int32), "rope.inv_freq": inv,
              "rope.y": y, "rope.dy": dy, "rope.dx": dx, "rope.y_f32": y32})


def case_swiglu(d):
    act = ACT2FN["silu"]
    g = leaf(3 * torch.randn(3, 4, 10, dtype=F64))
    u = leaf(torch.randn(3, 4, 10, dtype=F64))
    y = act(g) * u
    dy = torch.randn_like(y)
    dg, du = torch.autograd.grad(y, (g, u), dy)
    s = act(g)
    (sdx,) = torch.autograd.grad(s, (g,), dy)
    y32 = act(g.detach().float()) * u.detach().float()
    d.update({"swiglu.gate": g, "swiglu.up": u, "swiglu.y": y, "swiglu.dy": dy,
              "swiglu.dgate": dg, "swiglu.dup": du, "swiglu.y_f32": y32,
              "swiglu.silu_y": s, "swiglu.silu_dx": sdx})


def main():
    torch.manual_seed(0)
    d = {}
    case_rmsnorm(d)
    case_qknorm(d)
    case_rope(d)
    case_swiglu(d)
    d = {k: v.detach().contiguous() for k, v in d.items()}
    save_file(d, OUT, metadata={"format": "pt"})
    print(f"wrote {OUT}: {len(d)} tensors, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
