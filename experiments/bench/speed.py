"""How fast fnn trains and predicts, side by side with the matrix products alone and with PyTorch.

    python experiments/bench/speed.py              # the full run recorded in experiments/README.md
    python experiments/bench/speed.py --quick      # a smoke run of a few seconds (CI)
    python experiments/bench/speed.py --profile    # also: where one fnn epoch's time goes (cProfile)

For each architecture (784-128-64-10 and 784-256-128-64-10 on MNIST, Adam,
batch 128, float32) it times, in one run and interleaved epoch by epoch:

- GEMM only: the same matrix products as a training epoch (469 steps: forward
  ``x @ w`` per layer, backward ``x.T @ dy`` per layer and ``dy @ w.T`` for all
  but the first), into preallocated buffers, on batches gathered beforehand;
- fnn through its public API: ``fnn.make_inplace_train_step`` + ``fnn.batching.iterate_batches``
  sharing one ``fnn.Workspace`` (shuffled uint8 batches converted per batch; the step also
  reports loss and accuracy); and once, for the first architecture, the pure ``fnn.make_train_step``;
- a hand-written NumPy loop with no framework (the same model, Adam and batches,
  every buffer made once): the floor NumPy itself sets, to measure fnn against;
- PyTorch CPU, if installed: the same model, Adam, shuffled uint8 batches, loss
  and accuracy per step, in a process of its own (its OpenMP threads spin after
  each call and would slow NumPy's BLAS threads in the same process) that runs
  one epoch at a time on request, so that its epochs interleave with the others
  and a machine that slows down for a minute slows all four alike;

then ``fit_config`` and ``fnn-cli fit`` (``--val-split 0``, so 469 steps an epoch), in three
rounds that take turns with epochs of the public loop (:func:`cli_figures`).
Each figure is the median of ``--epochs`` epochs after a warm-up epoch, with min and max.
Then single-sample predict latency (one 784-vector in, a label out) and batch-10000
inference, each beside the same prediction written by hand in NumPy on the same
weights (call for call interleaved: the floor NumPy sets on this machine at this
minute; one-vector latency in ten windows 0.3 s apart, with the fastest window
too, as this VM switches between a fast and a slow mode within seconds), and the
peak RSS of ``fnn-cli fit --arch 784,128,64,10`` (read from ``wait4``'s rusage of
that process). Nothing here asserts a time: it prints figures.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np

import fnn
from fnn import batching, datasets, losses, optim, random

ARCHS = ([784, 128, 64, 10], [784, 256, 128, 64, 10])
BATCH = 128


def arch_name(arch):
    return "-".join(map(str, arch))


def spread(times):
    """``median (min-max)`` in seconds."""
    return f"{statistics.median(times):.3f} s ({min(times):.3f}-{max(times):.3f})"


def stolen_seconds():
    """CPU time the hypervisor gave to other guests so far (``steal`` in /proc/stat), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            return int(f.readline().split()[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def machine_lines(threads):
    from threadpoolctl import threadpool_info

    blas = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} x{i.get('num_threads')}" for i in threadpool_info()]
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    core = os.environ.get("OPENBLAS_CORETYPE")
    return [
        f"numpy {np.__version__}, BLAS: {'; '.join(blas) or 'unknown'}{f', OPENBLAS_CORETYPE={core}' if core else ''}",
        f"cores: {os.cpu_count()}, BLAS threads: {threads or 'default'}, load average (1, 5, 15 min): {load}",
    ]


# ---------------------------------------------------------------- the three epochs


class GemmOnly:
    """The matrix products of one training epoch and nothing else, into buffers made once."""

    def __init__(self, arch, x_float, n):
        rng = np.random.default_rng(0)
        self.ws = [rng.standard_normal((a, b)).astype(np.float32) * 0.05 for a, b in zip(arch[:-1], arch[1:])]
        self.batches = [np.ascontiguousarray(x_float[i : i + BATCH]) for i in range(0, n, BATCH)]
        self.grads = [np.empty_like(w) for w in self.ws]
        self.out = {}
        for size in {len(b) for b in self.batches}:
            for i, w in enumerate(self.ws):
                self.out[size, i] = np.empty((size, w.shape[1]), np.float32), np.empty((size, w.shape[0]), np.float32)

    def epoch(self):
        for x in self.batches:
            hs = [x]
            for i, w in enumerate(self.ws):
                hs.append(np.matmul(hs[-1], w, out=self.out[len(x), i][0]))
            d = hs[-1]
            for i in reversed(range(len(self.ws))):
                np.matmul(hs[i].T, d, out=self.grads[i])
                if i:
                    d = np.matmul(d, self.ws[i].T, out=self.out[len(x), i][1])


class FnnApi:
    """fnn's public training loop: the in-place train step fed by the seeded uint8 batch iterator, one workspace for both.

    ``pure=True`` runs the pure ``fnn.make_train_step`` instead (new arrays every step): the reference.
    """

    def __init__(self, arch, x, y, pure=False):
        self.model = fnn.mlp(arch)
        _, self.params = self.model.init(random.key(0), (-1, arch[0]))
        self.opt = optim.adam(1e-3)
        self.state = self.opt.init(self.params)
        self.ws = None if pure else fnn.Workspace()
        make = fnn.make_train_step if pure else fnn.make_inplace_train_step
        self.step = make(self.model, losses.softmax_cross_entropy, self.opt, **({} if pure else {"workspace": self.ws.child("step")}))
        self.x, self.y, self.epochs = x, y, 0

    def epoch(self):
        key = random.fold_in(random.key(1), self.epochs)
        params, state = self.params, self.state
        batch_ws = {} if self.ws is None else {"ws": self.ws.child("batches")}
        for batch in batching.iterate_batches(self.x, self.y, BATCH, key, transform=batching.to_float, **batch_ws):
            params, state, _ = self.step(params, state, batch)
        self.params, self.state, self.epochs = params, state, self.epochs + 1

    def accuracy(self, x_test, y_test):
        return float(np.mean(fnn.predict(self.model, self.params, x_test) == y_test))


class HandWritten:
    """The floor for NumPy: one hand-written loop, no framework, every buffer made once.

    The same model, Adam and shuffled uint8 batches as fnn, with nothing but the
    arithmetic: the yardstick for how much of fnn's time is its own.
    """

    def __init__(self, arch, x, y):
        rng = np.random.default_rng(0)
        self.ws = [(rng.standard_normal((a, b)) * np.sqrt(2 / a)).astype(np.float32) for a, b in zip(arch[:-1], arch[1:])]
        self.bs = [np.zeros(b, np.float32) for b in arch[1:]]
        params = self.ws + self.bs
        self.m, self.v = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]
        self.tmp = [np.empty_like(p) for p in params]
        self.x, self.y, self.epochs, self.count = x.reshape(len(x), -1), y, 0, 0
        self.xu, self.xf = np.empty((BATCH, arch[0]), np.uint8), np.empty((BATCH, arch[0]), np.float32)
        self.hs = [np.empty((BATCH, b), np.float32) for b in arch[1:]]
        self.ds = [np.empty((BATCH, a), np.float32) for a in arch[:-1]]
        self.gw, self.gb = [np.empty_like(w) for w in self.ws], [np.empty_like(b) for b in self.bs]
        self.ones = np.ones(BATCH, np.float32)

    def step(self, idx):
        n, last = len(idx), len(self.ws) - 1
        xu, xf = self.xu[:n], self.xf[:n]
        np.take(self.x, idx, axis=0, out=xu, mode="clip")
        np.copyto(xf, xu, casting="unsafe")
        xf *= np.float32(1 / 255)
        hs = [xf]
        for i, (w, b) in enumerate(zip(self.ws, self.bs)):
            h = np.matmul(hs[-1], w, out=self.hs[i][:n])
            h += b
            if i < last:
                np.maximum(h, 0, out=h)
            hs.append(h)
        z, labels, rows = hs[-1], self.y[idx], np.arange(n)
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.log(p[rows, labels]).mean()
        p[rows, labels] -= 1
        d = p * np.float32(1 / n)
        for i in reversed(range(len(self.ws))):
            np.matmul(hs[i].T, d, out=self.gw[i])
            np.matmul(self.ones[:n], d, out=self.gb[i])
            if i:
                d = np.matmul(d, self.ws[i].T, out=self.ds[i][:n])
                d *= hs[i] > 0
        self.count += 1
        c1, c2 = 1 - 0.9**self.count, 1 - 0.999**self.count
        k, e = c1 / np.sqrt(c2), 1e-8 * c1
        for p, g, m, v, t in zip(self.ws + self.bs, self.gw + self.gb, self.m, self.v, self.tmp):
            m *= 0.9
            m += np.multiply(g, 0.1, out=t)
            v *= 0.999
            v += np.multiply(np.multiply(g, g, out=t), 0.001, out=t)
            np.divide(m, np.add(np.multiply(np.sqrt(v, out=t), k, out=t), e, out=t), out=t)
            t *= np.float32(-1e-3)
            p += t
        return loss, np.count_nonzero(z.argmax(axis=1) == labels) / n

    def epoch(self):
        order = random.permutation(random.fold_in(random.key(1), self.epochs), len(self.y))
        for s in range(0, len(order), BATCH):
            self.step(order[s : s + BATCH])
        self.epochs += 1

    def accuracy(self, x_test, y_test):
        return float(np.mean(hand_predict(self.ws, self.bs)(x_test) == y_test))


