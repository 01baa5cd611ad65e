"""Reference optimizer trajectories from torch.optim (AdamW, SGD).

Writes tests/fixtures/optim.safetensors: for each case, the initial
parameters, the gradient fed at every step, the learning rate of every step
and the parameters (and AdamW state) after every step, all float32 as
PyTorch computes them. tests/test_optim.c replays the same gradients through
hug's optimizer. Run: python3 tools/ref/make_optim_fixtures.py
"""
import math

import torch
from safetensors.torch import save_file

STEPS = 6
SHAPES = {"w": (5, 7), "b": (7,), "ln": (3,)}


def lrs():
    return [1e-2 * (0.5 + 0.5 * math.cos(math.pi * s / STEPS)) + 1e-3 for s in range(STEPS)]


def run(name, make_opt, out):
    g = torch.Generator().manual_seed(1234)
    params = {k: torch.randn(*s, generator=g) for k, s in SHAPES.items()}
    for k, v in params.items():
        out[f"{name}.init.{k}"] = v.clone()
    ps = {k: torch.nn.Parameter(v.clone()) for k, v in params.items()}
    opt = make_opt(ps)
    for step, lr in enumerate(lrs()):
        for group in opt.param_groups:
            group["lr"] = lr
        for k, p in ps.items():
            grad = torch.randn(*SHAPES[k], generator=g) * (0.1 + step)
            out[f"{name}.grad{step}.{k}"] = grad.clone()
            p.grad = grad
        opt.step()
        for k, p in ps.items():
            out[f"{name}.param{step}.{k}"] = p.detach().clone()
            st = opt.state[p]
            if "exp_avg" in st:
                out[f"{name}.exp_avg{step}.{k}"] = st["exp_avg"].clone()
                out[f"{name}.exp_avg_sq{step}.{k}"] = st["exp_avg_sq"].clone()
    out[f"{name}.lr"] = torch.tensor(lrs(), dtype=torch.float64)


def groups(ps, wd):
    # "ln" and "b" get no decay, as hug's no_decay parameters
    return [{"params": [ps["w"]], "weight_decay": wd},
            {"params": [ps["b"], ps["ln"]], "weight_decay": 0.0}]


def main():
    out = {}
    run("adamw", lambda ps: torch.optim.AdamW(groups(ps, 0.1), betas=(0.9, 0.95), eps=1e-8,
                                              foreach=False), out)
    run("sgd", lambda ps: torch.optim.SGD(groups(ps, 0.01), lr=0.1, momentum=0.9,
                                          foreach=False), out)
    run("sgd_nesterov", lambda ps: torch.optim.SGD(groups(ps, 0.0), lr=0.1, momentum=0.8,
                                                   nesterov=True, foreach=False), out)
    save_file({k: v.contiguous() for k, v in out.items()}, "tests/fixtures/optim.safetensors")
    print(f"wrote {len(out)} tensors")


if __name__ == "__main__":
    main()
