"""Where a small CNN's training time goes in fnn, and how PyTorch on the CPU does on the same nets.

    python experiments/bench/conv_speed.py                # the full run
    python experiments/bench/conv_speed.py --threads 1    # one BLAS thread (and one PyTorch thread)
    python experiments/bench/conv_speed.py --quick        # a smoke run of a few seconds

Two nets on MNIST-shaped float32 batches of 128 (NHWC ``(128, 28, 28, 1)``, seeded
uniform pixels in [0, 1), labels 0-9), softmax cross-entropy:

- ``lenet``: conv 6 5x5 valid, ReLU, maxpool 2, conv 16 5x5 valid, ReLU, maxpool 2,
  dense 120, ReLU, dense 84, ReLU, dense 10;
- ``convnet``: conv 32 3x3 same, ReLU, conv 32 3x3, ReLU, maxpool 2, conv 64 3x3, ReLU,
  conv 64 3x3, ReLU, maxpool 2, dense 128, ReLU, dense 10.

For each it times, per batch (median of ``--reps`` batches after a warm-up, with min and max):

- fnn forward + backward: ``fnn.value_and_grad`` with a ``Workspace``, as the in-place train step runs it;
- the same pass instrumented and split into im2col, the conv GEMMs (``cols @ w``,
  ``cols.T @ dy``, ``w @ dy.T`` per conv layer, with their GFLOP/s), col2im, the rest of the
  conv layers (bias, ``db``, the batch-innermost copy of ``dy``), pooling (the pool
  layers' forward and backward), the dense layers, and the rest (ReLU, reshapes, the loss,
  Python); the split's own timers add a little;
- the whole in-place train step with Adam (``fnn.make_inplace_train_step``);
- PyTorch, if installed: the same net (``torch.nn``, NCHW), forward + backward and a step
  with Adam, in a process of its own (its OpenMP threads spin after each call and
  would slow NumPy's BLAS threads in the same process).

``--clock cpu`` times with the process's CPU time instead of the wall clock: on a
machine shared with other jobs, and with ``--threads 1``, it leaves out the time the
process waited for a core (with more threads it adds up every thread, spinning included).

Nothing here asserts a time: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np

import fnn
from fnn import losses, optim, random
from fnn.layers import Conv2D, Dense, Flatten, MaxPool2D, Relu, Reshape
from fnn.layers import conv as conv_module

BATCH = 128
NETS = ("lenet", "convnet")
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
CLOCK_NAME = {v: k for k, v in CLOCKS.items()}
clock_now = time.perf_counter  # --clock cpu: this process's CPU time, steadier on a shared machine with one thread


def fnn_layers(net):
    if net == "lenet":
        return [Reshape((28, 28, 1)), Conv2D(6, 5, padding="valid"), Relu, MaxPool2D(2), Conv2D(16, 5, padding="valid"), Relu,
                MaxPool2D(2), Flatten, Dense(120, "he_uniform"), Relu, Dense(84, "he_uniform"), Relu, Dense(10)]
    return [Reshape((28, 28, 1)), Conv2D(32, 3), Relu, Conv2D(32, 3), Relu, MaxPool2D(2), Conv2D(64, 3), Relu, Conv2D(64, 3), Relu,
            MaxPool2D(2), Flatten, Dense(128, "he_uniform"), Relu, Dense(10)]


def data(quick):
    n = 16 if quick else BATCH
    x = random.uniform(random.key(0), (n, 784))
    y = random.permutation(random.key(1), 10 * n)[:n] % 10
    return x, y


def spread(ms):
    return f"{statistics.median(ms):8.2f} ms ({min(ms):.2f}-{max(ms):.2f})"


# ---------------------------------------------------------------- fnn, plain and split


class Clock:
    """Seconds (and GEMM flops) per part, summed over the timed calls."""

    def __init__(self):
        self.seconds, self.flops = {}, 0

    def add(self, part, seconds):
        self.seconds[part] = self.seconds.get(part, 0.0) + seconds

    def timed(self, part, fn):
        def run(*args, **kwargs):
            t0 = clock_now()
            out = fn(*args, **kwargs)
            self.add(part, clock_now() - t0)
            return out

        return run


def timed_layer(lyr, part, clock):
    """``lyr`` with its forward and its backward timed as ``part``."""

    def vjp(params, x, key=None, ws=fnn.workspace.FRESH, need_dx=True):
        t0 = clock_now()
        y, back = lyr.vjp(params, x, key, ws=ws, need_dx=need_dx)
        clock.add(part, clock_now() - t0)
        return y, clock.timed(part, back)

    return lyr._replace(vjp=vjp)


@contextmanager
def split_conv(clock):
    """Time :mod:`fnn.layers.conv`'s im2col, col2im and GEMMs while inside."""
    saved = conv_module.im2col, conv_module.col2im, conv_module.matmul_into
    gemm = clock.timed("conv GEMMs", saved[2])

    def counted(a, b, out):
        clock.flops += 2 * a.shape[0] * a.shape[1] * b.shape[1]
        return gemm(a, b, out)

    conv_module.im2col, conv_module.col2im = clock.timed("im2col", saved[0]), clock.timed("col2im", saved[1])
    conv_module.matmul_into = counted
    try:
        yield
    finally:
        conv_module.im2col, conv_module.col2im, conv_module.matmul_into = saved


