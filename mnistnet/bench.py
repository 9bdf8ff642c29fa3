"""Benchmark: how fast one epoch trains, and what accuracy 30 epochs reach.

Introduced in ``notebooks/05-minibatch-vectorised.ipynb`` (its timing table
calls ``speed_table`` on a subset). From the shell::

    python -m mnistnet.bench              # speed, then accuracy (a few minutes)
    python -m mnistnet.bench --speed      # only the epoch timings
    python -m mnistnet.bench --accuracy --seeds 0 1 2
    python -m mnistnet.bench --accuracy --run ch3-cross-entropy-l2 --init normal --seeds 0 1 2
                                          # one run, from other starting weights (not judged)
    python -m mnistnet.bench --quick      # 10 000 images, 3 epochs: a smoke test
    make bench                            # the same as the first line

Speed compares, in the same run and on the same data, the vectorised
training of ``train.sgd`` (one matrix product per layer per mini-batch) with
the per-sample reference: the book's network.py loop, which backpropagates
each sample of a mini-batch on its own (``Network.backprop_loop``). Both time
only the mini-batch updates of one epoch (shuffling, gathering the batch,
backprop, update), not the evaluation.

Timings on a shared machine are noisy: the load average is printed with them.
"""

import argparse
import os
import sys
import time
import tracemalloc

import numpy as np
from threadpoolctl import threadpool_limits

from .network import INITS, Network
from .train import BLAS_THREADS, sgd

# The two accuracy benchmarks: the book's chapter 1 and chapter 3 networks.
ACCURACY_RUNS = {
    "ch1-quadratic": dict(sizes=[784, 30, 10], cost="quadratic", init="normal",
                          learning_rate=3.0, l2=0.0, batch_size=10, epochs=30, target=0.950),
    "ch3-cross-entropy-l2": dict(sizes=[784, 100, 10], cost="cross_entropy", init="scaled",
                                 learning_rate=0.5, l2=5.0, batch_size=10, epochs=30, target=0.979),
}


def load_average():
    """The 1-minute load average, as a string (others' jobs make timings noisy).

    "unknown" where the system does not say (Windows has no os.getloadavg).
    Printed by ``python -m mnistnet.bench``; not used in the notebooks.
    """
    try:
        return f"{os.getloadavg()[0]:.2f} (on {os.cpu_count()} cores)"
    except (OSError, AttributeError):
        return "unknown"


def _max_rss_mib():
    """The process's peak resident memory in MiB, or None where ``resource`` is missing (Windows)."""
    try:
        import resource               # Unix only: imported here, so the module imports anywhere
    except ImportError:
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024     # bytes on macOS, else KiB


