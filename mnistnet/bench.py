"""Benchmark: how fast one epoch trains, and the accuracy the book's runs reach.

From the shell::

    python -m mnistnet.bench              # speed, then accuracy (several minutes; make bench)
    python -m mnistnet.bench --speed --baseline /tmp/old   # also time another checkout's sgd
    python -m mnistnet.bench --accuracy --run ch3-cross-entropy-l2 --init normal --seeds 0 1 2
    python -m mnistnet.bench --quick      # 10 000 images, 3 epochs: a smoke test

Speed times one epoch's updates (shuffle, gather, backprop, update) of ``train.sgd`` beside
the per-sample reference, the book's loop (``Network.backprop_loop``), on the same data; the
"monitor" column is what sgd spends besides (checks, set-up, evaluation). Accuracy judges
what the book measured (``ACCURACY_RUNS``). Timings are noisy: the load average is printed.
"""

import argparse
import importlib
import importlib.util
import os
import sys
import time
import tracemalloc

import numpy as np
from threadpoolctl import threadpool_limits

from .network import INITS, Network
from .tables import format_table as _text_table
from .train import BLAS_THREADS, sgd

# judge: "peak" = the best seed's peak-epoch test accuracy ≥ target and every seed's final
# one ≥ floor (the book's chapter 1 reports the peak epoch of its best run of three); "mean" =
# the mean final test accuracy over the seeds ≥ target. report_init: also run, not judged.
# learning_rate (a, k, b): η = a for the first k epochs, then b (notebook 07's schedule).
ACCURACY_RUNS = {
    "ch1-quadratic": dict(sizes=[784, 30, 10], cost="quadratic", output="sigmoid", init="normal",
                          learning_rate=3.0, l2=0.0, batch_size=10, epochs=30,
                          judge="peak", target=0.950, floor=0.940),
    "ch3-cross-entropy-l2": dict(sizes=[784, 100, 10], cost="cross_entropy", output="sigmoid",
                                 init="scaled", learning_rate=0.5, l2=5.0, batch_size=10,
                                 epochs=30, judge="mean", target=0.975, report_init="normal"),
    "nb07-softmax": dict(sizes=[784, 200, 10], cost="cross_entropy", output="softmax",
                         init="scaled", learning_rate=(0.5, 10, 0.1), l2=5.0, batch_size=10,
                         epochs=15, judge="mean", target=0.980),
}


def load_average():
    """The 1-minute load average as a string, "unknown" where the system does not say (Windows)."""
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
    """One epoch of the book's network.py, each mini-batch's gradient from ``net.backprop_loop``:
    net updated in place; X (n, n_in), y (n,). Returns (wall seconds, CPU seconds).
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
               epochs=1, package=None):
    """(wall s, CPU s, monitor s) of one training epoch on (X, y), the best of ``repeat`` fresh runs.

    - X: (n, n_in) images; y: (n,) integer labels.
    - method: "vectorised" (``train.sgd``, the mean epoch of an ``epochs``-epoch run)
      or "per-sample" (``reference_epoch``); blas_threads: None for BLAS_THREADS (1 per-sample).
    - package: another checkout's mnistnet (see ``load_package``) for "vectorised"; None: this one.
    Wall and CPU seconds are the updates only; monitor s is what sgd spent besides per
    epoch (checks, set-up, evaluation; None for "per-sample").
    """
    if method not in ("vectorised", "per-sample"):
        raise ValueError(f"method must be 'vectorised' or 'per-sample', got {method!r}")
    best = (float("inf"), float("inf"), None)
    for _ in range(repeat):
        if method == "vectorised":
            net_class, train = (Network, sgd) if package is None else \
                (package.network.Network, package.train.sgd)
            net = net_class(list(sizes), seed=seed, dtype=dtype)
            start = time.perf_counter()
            history = train(net, (X, y), epochs, batch_size, learning_rate, seed=seed,
                            blas_threads=blas_threads or BLAS_THREADS)
            total = time.perf_counter() - start
            seconds = (float(np.mean(history.seconds)), float(np.mean(history.cpu_seconds)),
                       (total - sum(history.seconds)) / epochs)
        else:
            net = Network(list(sizes), seed=seed, dtype=dtype)
            with threadpool_limits(limits=blas_threads or 1, user_api="blas"):
                seconds = reference_epoch(net, np.asarray(X, dtype=dtype), y, batch_size,
                                          learning_rate, seed=seed) + (None,)
        best = min(best, seconds, key=lambda s: s[0])
    return best


def load_package(path, name="mnistnet_baseline"):
    """Import another checkout's mnistnet (``path``/mnistnet) as ``name``, to time it beside this one."""
    folder = os.path.join(path, "mnistnet")
    spec = importlib.util.spec_from_file_location(name, os.path.join(folder, "__init__.py"),
                                                  submodule_search_locations=[folder])
    sys.modules[name] = package = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(package)
    for sub in ("network", "train"):
        importlib.import_module(f"{name}.{sub}")
    return package