class Torch:
    """The same model, optimizer and batches in PyTorch on the CPU."""

    def __init__(self, arch, x, y, threads):
        import torch
        from torch import nn

        self.torch = torch
        if threads:
            torch.set_num_threads(threads)
        torch.manual_seed(0)
        mods = []
        for a, b in zip(arch[:-1], arch[1:]):
            mods += [nn.Linear(a, b), nn.ReLU()]
        self.model = nn.Sequential(*mods[:-1])
        try:
            self.opt, self.fused = torch.optim.Adam(self.model.parameters(), lr=1e-3, fused=True), "fused"
        except (RuntimeError, TypeError, ValueError):
            self.opt, self.fused = torch.optim.Adam(self.model.parameters(), lr=1e-3), "foreach"
        self.x = torch.from_numpy(x.reshape(len(x), -1).copy())
        self.y = torch.from_numpy(y.astype(np.int64))
        self.epochs = 0

    def epoch(self):
        torch, n = self.torch, len(self.y)
        order = torch.from_numpy(random.permutation(random.fold_in(random.key(1), self.epochs), n))
        for s in range(0, n, BATCH):
            idx = order[s : s + BATCH]
            xb = self.x.index_select(0, idx).float().mul_(1 / 255)
            yb = self.y.index_select(0, idx)
            self.opt.zero_grad(set_to_none=True)
            logits = self.model(xb)
            loss = torch.nn.functional.cross_entropy(logits, yb)
            loss.backward()
            self.opt.step()
            loss.item(), (logits.argmax(1) == yb).float().mean().item()
        self.epochs += 1

    def predict(self, x):
        with self.torch.no_grad():
            return self.model(self.torch.from_numpy(x)).argmax(1).numpy()


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def torch_worker(arch, quick, threads, data):
    """Run in a process of its own, one request a line on stdin: ``epoch`` trains one epoch and prints its
    seconds; ``finish`` prints the predictions' figures and the rest as one JSON line, and ends."""
    x, y, x_test, y_test = load(quick, data)
    run = Torch(arch, x, y, threads)
    torch = run.torch
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip() != "epoch":
            break
        print(json.dumps({"seconds": timed(run.epoch)}), flush=True)
    x_test = batching.to_float(x_test)
    one = x_test[:1].copy()
    with torch.no_grad():
        single = latency_us(lambda: int(run.model(torch.from_numpy(one)).argmax(1)[0]), 300 if quick else 3000)
    batch = batch_ms(lambda: run.predict(x_test), 5 if quick else 30)
    accuracy = float(np.mean(run.predict(x_test) == y_test))
    print(json.dumps({"adam": run.fused, "threads": torch.get_num_threads(), "version": torch.__version__,
                      "accuracy": accuracy, "single": single, "batch": batch}), flush=True)


