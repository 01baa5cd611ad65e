"""PyTorch + transformers counterpart of bench/bench_gpu.c: training steps of
BloomForCausalLM on one GPU in bf16 mixed precision (f32 weights and AdamW
state, torch.autocast(bfloat16) for forward and loss, clipping at 1.0), on
random tokens, with the same shapes. Prints one JSON line with tokens/s and
MFU, counted as bench_gpu.c counts them (6 N + 12 L C T flops per token).

  python3 tools/ref/bench_torch_gpu.py [--hidden 1024 --layers 24 --heads 16
      --vocab 250880 --seq 2048 --batch 1 --steps 10 --warmup 2]

Peak: $HUG_PEAK_TFLOPS (default 989, H100/H200 SXM dense bf16).
"""
import argparse
import json
import os
import time

import torch
from transformers import BloomConfig, BloomForCausalLM


def main():
    p = argparse.ArgumentParser()
    for k, d in [("hidden", 1024), ("layers", 24), ("heads", 16), ("vocab", 250880),
                 ("seq", 2048), ("batch", 1), ("steps", 10), ("warmup", 2)]:
        p.add_argument("--" + k, type=int, default=d)
    a = p.parse_args()
    peak = float(os.environ.get("HUG_PEAK_TFLOPS", "989")) * 1e12
    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False  # as hug: no TF32 anywhere
    cfg = BloomConfig(vocab_size=a.vocab, hidden_size=a.hidden, n_layer=a.layers,
                      n_head=a.heads, hidden_dropout=0.0, attention_dropout=0.0)
    model = BloomForCausalLM(cfg).to(dev).train()
    try:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=True)
    except (TypeError, RuntimeError):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    g = torch.Generator(device="cpu").manual_seed(7)
    ids = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g).to(dev)
    t0, loss = None, None
    for s in range(a.warmup + a.steps):
        if s == a.warmup:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=False)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    n = sum(p.numel() for p in model.parameters())
    tokens = a.steps * a.batch * a.seq
    flops_per_token = 6 * n + 12 * a.layers * a.hidden * a.seq
    tps = tokens / dt
    print(json.dumps({
        "impl": "torch", "device": torch.cuda.get_device_name(0), "params": n,
        "batch": a.batch, "seq": a.seq, "steps": a.steps,
        "step_ms": round(1e3 * dt / a.steps, 1), "tokens_per_s": round(tps),
        "mfu": round(tps * flops_per_token / peak, 4), "peak_tflops": peak / 1e12,
        "loss": round(loss.item(), 4),
        "max_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