def epoch_memory(X, y, *, sizes=(784, 30, 10), batch_size=10, dtype=np.float32):
    """Peak bytes numpy allocates during one untimed vectorised epoch on X (n, n_in), y (n,)
    (tracemalloc), X itself aside."""
    net = Network(list(sizes), seed=0, dtype=dtype)
    tracemalloc.start()
    try:
        sgd(net, (X, y), 1, batch_size, 3.0, seed=0)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def speed_table(X, y, *, sizes=(784, 30, 10), batch_sizes=(10, 128), dtype=np.float32,
                per_sample=True, threads=(None,), repeat=1, seed=0, epochs=1, baseline=None):
    """One row per (method, batch size, BLAS threads): seconds per epoch and speed-up.

    - X: (n, n_in) images, y: (n,) labels (50 000 for the benchmark, a subset in notebooks).
    - batch_sizes: the vectorised runs (the per-sample reference, if per_sample, runs at
      the first); threads: BLAS thread counts (None: sgd's default); repeat: best of this
      many runs per row; epochs: per vectorised run.
    - baseline: None, or (label, package) of another checkout, timed in turns with this
      one at the first batch size (see ``load_package``).
    Returns rows: dicts with method, batch_size, threads, images, seconds (wall), cpu_seconds,
    us_per_image, monitor_seconds and monitor_share (sgd's time besides the updates, per
    epoch and as a share of it), speedup and cpu_speedup (the reference's time over this row's).
    """
    n = len(X)
    rows = []
    common = dict(sizes=sizes, dtype=dtype, seed=seed)
    if per_sample:
        wall, cpu, _ = time_epoch(X, y, method="per-sample", batch_size=batch_sizes[0],
                                  repeat=repeat, **common)
        rows.append(dict(method="per-sample", batch_size=batch_sizes[0], threads=1,
                         seconds=wall, cpu_seconds=cpu))
    for B in batch_sizes:
        for th in threads:
            runs = [("vectorised", None)]
            if baseline is not None and B == batch_sizes[0] and th is None:
                runs.append(baseline)
            best = {}
            for _ in range(repeat):          # in turns, so that both see the same load
                for label, package in runs:
                    result = time_epoch(X, y, batch_size=B, blas_threads=th, epochs=epochs,
                                        package=package, **common)
                    best[label] = min(best.get(label, result), result, key=lambda r: r[0])
            for label, _ in runs:
                wall, cpu, monitor = best[label]
                rows.append(dict(method=label, batch_size=B, threads=th or BLAS_THREADS,
                                 seconds=wall, cpu_seconds=cpu, monitor_seconds=monitor,
                                 monitor_share=monitor / wall))
    reference = rows[0] if per_sample else None
    for row in rows:
        row["images"] = n
        row["us_per_image"] = 1e6 * row["seconds"] / n
        row["speedup"] = reference["seconds"] / row["seconds"] if reference else None
        row["cpu_speedup"] = reference["cpu_seconds"] / row["cpu_seconds"] if reference else None
    return rows


