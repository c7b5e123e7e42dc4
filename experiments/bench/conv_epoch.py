"""A LeNet-style CNN's training epoch and inference on MNIST: fnn against PyTorch CPU, in one run.

    python experiments/bench/conv_epoch.py               # default threads (BLAS and PyTorch)
    python experiments/bench/conv_epoch.py --threads 1   # one thread each
    python experiments/bench/conv_epoch.py --quick       # a smoke run of a few seconds (2048 images)

The net (NHWC in fnn, NCHW in PyTorch, the same initial weights in both): conv 6 5x5
valid, ReLU, maxpool 2, conv 16 5x5 valid, ReLU, maxpool 2, dense 120, ReLU, dense 84,
ReLU, dense 10; softmax cross-entropy, Adam 1e-3, batch 128 (469 steps an epoch over
the 60000 MNIST training images, uint8 batches converted per step).

- **Epochs.** fnn trains through ``fnn.fit`` (its public loop: the in-place train step,
  the seeded batch iterator, one workspace); PyTorch runs the same shuffled batches in a
  process of its own (its OpenMP threads spin after each call and would slow NumPy's
  BLAS threads in the same process), kept alive and driven epoch by epoch: fnn and
  PyTorch epochs alternate (a ``fit`` callback starts PyTorch's after each of fnn's), so
  both see the same load. Each side's first epoch is a warm-up. Wall clock and CPU time
  (the process's, every thread summed) for each epoch; medians (min-max).
- **Inference**: labels for the 10000 test images, 1024 rows a call on both sides
  (``fnn.predict``'s chunk), median of ``--predict-reps``; and both test accuracies.
- **Where fnn's epoch goes**: one more epoch (the same loop, ``make_inplace_train_step``
  and ``iterate_batches`` with a workspace) with :mod:`fnn.layers.conv`'s im2col, col2im
  and GEMMs timed: each part's seconds and share of that epoch (``--clock``: CPU time by
  default, steadier than the wall clock on a shared machine).
- **The convolution against its GEMMs**: each conv layer's forward + backward on one
  batch of 128 (``need_dx`` as the net needs it: the first conv makes no ``dx``), against
  the matrix products it reduces to, alone, on contiguous operands made beforehand
  (``cols @ w``, ``cols.T @ dy`` and, when ``dx`` is made, ``w @ dy.T``).

Nothing here asserts a time: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import fnn
from fnn import batching, datasets, losses, optim, random
from fnn.layers import Conv2D, Dense, Flatten, MaxPool2D, Relu, Reshape
from fnn.layers import conv as conv_module

BATCH = 128
SEED = 0
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def lenet():
    return fnn.serial(Reshape((28, 28, 1)), Conv2D(6, 5, padding="valid"), Relu, MaxPool2D(2), Conv2D(16, 5, padding="valid"), Relu,
                      MaxPool2D(2), Flatten, Dense(120, "he_uniform"), Relu, Dense(84, "he_uniform"), Relu, Dense(10))


def mnist(quick):
    """MNIST as stored (uint8 ``(n, 28, 28)``); with ``quick``, 2048 training and 1000 test images."""
    ds = datasets.load("mnist")
    if quick:
        return ds.x_train[:2048], ds.y_train[:2048], ds.x_test[:1000], ds.y_test[:1000]
    return ds.x_train, ds.y_train, ds.x_test, ds.y_test


def epoch_order(epoch, n):
    """The shuffle ``fnn.fit(seed=SEED)`` draws for ``epoch``: PyTorch takes the same batches."""
    k_shuffle = random.split(random.key(SEED), 4)[2]
    return batching.epoch_order(n, random.fold_in(k_shuffle, epoch))


def spread(values, unit="s", scale=1.0):
    v = [x * scale for x in values]
    return f"{statistics.median(v):.3f} {unit} ({min(v):.3f}-{max(v):.3f})"


def timed(fn):
    """``(result, wall seconds, CPU seconds)`` of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


# ---------------------------------------------------------------- PyTorch, a process of its own driven line by line


