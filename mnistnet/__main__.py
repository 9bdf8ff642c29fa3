"""Command line (installed, also as the ``mnistnet`` script):

    python -m mnistnet fetch [--data-dir DIR]   get MNIST into the cache (quick when it is there)
    python -m mnistnet bench [ARGS...]          accuracy and speed benchmark (see mnistnet.bench)
"""

import argparse
import logging
import signal
import sys
import threading
import time

from ._files import Terminated, raise_terminated

INTERRUPTED = "interrupted: nothing was written, run it again"


def fetch_command(data_dir=None):
    """Run ``mnistnet.data.fetch``; print the source that served, the cache file and the shapes
    ``load_mnist()`` returns. Returns the exit code: 0, 1 on failure (the error on stderr), 130
    after Ctrl-C and 143 after a SIGTERM, saying INTERRUPTED (the cache is complete or absent).
    """
    from . import data

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    start = time.perf_counter()
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, raise_terminated) if in_main_thread else None
    try:
        arrays, source = data.fetch(data_dir, progressbar=True)
    except (data.MNISTNotFoundError, data.MNISTFormatError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Terminated) as e:
        print(f"\n{INTERRUPTED}", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    n_fit, pixels = data.TRAIN_SIZE - data.VALID_SIZE, data.SIDE * data.SIDE
    print(f"MNIST served by: {source}")
    print(f"cache:           {data.cache_file()}")
    print(f"load_mnist():    train ({n_fit}, {pixels}), valid ({data.VALID_SIZE}, {pixels}), "
          f"test ({len(arrays['x_test'])}, {pixels}); pixels k/256 in [0, 1), labels int64 0-9")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


def main(argv=None):
    """Entry point: ``argv``, the arguments (default sys.argv[1:]); returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # every further argument belongs to the benchmark
        from .bench import main as bench_main  # imported only when asked for

        return bench_main(argv[1:])          # 0, or 1 if an accuracy target was missed
    parser = argparse.ArgumentParser(prog="mnistnet",
                                     description="mnistnet: backprop on MNIST, shape by shape.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fetch = commands.add_parser("fetch",
                                help="get MNIST into the local cache (quick when it is there)")
    fetch.add_argument("--data-dir", metavar="DIR", help="folder with the four IDX files or "
                       "mnist.pkl.gz (default: $MNISTNET_DATA_DIR)")
    commands.add_parser("bench", help="accuracy and speed benchmark (see mnistnet.bench)")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        return fetch_command(args.data_dir)
    parser.error(f"unknown command {args.command}")  # e.g. "-- bench": bench is handled above


if __name__ == "__main__":
    sys.exit(main())