def fnn_figures(net, reps, x, y):
    loss = losses.softmax_cross_entropy
    plain = fnn.serial(*fnn_layers(net))
    _, params = plain.init(random.key(0), (-1, 784))
    clock = Clock()
    parts = {"Conv2D": "conv layers", "MaxPool2D": "pooling", "AvgPool2D": "pooling", "Dense": "dense layers"}
    split = fnn.serial(*[timed_layer(lyr, parts[lyr.spec["type"]], clock) if lyr.spec["type"] in parts else lyr for lyr in fnn_layers(net)])
    vg_plain, vg_split = fnn.value_and_grad(plain, loss), fnn.value_and_grad(split, loss)
    ws_plain, ws_split = fnn.Workspace(), fnn.Workspace()
    opt = optim.adam(1e-3)
    step = fnn.make_inplace_train_step(plain, loss, opt)
    state = {"params": params, "opt": opt.init(params)}

    def run_step():
        state["params"], state["opt"], _ = step(state["params"], state["opt"], (x, y))

    def run_split():
        with split_conv(clock):
            vg_split(params, x, y, None, ws_split)

    runs = {"plain": lambda: vg_plain(params, x, y, None, ws_plain), "split": run_split, "step": run_step}
    for run in runs.values():  # warm-up: buffers made, pages touched
        run()
        run()
    times, parts = {name: [] for name in runs}, []
    for _ in range(reps):
        for name, run in runs.items():
            clock.seconds, clock.flops = {}, 0
            t0 = clock_now()
            run()
            times[name].append((clock_now() - t0) * 1e3)
            if name == "split":
                parts.append({k: v * 1e3 for k, v in clock.seconds.items()} | {"flops": clock.flops})
    return times, parts, ws_plain.nbytes()


def split_rows(totals, parts):
    """``[(part, median ms)]``: conv's own parts, the rest of the conv layers, pooling, dense, and the rest of the pass."""
    rows = {k: [] for k in ("im2col", "conv GEMMs", "col2im", "conv other", "pooling", "dense layers", "rest")}
    for total, p in zip(totals, parts):
        own = [p.get(k, 0.0) for k in ("im2col", "conv GEMMs", "col2im")]
        values = own + [p.get("conv layers", 0.0) - sum(own), p.get("pooling", 0.0), p.get("dense layers", 0.0)]
        for k, v in zip(rows, values + [total - sum(values)]):
            rows[k].append(v)
    return [(k, statistics.median(v)) for k, v in rows.items()]


# ---------------------------------------------------------------- PyTorch, in a process of its own