def torch_params(params):
    """fnn's LeNet params as PyTorch's state dict arrays: conv ``(kh, kw, c, f) -> (f, c, kh, kw)``, dense ``(in, out) -> (out, in)``;
    the first dense layer's rows reordered from NHWC's flatten (h, w, c) to NCHW's (c, h, w)."""
    out = {}
    for i, name in [("1", "0"), ("4", "3")]:
        out[f"{name}.weight"], out[f"{name}.bias"] = params[i]["w"].transpose(3, 2, 0, 1), params[i]["b"]
    for i, name in [("8", "7"), ("10", "9"), ("12", "11")]:
        w = params[i]["w"]
        if i == "8":
            w = w.reshape(4, 4, 16, -1).transpose(2, 0, 1, 3).reshape(256, -1)
        out[f"{name}.weight"], out[f"{name}.bias"] = w.T, params[i]["b"]
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def torch_worker(args):
    import torch
    from torch import nn

    if args.threads:
        torch.set_num_threads(args.threads)
    model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    with np.load(args.init) as f:
        model.load_state_dict({k: torch.from_numpy(f[k]) for k in f.files})
    try:
        opt, adam = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True), "fused"
    except (RuntimeError, TypeError, ValueError):
        opt, adam = torch.optim.Adam(model.parameters(), lr=1e-3), "foreach"
    x, y, x_test, y_test = mnist(args.quick)
    xt, yt = torch.from_numpy(np.array(x).reshape(-1, 1, 28, 28)), torch.from_numpy(y.astype(np.int64))
    x_test_t = torch.from_numpy(batching.to_float(x_test).reshape(-1, 1, 28, 28))

    def epoch(e):
        order = torch.from_numpy(epoch_order(e, len(yt)))
        for s in range(0, len(order), BATCH):
            idx = order[s : s + BATCH]
            xb = xt.index_select(0, idx).float().mul_(1 / 255)
            yb = yt.index_select(0, idx)
            opt.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = nn.functional.cross_entropy(logits, yb)
            loss.backward()
            opt.step()
            loss.item(), (logits.argmax(1) == yb).float().mean().item()  # the loss and accuracy fnn's step reports

    def predict():
        with torch.no_grad():
            return torch.cat([model(x_test_t[i : i + 1024]).argmax(1) for i in range(0, len(x_test_t), 1024)]).numpy()

    print(json.dumps({"version": torch.__version__, "threads": torch.get_num_threads(), "adam": adam}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "epoch":
            _, wall, cpu = timed(lambda e=cmd["epoch"]: epoch(e))
            reply = {"wall": wall, "cpu": cpu}
        else:
            times = [timed(predict) for _ in range(cmd["reps"] + 1)][1:]
            reply = {"wall": [t[1] for t in times], "cpu": [t[2] for t in times],
                     "accuracy": float(np.mean(predict() == y_test))}
        print(json.dumps(reply), flush=True)


class Torch:
    """The worker process: ``epoch(e)`` and ``predict(reps)`` answer with its own clocks."""

    def __init__(self, args, params, tmp):
        init = Path(tmp) / "init.npz"
        np.savez(init, **torch_params(params))
        cmd = [sys.executable, __file__, "--torch-worker", "--init", str(init)] + (["--quick"] if args.quick else [])
        cmd += ["--threads", str(args.threads)] if args.threads else []
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = self._read()
        self.epochs = []

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the PyTorch worker stopped (exit {self.proc.wait()})")
        return json.loads(line)

    def ask(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def epoch(self, e):
        self.epochs.append(self.ask(cmd="epoch", epoch=e))

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def torch_available():
    import importlib.util

    return importlib.util.find_spec("torch") is not None


class Alternate:
    """A ``fit`` callback: after each of fnn's epochs, PyTorch's next one (fit times its epochs before callbacks run)."""

    def __init__(self, torch):
        self.torch = torch

    def on_epoch_end(self, epoch, record):
        if self.torch is not None:
            self.torch.epoch(epoch + 1)


# ---------------------------------------------------------------- where fnn's epoch goes


def split_epoch(model, params, x, y, clock):
    """One training epoch (the loop ``fit`` runs) with im2col, col2im and the conv GEMMs timed by ``clock``: ``({part: s}, total s)``."""
    seconds = {"im2col": 0.0, "col2im": 0.0, "conv GEMMs": 0.0}
    saved = conv_module.im2col, conv_module.col2im, conv_module.matmul_into

    def timer(part, fn):
        def run(*a, **k):
            t0 = clock()
            out = fn(*a, **k)
            seconds[part] += clock() - t0
            return out

        return run

    opt = optim.adam(1e-3)
    ws = fnn.Workspace()
    step = fnn.make_inplace_train_step(model, losses.softmax_cross_entropy, opt, workspace=ws.child("step"))
    p, s = fnn.tree.tree_copy(params), opt.init(params)

    def epoch(e):
        nonlocal p, s
        for batch in batching.iterate_batches(x, y, BATCH, random.fold_in(random.key(7), e), transform=batching.to_float,
                                              ws=ws.child("batches")):
            p, s, _ = step(p, s, batch)

    epoch(0)  # warm-up: buffers made
    conv_module.im2col, conv_module.col2im = timer("im2col", saved[0]), timer("col2im", saved[1])
    conv_module.matmul_into = timer("conv GEMMs", saved[2])
    try:
        t0 = clock()
        epoch(1)
        total = clock() - t0
    finally:
        conv_module.im2col, conv_module.col2im, conv_module.matmul_into = saved
    return seconds, total


# ---------------------------------------------------------------- each convolution against its GEMMs


def conv_vs_gemm(model, params, reps, clock):
    """``[(name, conv ms, GEMM ms, need_dx)]`` per conv layer, medians over ``reps`` of one batch of 128."""
    rng = np.random.default_rng(0)
    h = rng.random((BATCH, 784), dtype=np.float32)
    rows, first = [], True
    for i, lyr in enumerate(model.children):
        p = params[str(i)]
        if lyr.spec["type"] == "Conv2D":
            y, _ = lyr.vjp(p, h)
            dy = rng.standard_normal(y.shape, dtype=np.float32)
            ws = fnn.Workspace()

            def run(lyr=lyr, p=p, x=h, dy=dy, ws=ws, need_dx=not first):
                lyr.vjp(p, x, ws=ws, need_dx=need_dx)[1](dy)

            m, f = y.shape[0] * y.shape[1] * y.shape[2], y.shape[3]
            k = p["w"].size // f
            cols, w2, dy2 = rng.random((m, k), dtype=np.float32), p["w"].reshape(k, f).copy(), dy.reshape(m, f).copy()
            out_y, out_w, out_c = np.empty((m, f), np.float32), np.empty((k, f), np.float32), np.empty((k, m), np.float32)

            def gemms(cols=cols, w2=w2, dy2=dy2, out_y=out_y, out_w=out_w, out_c=out_c, need_dx=not first):
                np.matmul(cols, w2, out=out_y)
                np.matmul(cols.T, dy2, out=out_w)
                if need_dx:
                    np.matmul(w2, dy2.T, out=out_c)

            name = f"conv {len(rows) + 1}: {tuple(h.shape[1:])} -> {tuple(y.shape[1:])}, cols {m}x{k}"
            rows.append((name, *median_ms(run, reps, clock), *median_ms(gemms, reps, clock), not first))
            first = False
        h = lyr.apply(p, h)
    return rows


def median_ms(fn, reps, clock):
    """``(median, min, max)`` milliseconds of ``reps`` calls after two warm-ups."""
    fn()
    fn()
    ts = []
    for _ in range(reps):
        t0 = clock()
        fn()
        ts.append((clock() - t0) * 1e3)
    return statistics.median(ts), min(ts), max(ts)


# ---------------------------------------------------------------- the run


def machine_lines(threads):
    from threadpoolctl import threadpool_info

    blas = "; ".join(f"{i.get('internal_api')} {i.get('version')} x{i.get('num_threads')}" for i in threadpool_info())
    return [f"numpy {np.__version__}, BLAS {blas or 'unknown'}; fnn from {Path(fnn.__file__).parent}",
            f"cores {os.cpu_count()}, threads {threads or 'default'}, load average {load_average()}"]


def load_average():
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())



def run(args):
    t_start = time.perf_counter()
    x, y, x_test, y_test = mnist(args.quick)
    model = lenet()
    _, params = model.init(random.key(SEED), (-1, 784))
    steps = batching.num_batches(len(y), BATCH)
    print(f"LeNet on MNIST: {len(y)} training images, batch {BATCH} ({steps} steps an epoch), Adam, float32")
    for line in machine_lines(args.threads):
        print(line)
    with tempfile.TemporaryDirectory() as tmp:
        torch = Torch(args, params, tmp) if not args.no_torch and torch_available() else None
        if torch is not None:
            torch.epoch(0)  # its warm-up, on fit's first order
        result = fnn.fit(model, x, y, optimizer=optim.adam(1e-3), epochs=args.epochs + 1, batch_size=BATCH, seed=SEED,
                         params=fnn.tree.tree_copy(params), transform=batching.to_float, verbose=0, callbacks=[Alternate(torch)])
        timed_records = result.records[1:]
        x_test_f = batching.to_float(x_test)
        print(f"\nepochs: median (min-max) of {args.epochs} after one warm-up each; fnn (fnn.fit) and PyTorch alternating")
        fnn_wall, fnn_cpu = [r["seconds"] for r in timed_records], [r["cpu_seconds"] for r in timed_records]
        print(f"  fnn     wall {spread(fnn_wall)}   CPU {spread(fnn_cpu)}")
        if torch is not None:
            info, t_epochs = torch.info, torch.epochs[1:]
            t_wall, t_cpu = [e["wall"] for e in t_epochs], [e["cpu"] for e in t_epochs]
            print(f"  PyTorch wall {spread(t_wall)}   CPU {spread(t_cpu)}   ({info['version']}, {info['threads']} thread(s), "
                  f"{info['adam']} Adam)")
            print(f"  fnn / PyTorch per epoch: wall {statistics.median(fnn_wall) / statistics.median(t_wall):.2f}, "
                  f"CPU {statistics.median(fnn_cpu) / statistics.median(t_cpu):.2f}")
        else:
            print("  PyTorch " + ("skipped (--no-torch)" if args.no_torch else "not installed (pip install torch)"))

        def predict():
            return fnn.predict(model, result.params, x_test_f)

        times = [timed(predict) for _ in range(args.predict_reps + 1)][1:]
        acc = float(np.mean(predict() == y_test))
        print(f"\ninference, labels for {len(y_test)} test images (1024 a call): median (min-max) of {args.predict_reps}")
        p_wall, p_cpu = [t[1] for t in times], [t[2] for t in times]
        print(f"  fnn     wall {spread(p_wall, 'ms', 1e3)}   CPU {spread(p_cpu, 'ms', 1e3)}   test accuracy {acc:.4f}")
        if torch is not None:
            pt = torch.ask(cmd="predict", reps=args.predict_reps)
            print(f"  PyTorch wall {spread(pt['wall'], 'ms', 1e3)}   CPU {spread(pt['cpu'], 'ms', 1e3)}   "
                  f"test accuracy {pt['accuracy']:.4f}")
            print(f"  fnn / PyTorch: wall {statistics.median(p_wall) / statistics.median(pt['wall']):.2f}, "
                  f"CPU {statistics.median(p_cpu) / statistics.median(pt['cpu']):.2f}")
            torch.close()

    clock = CLOCKS[args.clock]
    parts, total = split_epoch(model, params, x, y, clock)
    print(f"\nwhere one fnn training epoch goes ({args.clock} clock; the same loop with conv's parts timed: {total:.3f} s)")
    for part, s in parts.items():
        print(f"  {part:<12} {s:7.3f} s  {100 * s / total:5.1f} %")
    print(f"  {'the rest':<12} {total - sum(parts.values()):7.3f} s  {100 * (1 - sum(parts.values()) / total):5.1f} %"
          "   (conv bias and layout copies, ReLU, pooling, dense, loss, Adam, batches, Python)")
    print(f"\neach conv layer's forward + backward against the GEMMs it reduces to, one batch of {BATCH} "
          f"({args.clock} clock, median (min-max) of {args.reps})")
    for name, c_med, c_lo, c_hi, g_med, g_lo, g_hi, need_dx in conv_vs_gemm(model, params, args.reps, clock):
        gemms = "cols @ w, cols.T @ dy" + (", w @ dy.T" if need_dx else "")
        print(f"  {name}{'' if need_dx else ' (no dx)'}\n    conv   {c_med:7.3f} ms ({c_lo:.3f}-{c_hi:.3f})"
              f"\n    GEMMs  {g_med:7.3f} ms ({g_lo:.3f}-{g_hi:.3f})  [{gemms}]   conv / GEMMs = {c_med / g_med:.2f}")
    print(f"\nload average at the end: {load_average()}; {time.perf_counter() - t_start:.0f} s in all")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, help="timed epochs per side, after one warm-up (default 3; quick: 1)")
    ap.add_argument("--threads", type=int, default=0, help="BLAS and PyTorch threads (default: the libraries' own)")
    ap.add_argument("--quick", action="store_true", help="2048 training and 1000 test images: a smoke run")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch even if it is installed")
    ap.add_argument("--reps", type=int, help="batches per conv-against-GEMM figure (default 30; quick: 3)")
    ap.add_argument("--predict-reps", type=int, help="timed inference runs (default 5; quick: 2)")
    ap.add_argument("--clock", choices=CLOCKS, default="cpu",
                    help="clock of the epoch split and the conv-against-GEMM figures (default: cpu, this process's CPU time)")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--init", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.epochs = args.epochs or (1 if args.quick else 3)
    args.reps = args.reps or (3 if args.quick else 30)
    args.predict_reps = args.predict_reps or (2 if args.quick else 5)
    if args.torch_worker:
        return torch_worker(args)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(args.threads or None, user_api="blas"):
        run(args)


if __name__ == "__main__":
    main()