def epoch_gflop(n, sizes):
    """GFLOP of one training epoch on n images with layer sizes, e.g. [784, 30, 10] (2 per multiply-add).

    Per image and layer: the forward product and the weight gradient (n_l · n_(l−1) each),
    and the error sent back through every layer but the first; elementwise work left out.
    """
    macs = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 2 * n * (2 * sum(macs) + sum(macs[1:])) / 1e9


def format_table(rows, columns):
    """The text table of rows (list of dicts) in columns [(key, header, format string), …],
    right-aligned; a value that is missing or None is left blank."""
    body = [[None if r.get(k) is None else f.format(r[k]) for k, _, f in columns] for r in rows]
    return _text_table([h for _, h, _ in columns], body, align=">")


def _learning_rate(cfg, epochs_done):
    """η for a run of ACCURACY_RUNS: a number, or after (a, k, b) a for k epochs, then b."""
    eta = cfg["learning_rate"]
    if isinstance(eta, tuple):
        first, k, then = eta
        return first if epochs_done < k else then
    return eta


def accuracy_run(name, data, seed, epochs=None, dtype=np.float32, verbose=False, init=None):
    """Train one of ACCURACY_RUNS from scratch, scoring the test set after every epoch.

    name: a key of ACCURACY_RUNS; data: load_mnist()'s ((X, y), (X_val, y_val), (X_test,
    y_test)), X (n, 784); seed: network and shuffle seed; epochs, init: None for the run's own.
    Returns a dict: name, seed, epochs, init, dtype, test (after the last epoch), peak_test,
    peak_epoch, test_at_best_val, best_val, best_epoch, last_val, s_per_epoch.
    """
    cfg = dict(ACCURACY_RUNS[name])
    epochs = cfg["epochs"] if epochs is None else epochs
    cfg["init"] = cfg["init"] if init is None else init
    (X, y), validation, (X_test, y_test) = data
    net = Network(cfg["sizes"], cost=cfg["cost"], output=cfg["output"], init=cfg["init"],
                  seed=seed, dtype=dtype)
    tests = []                                  # one per epoch: len(tests) epochs are done

    def callback(progress):
        if not progress.end_of_epoch:
            return
        tests.append(progress.net.accuracy(X_test, y_test))
        if verbose:
            print(f"    epoch {progress.epoch:2d}: cost {progress.history.cost[-1]:.4f}, "
                  f"validation {100 * progress.history.accuracy[-1]:.2f}%, "
                  f"test {100 * tests[-1]:.2f}%", flush=True)

    history = sgd(net, (X, y), epochs, cfg["batch_size"], lambda: _learning_rate(cfg, len(tests)),
                  l2=cfg["l2"], validation_data=validation, seed=seed, callback=callback)
    best = int(np.argmax(history.accuracy))
    peak = int(np.argmax(tests))
    return dict(name=name, seed=seed, epochs=epochs, init=cfg["init"], dtype=np.dtype(dtype).name,
                test=tests[-1], peak_test=tests[peak], peak_epoch=peak + 1,
                test_at_best_val=tests[best], best_val=history.accuracy[best], best_epoch=best + 1,
                last_val=history.accuracy[-1], s_per_epoch=float(np.mean(history.seconds)))