def torch_net(net, nn):
    if net == "lenet":
        return nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def torch_worker(net, reps, quick, threads):
    import torch
    from torch import nn

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch_net(net, nn)
    x, y = data(quick)
    xt = torch.from_numpy(x.reshape(-1, 1, 28, 28).copy())
    yt = torch.from_numpy(y.astype(np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def fwd_bwd():
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(xt), yt).backward()

    def step():
        fwd_bwd()
        opt.step()

    runs = {"fwd_bwd": fwd_bwd, "step": step}
    for run in runs.values():
        run()
        run()
    times = {name: [] for name in runs}
    for _ in range(reps):
        for name, run in runs.items():
            t0 = clock_now()
            run()
            times[name].append((clock_now() - t0) * 1e3)
    print(json.dumps({"times": times, "threads": torch.get_num_threads(), "version": torch.__version__}))


def torch_figures(net, reps, quick, threads):
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return "not installed (pip install torch)"
    cmd = [sys.executable, __file__, "--torch-worker", net, "--reps", str(reps), "--clock", CLOCK_NAME[clock_now]]
    cmd += ["--quick"] if quick else []
    cmd += ["--threads", str(threads)] if threads else []
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        return f"failed: {(done.stderr.strip().splitlines() or [done.returncode])[-1]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- report


def machine_line(threads):
    from threadpoolctl import threadpool_info

    blas = "; ".join(f"{i.get('internal_api')} {i.get('version')} x{i.get('num_threads')}" for i in threadpool_info())
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return (f"numpy {np.__version__}, BLAS {blas or 'unknown'}; cores {os.cpu_count()}, BLAS threads {threads or 'default'}, "
            f"load {load}; clock: {CLOCK_NAME[clock_now]}")


def report(net, reps, quick, threads, use_torch):
    x, y = data(quick)
    x = np.ascontiguousarray(x)
    times, parts, nbytes = fnn_figures(net, reps, x, y)
    total_split = statistics.median(times["split"])
    gemm_rate = statistics.median(p["flops"] / p["conv GEMMs"] / 1e6 for p in parts)
    print(f"\n{net}: batch {len(x)}, float32, {' -> '.join(lyr.spec['type'] for lyr in fnn_layers(net))}")
    print(f"  fnn forward+backward      {spread(times['plain'])}   (workspace {nbytes / 2**20:.0f} MiB)")
    print(f"  fnn train step (Adam)     {spread(times['step'])}")
    print(f"  split (the timed pass: {total_split:.2f} ms; medians per part):")
    for name, ms in split_rows(times["split"], parts):
        extra = f"   {gemm_rate:.1f} GFLOP/s" if name == "conv GEMMs" else ""
        print(f"    {name:<14} {ms:8.2f} ms  {100 * ms / total_split:5.1f} %{extra}")
    if use_torch:
        t = torch_figures(net, reps, quick, threads)
        if isinstance(t, str):
            print(f"  PyTorch                   {t}")
        else:
            ratio = statistics.median(times["plain"]) / statistics.median(t["times"]["fwd_bwd"])
            print(f"  PyTorch {t['version']} x{t['threads']} forward+backward {spread(t['times']['fwd_bwd'])}   "
                  f"fnn / PyTorch = {ratio:.2f}")
            print(f"  PyTorch train step (Adam)           {spread(t['times']['step'])}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=30, help="timed batches per figure (default 30)")
    ap.add_argument("--threads", type=int, default=0, help="BLAS (and PyTorch) threads; 0: their defaults")
    ap.add_argument("--quick", action="store_true", help="batch 16, 2 reps: a smoke run")
    ap.add_argument("--net", choices=NETS, action="append", help="one net only (default: both)")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch even if it is installed")
    ap.add_argument("--clock", choices=CLOCKS, default="wall", help="wall (default) or cpu: this process's CPU time")
    ap.add_argument("--torch-worker", choices=NETS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    global clock_now
    clock_now = CLOCKS[args.clock]
    reps = 2 if args.quick else args.reps
    if args.torch_worker:
        return torch_worker(args.torch_worker, reps, args.quick, args.threads)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(args.threads or None, user_api="blas"):
        print(machine_line(args.threads))
        for net in args.net or NETS:
            report(net, reps, args.quick, args.threads, not args.no_torch)


if __name__ == "__main__":
    main()