class TorchProcess:
    """PyTorch's epochs in a process of its own, one at a time on request, so that they interleave with fnn's.

    Its own process: PyTorch's OpenMP threads spin after each call, and would
    slow NumPy's BLAS threads in the same process. After each of its epochs
    this process waits ``SETTLE`` seconds, so that the spinning has stopped
    before the next figure is timed.
    """

    SETTLE = 0.3

    def __init__(self, arch, quick, threads, data):
        cmd = [sys.executable, __file__, "--torch-worker", arch_name(arch)]
        cmd += (["--quick"] if quick else []) + (["--threads", str(threads)] if threads else [])
        cmd += ["--data", data] if data.endswith(".npz") else []
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._answer()

    def _answer(self):
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError(f"failed: {self.proc.stderr.read().strip().splitlines()[-1:] or self.proc.returncode}")
        return json.loads(line)

    def epoch(self):
        """One PyTorch epoch; returns its seconds as the worker timed them."""
        self.proc.stdin.write("epoch\n")
        self.proc.stdin.flush()
        seconds = self._answer()["seconds"]
        time.sleep(self.SETTLE)
        return seconds

    def finish(self):
        self.proc.stdin.write("finish\n")
        self.proc.stdin.flush()
        out = self._answer()
        self.proc.wait()
        return out