def reference_epoch(net, X, y, batch_size, learning_rate, seed=None):
    """One epoch of the book's network.py: per mini-batch, backprop sample by sample.

    The per-sample reference that the vectorised ``train.sgd`` is timed against:
    same shuffling and update, but the mean gradient of each mini-batch comes
    from ``net.backprop_loop`` (``backprop_sample`` on each 1-D sample in turn).

    Inputs:
    - net: a Network, updated in place.
    - X: (n, n_in) training images; y: (n,) integer labels.
    - batch_size: B; learning_rate: η.
    - seed: for the shuffle.
    Returns:
    - (wall seconds, CPU seconds) taken.

    Not called in the notebooks; ``speed_table`` times it against ``train.sgd``.
    """
    rng = np.random.default_rng(seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    perm = rng.permutation(len(X))
    for k in range(0, len(X), batch_size):
        idx = perm[k:k + batch_size]
        nabla_w, nabla_b = net.backprop_loop(X[idx], y[idx])
        for W, b, nw, nb in zip(net.weights, net.biases, nabla_w, nabla_b):
            W -= learning_rate * nw
            b -= learning_rate * nb
    return time.perf_counter() - start, time.process_time() - cpu_start


def time_epoch(X, y, *, method="vectorised", sizes=(784, 30, 10), batch_size=10,
               learning_rate=3.0, dtype=np.float32, blas_threads=None, repeat=1, seed=0,
               clock="wall"):
    """Seconds for one training epoch on (X, y), best of ``repeat`` runs, each from a fresh network.

    Inputs:
    - X: (n, n_in) images; y: (n,) integer labels (use a subset for a quick table).
    - method: "vectorised" (``train.sgd``) or "per-sample" (``reference_epoch``).
    - sizes, batch_size, learning_rate, dtype: the network and its training.
    - blas_threads: numpy BLAS threads (None: sgd's default, BLAS_THREADS = 1).
    - repeat: runs; the fastest is returned (the least disturbed by other jobs).
    - seed: network and shuffle seed.
    - clock: "wall" (elapsed time), "cpu" (CPU time of the process, less disturbed
      by other jobs on a shared machine), or "both".
    Returns:
    - seconds (a float; a (wall, cpu) pair for "both"): the mini-batch updates
      only, not the evaluation; the run with the least wall time is reported.

    Not called in the notebooks; ``speed_table`` calls it for each row.
    """
    if clock not in ("wall", "cpu", "both"):
        raise ValueError(f"clock must be 'wall', 'cpu' or 'both', got {clock!r}")
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        net = Network(list(sizes), seed=seed, dtype=dtype)
        if method == "vectorised":
            history = sgd(net, (X, y), 1, batch_size, learning_rate, seed=seed,
                          blas_threads=blas_threads or BLAS_THREADS)
            seconds = history.seconds[0], history.cpu_seconds[0]
        elif method == "per-sample":
            Xd = np.asarray(X, dtype=dtype)
            threads = blas_threads or 1
            with threadpool_limits(limits=threads, user_api="blas"):
                seconds = reference_epoch(net, Xd, y, batch_size, learning_rate, seed=seed)
        else:
            raise ValueError(f"method must be 'vectorised' or 'per-sample', got {method!r}")
        best = min(best, seconds)
    return {"wall": best[0], "cpu": best[1], "both": best}[clock]


def epoch_memory(X, y, *, sizes=(784, 30, 10), batch_size=10, dtype=np.float32):
    """Peak memory that numpy allocates during one vectorised epoch, by tracemalloc, in bytes.

    Measured in a separate, untimed epoch (tracemalloc slows numpy down). It
    counts the arrays sgd allocates (the one-hot targets, a float copy of X if
    its dtype differs, the mini-batches, the evaluation), not X itself.

    Inputs: X (n, n_in), y (n,); sizes, batch_size, dtype as ``time_epoch``.
    Returns: bytes (an int).

    Not called in the notebooks; ``python -m mnistnet.bench --speed`` prints it.
    """
    net = Network(list(sizes), seed=0, dtype=dtype)
    tracemalloc.start()
    try:
        sgd(net, (X, y), 1, batch_size, 3.0, seed=0)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def speed_table(X, y, *, sizes=(784, 30, 10), batch_sizes=(10, 128), dtype=np.float32,
                per_sample=True, threads=(None,), repeat=1, seed=0):
    """One row per (method, batch size, BLAS threads): seconds per epoch and speed-up.

    Inputs:
    - X: (n, n_in) images, y: (n,) labels; n = 50 000 for the real benchmark, a subset in notebooks.
    - sizes, dtype: the network.
    - batch_sizes: the vectorised runs; the per-sample reference runs at the first one.
    - per_sample: also time the per-sample reference (slow: ~3 s per 50 000 images).
    - threads: BLAS thread counts to try for the vectorised runs (None: sgd's default, 1).
    - repeat: best of this many runs per row.
    Returns:
    - rows: list of dicts with keys method, batch_size, threads, images,
      seconds (wall), cpu_seconds, us_per_image (wall), speedup and cpu_speedup
      (the per-sample reference's time over this row's, when it ran).

    Introduced in ``notebooks/05-minibatch-vectorised.ipynb``.
    """
    n = len(X)
    rows = []
    if per_sample:
        wall, cpu = time_epoch(X, y, method="per-sample", sizes=sizes, dtype=dtype, clock="both",
                               batch_size=batch_sizes[0], repeat=repeat, seed=seed)
        rows.append(dict(method="per-sample", batch_size=batch_sizes[0], threads=1,
                         seconds=wall, cpu_seconds=cpu))
    for B in batch_sizes:
        for th in threads:
            wall, cpu = time_epoch(X, y, sizes=sizes, batch_size=B, dtype=dtype, clock="both",
                                   blas_threads=th, repeat=repeat, seed=seed)
            shown = th if th is not None else BLAS_THREADS
            rows.append(dict(method="vectorised", batch_size=B, threads=shown,
                             seconds=wall, cpu_seconds=cpu))
    reference = rows[0] if per_sample else None
    for row in rows:
        row["images"] = n
        row["us_per_image"] = 1e6 * row["seconds"] / n
        row["speedup"] = reference["seconds"] / row["seconds"] if reference else None
        row["cpu_speedup"] = reference["cpu_seconds"] / row["cpu_seconds"] if reference else None
    return rows


def epoch_gflop(n, sizes):
    """Floating-point work of one training epoch on n images, in GFLOP (2 flops per multiply-add).

    Per image and layer l: the forward product (n_l · n_(l−1) multiply-adds)
    and the weight gradient (the same); the error is sent back through every
    layer but the first (δ^0, the input's, is never needed). Elementwise work
    is left out: it is small next to the products.

    Inputs: n images; sizes, e.g. [784, 30, 10]. Returns: a float.

    Not called in the notebooks; ``python -m mnistnet.bench --speed`` prints it.
    """
    macs = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 2 * n * (2 * sum(macs) + sum(macs[1:])) / 1e9


def format_table(rows, columns):
    """rows: list of dicts; columns: list of (key, header, format). Returns the text table.

    Introduced in ``notebooks/05-minibatch-vectorised.ipynb``.
    """
    cells = [[h for _, h, _ in columns]]
    for r in rows:
        cells.append([("" if r.get(k) is None else f.format(r[k])) for k, _, f in columns])
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def accuracy_run(name, data, seed, epochs=None, dtype=np.float32, verbose=False, init=None):
    """Train one of ACCURACY_RUNS from scratch; return a result row.

    Two test accuracies are reported, neither chosen by looking at the test set:
    after the last epoch, and after the epoch with the best *validation*
    accuracy (early stopping on the 10 000 validation images).

    Inputs:
    - name: a key of ACCURACY_RUNS.
    - data: load_mnist()'s ((X, y), (X_val, y_val), (X_test, y_test)), X (n, 784).
    - seed: network and shuffle seed.
    - epochs: override the number of epochs (None: 30, as the book).
    - dtype: parameters' dtype (float32: about twice as fast, same accuracy).
    - init: override the run's initialisation ("normal", "scaled", "uniform"; None: the run's own).
    Returns:
    - a dict: name, seed, epochs, init, test (after the last epoch), test_at_best_val,
      best_val, best_epoch, last_val, s_per_epoch, target.

    Not called in the notebooks (30 epochs are too long for a cell);
    ``python -m mnistnet.bench --accuracy`` runs it for each seed.
    """
    cfg = dict(ACCURACY_RUNS[name])
    epochs = cfg["epochs"] if epochs is None else epochs
    cfg["init"] = cfg["init"] if init is None else init
    (X, y), validation, (X_test, y_test) = data
    net = Network(cfg["sizes"], cost=cfg["cost"], init=cfg["init"], seed=seed, dtype=dtype)
    best = {"val": -1.0}

    def callback(progress):
        val = progress.history.accuracy[-1]
        if val > best["val"]:
            best.update(val=val, epoch=progress.epoch, test=progress.net.accuracy(X_test, y_test))
        if verbose:
            print(f"    epoch {progress.epoch:2d}: cost {progress.history.cost[-1]:.4f}, "
                  f"validation {100 * val:.2f}%", flush=True)

    history = sgd(net, (X, y), epochs, cfg["batch_size"], cfg["learning_rate"], l2=cfg["l2"],
                  validation_data=validation, seed=seed, callback=callback)
    return dict(name=name, seed=seed, epochs=epochs, init=cfg["init"], dtype=np.dtype(dtype).name,
                test=net.accuracy(X_test, y_test), test_at_best_val=best["test"],
                best_val=best["val"], best_epoch=best["epoch"], last_val=history.accuracy[-1],
                s_per_epoch=float(np.mean(history.seconds)), target=cfg["target"])


def run_speed(data, args):
    """Print the speed table, the FLOP count and the peak memory (``--speed``).

    Inputs:
    - data: ``load_mnist()``'s ((X, y), validation, test), X (50 000, 784) float32.
    - args: the parsed command line (uses quick, threads, repeat).

    The command line only; not called in the notebooks.
    """
    (X, y), _, _ = data
    if args.quick:
        X, y = X[:10_000], y[:10_000]
    print(f"\n== Speed: one epoch of {len(X)} images, [784, 30, 10], η = 3, float32 "
          f"(load average {load_average()} before)")
    threads = (1, 2) if args.threads else (1,)
    batch_sizes = (10, 128, 1024) if args.threads else (10, 128)
    rows = speed_table(X, y, batch_sizes=batch_sizes, threads=threads, repeat=args.repeat)
    print(format_table(rows, [("method", "method", "{}"), ("batch_size", "batch", "{}"),
                              ("threads", "BLAS threads", "{}"), ("seconds", "s/epoch", "{:.3f}"),
                              ("us_per_image", "µs/image", "{:.1f}"),
                              ("speedup", "speed-up", "{:.1f}×"),
                              ("cpu_seconds", "CPU s/epoch", "{:.3f}"),
                              ("cpu_speedup", "CPU speed-up", "{:.1f}×")]))
    print("speed-up: the per-sample reference's time / this row's time (same run, same data)")
    gflop = epoch_gflop(len(X), [784, 30, 10])
    print(f"work: {gflop:.2f} GFLOP per epoch, i.e. {gflop / 150 * 1e3:.0f} ms at 150 GFLOP/s "
          f"(one core's float32 FMA peak, about); best row above: "
          f"{gflop / min(r['seconds'] for r in rows):.1f} GFLOP/s")
    peak = epoch_memory(X, y, batch_size=10)
    rss = _max_rss_mib()
    rss = "unknown" if rss is None else f"{rss:.0f} MiB"
    print(f"peak memory: tracemalloc peak of numpy allocations during one epoch "
          f"(batch 10, untimed run): {peak / 2**20:.1f} MiB; process max RSS so far "
          f"(resource.getrusage, includes the data set and Python): {rss}")
    print(f"load average after: {load_average()}")


def run_accuracy(data, args):
    """Train the chosen ACCURACY_RUNS (all by default) for every seed; print the table and verdicts.

    Inputs:
    - data: ``load_mnist()``'s ((X, y), (X_val, y_val), (X_test, y_test)), X (n, 784).
    - args: the parsed command line (uses quick, epochs, seeds, runs, init, verbose).
    Returns:
    - True unless a 30-epoch run with its own settings missed its target on the mean
      test accuracy over the seeds.

    The command line only; not called in the notebooks.
    """
    epochs = 3 if args.quick else args.epochs
    print(f"\n== Accuracy: {epochs} epochs, batch 10, float32, seeds {args.seeds} "
          f"(load average {load_average()})")
    print("   test = after the last epoch; test@val = after the epoch with the best validation "
          "accuracy (early stopping; the test set is never used to choose)")
    names = args.runs or list(ACCURACY_RUNS)
    if args.init:
        print(f"   every run starts from init={args.init!r} (targets are not judged for a "
              f"changed initialisation)")
    rows = []
    for name in names:
        for seed in args.seeds:
            row = accuracy_run(name, data, seed, epochs=epochs, verbose=args.verbose,
                               init=args.init)
            print(f"  {name} seed {seed}: test {100 * row['test']:.2f}%, "
                  f"test@val {100 * row['test_at_best_val']:.2f}%", flush=True)
            rows.append(row)
    print(format_table(rows, [("name", "run", "{}"), ("seed", "seed", "{}"),
                              ("test", "test", "{:.2%}"), ("test_at_best_val", "test@val", "{:.2%}"),
                              ("best_epoch", "val. best at", "{}"), ("best_val", "val.", "{:.2%}"),
                              ("last_val", "val. last", "{:.2%}"), ("s_per_epoch", "s/epoch", "{:.2f}")]))
    met = True
    for name in names:
        cfg = ACCURACY_RUNS[name]
        mine = [r for r in rows if r["name"] == name]
        final = np.mean([r["test"] for r in mine])
        chosen = np.mean([r["test_at_best_val"] for r in mine])
        last_val = np.mean([r["last_val"] for r in mine])
        spread = (f"sd {100 * np.std([r['test'] for r in mine], ddof=1):.2f}, "
                  if len(mine) > 1 else "")
        above = sum(r["test"] >= cfg["target"] for r in mine)
        verdict = ("not judged (fewer than 30 epochs)" if epochs < 30 else
                   f"not judged (init {mine[0]['init']!r}, the target is for "
                   f"{cfg['init']!r})" if mine[0]["init"] != cfg["init"] else
                   "met" if final >= cfg["target"] else "MISSED")
        met &= verdict != "MISSED"
        print(f"  {name}: mean test accuracy over {len(mine)} seed(s) {100 * final:.2f}% "
              f"({spread}min {100 * min(r['test'] for r in mine):.2f}%, max "
              f"{100 * max(r['test'] for r in mine):.2f}%; {above}/{len(mine)} seeds ≥ target), "
              f"test@val {100 * chosen:.2f}%, final validation {100 * last_val:.2f}%; "
              f"target {100 * cfg['target']:.1f}%: {verdict}")
    print(f"load average after: {load_average()}")
    return met


def _at_least_one(text):
    """argparse type: a whole number >= 1 (0 epochs would leave nothing to report)."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return n


def main(argv=None):
    """``python -m mnistnet.bench [--speed] [--accuracy] [--quick] [--seeds S ...]``.

    Returns the exit code: 0, or 1 if the mean test accuracy of a 30-epoch
    accuracy benchmark over the seeds missed its target.

    The command line (``make bench``); not called in the notebooks.
    """
    parser = argparse.ArgumentParser(prog="python -m mnistnet.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--speed", action="store_true", help="time one epoch (vectorised and per-sample)")
    parser.add_argument("--accuracy", action="store_true", help="train the book's two networks for 30 epochs")
    parser.add_argument("--quick", action="store_true", help="10 000 images for speed, 3 epochs for accuracy")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="seeds for the accuracy runs; the target is judged on their mean")
    parser.add_argument("--run", dest="runs", action="append", choices=list(ACCURACY_RUNS),
                        help="accuracy: only this run (repeat the option for several; default: all)")
    parser.add_argument("--init", choices=INITS,
                        help="accuracy: start every run from this initialisation instead of its own")
    parser.add_argument("--epochs", type=_at_least_one, default=30,
                        help="epochs for the accuracy runs (at least 1)")
    parser.add_argument("--repeat", type=_at_least_one, default=3,
                        help="speed: best of this many runs per row (at least 1)")
    parser.add_argument("--threads", action="store_true", help="speed: also time with 2 BLAS threads")
    parser.add_argument("--verbose", action="store_true", help="accuracy: print every epoch")
    args = parser.parse_args(argv)
    if not (args.speed or args.accuracy):
        args.speed = args.accuracy = True
    from . import load_mnist

    data = load_mnist(dtype=np.float32)
    ok = True
    if args.speed:
        run_speed(data, args)
    if args.accuracy:
        ok = run_accuracy(data, args)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
