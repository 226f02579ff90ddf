"""Run every benchmark side by side in this one process and print two Markdown tables.

    python -m benchmarks.run            # the full suite (what `make bench` runs)
    python -m benchmarks.run --quick    # small sizes, few repetitions: a smoke test

Times are medians over interleaved repetitions. The first table gives every
contender's time ("vs micrograd" and "vs torch": how many times faster
microgradient's eager engine is, or for memory the share of their memory it uses);
the second checks the performance issue's targets, as ratios of times measured in
this same run. Progress goes to stderr, the tables to stdout.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys

from benchmarks import digits, graphs, mlp
from benchmarks.common import (
    MICROGRAD_VERSION,
    Target,
    log,
    micrograd_engine,
    table,
    targets_table,
    torch,
    version_of,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--mlp-repeats", type=int, default=15)
    parser.add_argument("--graph-repeats", type=int, default=3)
    parser.add_argument("--digits-repeats", type=int, default=5)
    args = parser.parse_args(argv)

    deep, per_node, wide = (10_000, 10_000, 10_000) if args.quick else (10**6, 100_000, 10**6)
    mlp_repeats = 3 if args.quick else args.mlp_repeats
    graph_repeats = 1 if args.quick else args.graph_repeats
    digits_repeats = 1 if args.quick else args.digits_repeats

    log(f"W1. MLP step ({mlp_repeats} interleaved repetitions)")
    w1, w1_once = mlp.run(mlp_repeats)
    log(f"W2. chain of {deep:,} operations ({graph_repeats} repetitions)")
    w2 = graphs.run_chain(deep, graph_repeats)
    log(f"W3. digits, one epoch ({digits_repeats} repetitions)")
    w3, w3_once = digits.run(digits_repeats)
    log(f"memory per node ({per_node:,}-operation chains)")
    memory = graphs.run_memory(per_node)
    log(f"wide sum of {wide:,} products ({graph_repeats} repetitions)")
    wide_rows = graphs.run_wide(wide, graph_repeats)

    w2_total = w2[2]
    targets = [
        Target("W1 eager vs micrograd 0.1.0", w1, "microgradient", "micrograd", 1 / 40,
               "at least 40x faster (≤ 0.025x)"),
        Target("W1 traced, batched vs PyTorch tensors", w1, "traced, batched", "torch, batched",
               1.0, "≤ 1.0x (stretch 0.5x)"),
        Target("W1 traced, per-sample vs hand-written Python", w1, "traced", "hand-written",
               1.0, "≤ 1.0x (stretch 0.6x)"),
        Target("W2 eager vs scalar PyTorch (build + backward)", w2_total, "microgradient",
               "torch", 0.4, "≤ 0.4x"),
        Target("W2 traced: trace + first run vs building the chain eagerly", w2[0], "traced",
               "microgradient", 1.0, "less time than building it eagerly (< 1.0x)"),
        Target("W3 traced, batched vs PyTorch tensors (one epoch)", w3, "traced, batched",
               "torch, batched", 1.0, "≤ 1.0x"),
    ]  # fmt: skip

    micrograd = version_of("micrograd") if micrograd_engine is not None else None
    torch_version = torch.__version__ if torch is not None else None
    print(
        f"{datetime.date.today().isoformat()}, Python {platform.python_version()}, "
        f"microgradient {version_of('microgradient')}, "
        f"micrograd {micrograd or f'{MICROGRAD_VERSION} not installed'}, "
        f"torch {torch_version or 'not installed'}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n"
    )
    print(table([w1, w1_once, *w2, w3, w3_once, *memory, *wide_rows]))
    print()
    print(targets_table(targets))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