def start_torch(arch, quick, threads, data):
    """A :class:`TorchProcess`, or a line saying why there is none."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return "not installed (pip install torch)"
    try:
        return TorchProcess(arch, quick, threads, data)
    except RuntimeError as error:
        return str(error)


def interleaved(runners, epochs, own_timers=()):
    """One warm-up epoch each, then ``epochs`` rounds of one epoch each: ``{name: [seconds, ...]}``.

    The runners named in ``own_timers`` return their own seconds (another process's epoch).
    """
    for run in runners.values():
        run()
    times = {name: [] for name in runners}
    for _ in range(epochs):
        for name, run in runners.items():
            times[name].append(run() if name in own_timers else timed(run))
    return times


# ---------------------------------------------------------------- fit and the CLI


class EpochSeconds:
    """A fit callback collecting each epoch's ``seconds``."""

    def __init__(self):
        self.seconds = []

    def on_epoch_end(self, epoch, record):
        self.seconds.append(record["seconds"])


def fit_epochs(arch, epochs, dataset, threads):
    from fnn.training.config import FitConfig
    from fnn.training.experiment import fit_config

    times = EpochSeconds()
    with tempfile.TemporaryDirectory() as tmp:
        config = FitConfig.from_dict({"arch": arch, "epochs": epochs + 1, "val_split": 0.0, "dataset": dataset})
        summary = fit_config(config, Path(tmp) / "run", callbacks=[times], threads=threads)
    return times.seconds[1:], summary["test_accuracy"]


def cli_command():
    exe = shutil.which("fnn-cli")
    return [exe] if exe else [sys.executable, "-c", "import sys; from fnn_cli.main import cli; sys.exit(cli())"]


# A child's ru_maxrss counts the memory of the process it was forked from until its exec, so
# fnn-cli is started by this small launcher, whose own size is the floor of the figure.
LAUNCHER = """import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_cli(args):
    """Run ``fnn-cli args``; returns (exit code, peak RSS of that process in MB, its output)."""
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile("w+") as log:
        rss_file = f"{tmp}/maxrss"
        code = subprocess.call([sys.executable, "-c", LAUNCHER, rss_file] + cli_command() + args, stdout=log, stderr=subprocess.STDOUT)
        log.seek(0)
        rss = int(open(rss_file).read()) / 1024 if os.path.exists(rss_file) else float("nan")
        return code, rss, log.read()


def cli_epochs(arch, epochs, dataset, threads):
    """Seconds of each timed epoch of ``fnn-cli fit --val-split 0``, and that process's peak RSS in MB."""
    with tempfile.TemporaryDirectory() as tmp:
        args = ["fit", "--arch", ",".join(map(str, arch)), "--epochs", str(epochs + 1), "--val-split", "0",
                "--dataset", dataset, "--out", f"{tmp}/run", "--quiet"] + (["--threads", str(threads)] if threads else [])
        code, rss, out = run_cli(args)
        if code:
            raise RuntimeError(f"fnn-cli fit failed ({code}): {out[-500:]}")
        records = [json.loads(line) for line in open(f"{tmp}/run/metrics.jsonl")]
    return [r["seconds"] for r in records[1:]], rss


# ---------------------------------------------------------------- inference


def latency_us(fns, calls, samples=False):
    """``{name: (median, 10th, 90th percentile)}`` of single calls in microseconds, the functions taking turns call by call.

    ``fns`` is ``{name: f}``, or one function (then one such triple). ``samples``: every call's time instead.
    """
    many = isinstance(fns, dict)
    fns = fns if many else {"": fns}
    for _ in range(min(calls, 200)):
        for fn in fns.values():
            fn()
    ts = taking_turns(fns, calls, lambda fn: timed(fn) * 1e6)
    out = {name: sorted(t) if samples else quantiles(sorted(t)) for name, t in ts.items()}
    return out if many else out[""]


def taking_turns(fns, rounds, time_one):
    """``{name: [time_one(f), ...]}`` over ``rounds`` rounds of ``{name: f}`` taking turns.

    The order flips every round, so that neither function always runs in the caches the other left.
    """
    turns = list(fns.items()), list(fns.items())[::-1]
    ts = {name: [] for name in fns}
    for i in range(rounds):
        for name, fn in turns[i % 2]:
            ts[name].append(time_one(fn))
    return ts


def quantiles(t):
    """``(median, 10th, 90th percentile)`` of the sorted list ``t``."""
    return t[len(t) // 2], t[len(t) // 10], t[9 * len(t) // 10]


def batch_ms(fns, repeat):
    """``{name: (median, min, max)}`` in milliseconds over ``repeat`` calls each, taking turns; or one triple for one function."""
    many = isinstance(fns, dict)
    fns = fns if many else {"": fns}
    for fn in fns.values():
        fn()
    ts = taking_turns(fns, repeat, lambda fn: timed(fn) * 1e3)
    out = {name: (statistics.median(t), min(t), max(t)) for name, t in ts.items()}
    return out if many else out[""]


# ---------------------------------------------------------------- the run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of a few seconds")
    ap.add_argument("--epochs", type=int, help="timed epochs per figure, after one warm-up [default: 5; quick: 3]")
    ap.add_argument("--threads", type=int, help="BLAS (and PyTorch) threads [default: the libraries' own]")
    ap.add_argument("--arch", action="append", help="only this architecture, e.g. 784,128,64,10 (repeatable)")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch even if it is installed")
    ap.add_argument("--no-cli", action="store_true", help="skip fit_config, fnn-cli fit and the RSS run")
    ap.add_argument("--profile", action="store_true", help="cProfile one fnn epoch per architecture")
    ap.add_argument("--torch-worker", metavar="ARCH", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    epochs = args.epochs or (3 if args.quick else 5)
    if epochs < 3:
        ap.error("--epochs must be at least 3")
    limit = nullcontext()
    if args.threads:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(limits=args.threads)
    with limit, tempfile.TemporaryDirectory() as tmp:
        if args.torch_worker:
            torch_worker([int(a) for a in args.torch_worker.split("-")], args.quick, args.threads, args.data)
        else:
            run(args, epochs, tmp)


def load(quick, npz=None):
    """MNIST as uint8 ``(x, y, x_test, y_test)``; with ``quick``, 2048 training and 1000 test examples.

    ``npz`` is the quick run's subset, saved once for the processes it starts.
    """
    if npz:
        with np.load(npz) as f:
            return f["x"], f["y"], f["x_test"], f["y_test"]
    ds = datasets.load("mnist")
    if quick:
        return ds.x_train[:2048], ds.y_train[:2048], ds.x_test[:1000], ds.y_test[:1000]
    return ds.x_train, ds.y_train, ds.x_test, ds.y_test


def run(args, epochs, tmp):
    t_start, stolen = time.perf_counter(), stolen_seconds()
    x, y, x_test, y_test = load(args.quick)
    archs, dataset = ARCHS, "mnist"
    if args.arch:
        archs = tuple([int(a) for a in arch.split(",")] for arch in args.arch)
    if args.quick:  # the subset, saved as a user dataset for the CLI
        archs, dataset = ([784, 32, 10],), f"{tmp}/mnist-2048.npz"
        np.savez(dataset, x=x, y=y, x_test=x_test, y_test=y_test)
    x_float, x_test_float = batching.to_float(x), batching.to_float(x_test)
    steps = batching.num_batches(len(y), BATCH)
    print(f"fnn speed: MNIST {len(y)} train / {len(y_test)} test, Adam, batch {BATCH} ({steps} steps an epoch), float32")
    for line in machine_lines(args.threads):
        print(line)
    print(f"epoch figures: median (min-max) of {epochs} epochs after one warm-up;"
          " GEMM, fnn, the hand-written loop and PyTorch interleaved\n")

    for arch in archs:
        name = arch_name(arch)
        torch_run = "skipped (--no-torch)" if args.no_torch else start_torch(arch, args.quick, args.threads, dataset)
        gemm, api, hand = GemmOnly(arch, x_float, len(y)), FnnApi(arch, x, y), HandWritten(arch, x, y)
        runners = {"GEMM only": gemm.epoch, "fnn API": api.epoch, "hand-written NumPy": hand.epoch}
        if isinstance(torch_run, TorchProcess):
            runners["PyTorch"] = torch_run.epoch
        times = interleaved(runners, epochs, own_timers=("PyTorch",))
        pt = torch_run
        if isinstance(torch_run, TorchProcess):
            pt = {**torch_run.finish(), "times": times.pop("PyTorch")}
        base, fnn_t = statistics.median(times["GEMM only"]), statistics.median(times["fnn API"])
        print(f"{name}:")
        for label, ts in times.items():
            print(f"  {label:<24} {spread(ts)}  {statistics.median(ts) / base:.2f}x GEMM")
        print(f"  fnn test accuracy        {api.accuracy(x_test_float, y_test):.4f} after {epochs + 1} epochs"
              f" (hand-written loop: {hand.accuracy(x_test_float, y_test):.4f})")
        if arch is archs[0]:
            print(f"  {'fnn pure step':<24} {plain_check(api, arch, x, y, epochs + 1, x_test_float, y_test)}")
        if isinstance(pt, dict):
            torch_t = statistics.median(pt["times"])
            print(f"  PyTorch {pt['version']} ({pt['adam']} Adam, {pt['threads']} thread(s), own process, interleaved)"
                  f"\n  {'':<24} {spread(pt['times'])}  {torch_t / base:.2f}x GEMM; fnn / PyTorch = {fnn_t / torch_t:.2f}")
            print(f"  PyTorch test accuracy    {pt['accuracy']:.4f} after {epochs + 1} epochs")
        else:
            print(f"  PyTorch                  {pt}")
        if not args.no_cli:
            cli_figures(api, arch, epochs, dataset, args.threads, base)
        if args.profile:
            profile_epoch(api)
        predict_figures(api, x_test_float, y_test, args.quick)
        if isinstance(pt, dict):
            print(f"  PyTorch predict          one vector median {pt['single'][0]:.1f} us; "
                  f"{len(y_test)} rows median {pt['batch'][0]:.1f} ms")
        print()

    if not args.no_cli and not args.quick:  # the main job exactly as the README starts it
        rss_args = ["fit", "--arch", "784,128,64,10", "--out", f"{tmp}/rss", "--quiet"]
        rss_args += ["--threads", str(args.threads)] if args.threads else []
        code, rss, out = run_cli(rss_args)
        print(f"peak RSS of fnn-cli {' '.join(rss_args[:3])}: {rss:.0f} MB" + ("" if code == 0 else f"  (exit {code}: {out[-300:]})"))
        for line in out.strip().splitlines()[-2:-1]:
            print(f"  {line}")
    steal = "" if stolen is None else f", {stolen_seconds() - stolen:.1f} s of CPU stolen by the hypervisor"
    print(f"load average at the end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}; "
          f"{time.perf_counter() - t_start:.0f} s in all{steal}")


def cli_figures(api, arch, epochs, dataset, threads, base):
    """``fit_config`` and ``fnn-cli fit`` against the public loop, in rounds of each in turn (one process each run).

    A run of ``fit_config`` or ``fnn-cli fit`` is a whole training, so its epochs
    cannot interleave with the loop's one by one; three rounds of loop epochs, a
    ``fit_config`` run and an ``fnn-cli fit`` run put all three in the same minutes.
    """
    per_round = 2 if epochs >= 5 else 1
    loop, fit, cli, rss = [], [], [], []
    for _ in range(3):
        loop += [timed(api.epoch) for _ in range(per_round)]
        fit += fit_epochs(arch, per_round, dataset, threads)[0]
        seconds, peak = cli_epochs(arch, per_round, dataset, threads)
        cli += seconds
        rss.append(peak)
    floor = statistics.median(loop)
    print(f"  fnn API, in those rounds {spread(loop)}  {floor / base:.2f}x GEMM")
    for label, ts in (("fit_config", fit), ("fnn-cli fit", cli)):
        t = statistics.median(ts)
        tail = f"  (peak RSS {max(rss):.0f} MB)" if label == "fnn-cli fit" else ""
        print(f"  {label:<24} {spread(ts)}  {t / base:.2f}x GEMM; {t / floor:.2f}x the loop{tail}")


def plain_check(run, arch, x, y, epochs, x_test_float, y_test):
    """Train the same epochs with the pure ``fnn.make_train_step`` (new arrays every step): same weights as the in-place loop?"""
    pure = FnnApi(arch, x, y, pure=True)
    t0 = time.perf_counter()
    for _ in range(epochs):
        pure.epoch()
    seconds = (time.perf_counter() - t0) / epochs
    same = fnn.tree.tree_equal(pure.params, run.params)
    return (f"{seconds:.3f} s an epoch, test accuracy {pure.accuracy(x_test_float, y_test):.4f}; "
            f"weights bit-identical to the in-place loop: {'yes' if same else 'NO'}")


def hand_predict(ws, bs):
    """Labels for a batch the way one writes it by hand in NumPy (each layer ``h @ w``, ``+= b``, ReLU in place), on given weights."""

    def predict(x):
        h = x
        for i, (w, b) in enumerate(zip(ws, bs)):
            h = h @ w
            h += b
            if i < len(ws) - 1:
                np.maximum(h, 0, out=h)
        return h.argmax(axis=1)

    return predict


def predict_figures(api, x_test_float, y_test, quick):
    """fnn.predict and the hand-written NumPy loop on the same trained weights, call for call interleaved."""
    model, params = api.model, api.params
    dense = [params[k] for k in sorted(params, key=int) if params[k]]
    hand = hand_predict([p["w"] for p in dense], [p["b"] for p in dense])
    assert np.array_equal(hand(x_test_float), fnn.predict(model, params, x_test_float)), "the same labels"
    one = np.ascontiguousarray(x_test_float[:1])
    fns = {"fnn": lambda: int(fnn.predict(model, params, one)[0]), "hand": lambda: int(hand(one)[0])}
    windows = []  # this VM switches between a fast and a slow mode from one second to the next: ten windows, 0.3 s apart
    for _ in range(10):
        windows.append(latency_us(fns, 30 if quick else 300, samples=True))
        time.sleep(0.3)
    every = {name: quantiles(sorted(t for w in windows for t in w[name])) for name in fns}
    fastest = min(windows, key=lambda w: statistics.median(w["fnn"]))
    (med, p10, p90), hand_med = every["fnn"], every["hand"][0]
    print(f"  predict, one 784-vector  median {med:.1f} us (p10 {p10:.1f}, p90 {p90:.1f}); hand-written NumPy {hand_med:.1f} us")
    print(f"  {'':<24} fastest of 10 windows: {statistics.median(fastest['fnn']):.1f} us,"
          f" hand-written NumPy {statistics.median(fastest['hand']):.1f} us in that window")
    batch = batch_ms({"fnn": lambda: fnn.predict(model, params, x_test_float), "hand": lambda: hand(x_test_float)}, 5 if quick else 30)
    print(f"  predict, {len(y_test)} rows      median {batch['fnn'][0]:.1f} ms ({batch['fnn'][1]:.1f}-{batch['fnn'][2]:.1f}),"
          f" float32 in, labels out; hand-written NumPy {batch['hand'][0]:.1f} ms")


def profile_epoch(api):
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.runcall(api.epoch)
    total = time.perf_counter() - t0
    stats = pstats.Stats(prof)
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:12]
    print(f"  profile of one fnn epoch ({total:.3f} s under cProfile), by own time:")
    for (path, line, func), (_, ncalls, tottime, _cumtime, _) in rows:
        where = f"{Path(path).name}:{line}({func})" if path != "~" else func
        print(f"    {tottime / total * 100:5.1f}%  {tottime:.3f} s  {ncalls:>6} calls  {where}")


if __name__ == "__main__":
    main()