def run_speed(data, args):
    """``--speed``: print the speed table, the FLOP count and the peak memory (data: load_mnist()'s)."""
    (X, y), _, _ = data
    if args.quick:
        X, y = X[:10_000], y[:10_000]
    print(f"\n== Speed: one epoch of {len(X)} images, [784, 30, 10], η = 3, float32 "
          f"(load average {load_average()} before)")
    threads = (1, 2) if args.threads else (None,)
    batch_sizes = (10, 128, 1024) if args.threads else (10, 128)
    baseline = args.baseline and (f"baseline ({args.baseline})", load_package(args.baseline))
    rows = speed_table(X, y, batch_sizes=batch_sizes, threads=threads, repeat=args.repeat,
                       epochs=3, baseline=baseline or None)
    print(format_table(rows, [
        ("method", "method", "{}"), ("batch_size", "batch", "{}"),
        ("threads", "BLAS threads", "{}"), ("seconds", "s/epoch", "{:.3f}"),
        ("us_per_image", "µs/image", "{:.1f}"), ("speedup", "speed-up", "{:.1f}×"),
        ("cpu_seconds", "CPU s/epoch", "{:.3f}"), ("cpu_speedup", "CPU speed-up", "{:.1f}×"),
        ("monitor_seconds", "monitor s/epoch", "{:.3f}"), ("monitor_share", "monitor", "{:.0%}")]))
    print(f"speed-up: the per-sample reference's time / this row's; s/epoch: the updates, mean "
          f"epoch of a 3-epoch run, best of {args.repeat}; monitor: the rest of sgd's time per "
          f"epoch (checks, set-up, training cost and saturation probe; no validation data)")
    gflop = epoch_gflop(len(X), [784, 30, 10])
    print(f"work: {gflop:.2f} GFLOP per epoch, i.e. {gflop / 150 * 1e3:.0f} ms at 150 GFLOP/s "
          f"(one core's float32 FMA peak, about); best row above: "
          f"{gflop / min(r['seconds'] for r in rows):.1f} GFLOP/s")
    peak = epoch_memory(X, y, batch_size=10)
    rss = "unknown" if _max_rss_mib() is None else f"{_max_rss_mib():.0f} MiB"
    print(f"peak memory: numpy's allocations during one epoch (tracemalloc, batch 10): "
          f"{peak / 2**20:.1f} MiB; process max RSS (data set and Python included): {rss}")
    print(f"load average after: {load_average()}")


def _verdict(name, rows, epochs):
    """(verdict text, a line of figures) for the rows of one run of ACCURACY_RUNS."""
    cfg = ACCURACY_RUNS[name]
    tests = [r["test"] for r in rows]
    spread = f"sd {100 * np.std(tests, ddof=1):.2f}, " if len(rows) > 1 else ""
    figures = (f"final test accuracy over {len(rows)} seed(s): mean {100 * np.mean(tests):.2f}% "
               f"({spread}min {100 * min(tests):.2f}%, max {100 * max(tests):.2f}%); peak epoch: "
               f"best {100 * max(r['peak_test'] for r in rows):.2f}%; test@val "
               f"{100 * np.mean([r['test_at_best_val'] for r in rows]):.2f}%, final validation "
               f"{100 * np.mean([r['last_val'] for r in rows]):.2f}%")
    if epochs < cfg["epochs"]:
        return f"not judged (fewer than {cfg['epochs']} epochs)", figures
    if rows[0]["init"] != cfg["init"]:
        return f"not judged (init {rows[0]['init']!r}, the target is for {cfg['init']!r})", figures
    if cfg["judge"] == "peak":
        peak, low = max(r["peak_test"] for r in rows), min(tests)
        ok = peak >= cfg["target"] and low >= cfg["floor"]
        rule = (f"target: best peak epoch {100 * peak:.2f}% ≥ {100 * cfg['target']:.1f}% and every "
                f"final {100 * low:.2f}% (the lowest) ≥ {100 * cfg['floor']:.1f}%")
    else:
        ok = np.mean(tests) >= cfg["target"]
        rule = f"target: mean final {100 * np.mean(tests):.2f}% ≥ {100 * cfg['target']:.1f}%"
    return f"{rule}: {'met' if ok else 'MISSED'}", figures


def run_accuracy(data, args):
    """``--accuracy``: train the chosen ACCURACY_RUNS for every seed; print the table and verdicts.

    Returns True unless a run with its own settings and epochs missed its target.
    """
    print(f"\n== Accuracy: float32, seeds {args.seeds} (load average {load_average()})")
    print("   test = after the last epoch; peak = the best epoch's test accuracy (what the book "
          "reports); test@val = after the epoch with the best validation accuracy")
    if args.init:
        print(f"   every run starts from init={args.init!r} (targets are not judged for a "
              f"changed initialisation)")
    groups = []                                  # (name, init, epochs, rows)
    for name in args.runs or list(ACCURACY_RUNS):
        cfg = ACCURACY_RUNS[name]
        epochs = 3 if args.quick else args.epochs or cfg["epochs"]
        inits = [args.init or cfg["init"]]
        if not args.init and cfg.get("report_init"):
            inits.append(cfg["report_init"])
        for init in inits:
            rows = []
            for seed in args.seeds:
                row = accuracy_run(name, data, seed, epochs=epochs, verbose=args.verbose, init=init)
                print(f"  {name} (init {init}) seed {seed}: test {100 * row['test']:.2f}%, "
                      f"peak {100 * row['peak_test']:.2f}% (epoch {row['peak_epoch']})", flush=True)
                rows.append(row)
            groups.append((name, init, epochs, rows))
    print(format_table([r for g in groups for r in g[3]], [
        ("name", "run", "{}"), ("init", "init", "{}"), ("seed", "seed", "{}"),
        ("test", "test", "{:.2%}"), ("peak_test", "peak", "{:.2%}"),
        ("peak_epoch", "at epoch", "{}"), ("test_at_best_val", "test@val", "{:.2%}"),
        ("best_epoch", "val. best at", "{}"), ("last_val", "val. last", "{:.2%}"),
        ("s_per_epoch", "s/epoch", "{:.2f}")]))
    met = True
    for name, init, epochs, rows in groups:
        verdict, figures = _verdict(name, rows, epochs)
        met &= not verdict.endswith("MISSED")
        print(f"  {name} (init {init}): {figures}; {verdict}")
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
    """``python -m mnistnet.bench [--speed] [--accuracy] [--quick] [--seeds S ...]``: returns
    0, or 1 if an accuracy run with its own settings and epochs missed its target."""
    parser = argparse.ArgumentParser(prog="python -m mnistnet.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--speed", action="store_true", help="time one epoch (vectorised and per-sample)")
    parser.add_argument("--accuracy", action="store_true", help="train the book's networks and notebook 07's")
    parser.add_argument("--quick", action="store_true", help="10 000 images for speed, 3 epochs for accuracy")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="seeds for the accuracy runs (see ACCURACY_RUNS for how they are judged)")
    parser.add_argument("--run", dest="runs", action="append", choices=list(ACCURACY_RUNS),
                        help="accuracy: only this run (repeat the option for several; default: all)")
    parser.add_argument("--init", choices=INITS,
                        help="accuracy: start every run from this initialisation instead of its own")
    parser.add_argument("--epochs", type=_at_least_one, default=None,
                        help="epochs for the accuracy runs (at least 1; default: each run's own)")
    parser.add_argument("--repeat", type=_at_least_one, default=3,
                        help="speed: best of this many runs per row (at least 1)")
    parser.add_argument("--threads", action="store_true", help="speed: also time with 2 BLAS threads")
    parser.add_argument("--baseline", metavar="DIR",
                        help="speed: also time the sgd of the checkout in DIR (batch 10, in turns)")
    parser.add_argument("--verbose", action="store_true", help="accuracy: print every epoch")
    args = parser.parse_args(argv)
    if not (args.speed or args.accuracy):
        args.speed = args.accuracy = True
    from . import load_mnist

    data = load_mnist(dtype=np.float32)
    if args.speed:
        run_speed(data, args)
    ok = run_accuracy(data, args) if args.accuracy else True
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
