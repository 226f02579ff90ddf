"""Run every benchmark side by side in this one process and print one Markdown table.

    python -m benchmarks.run            # the full suite (what `make bench` runs)
    python -m benchmarks.run --quick    # small sizes, few repetitions: a smoke test

Times are medians over interleaved repetitions; "vs micrograd" and "vs torch" are
how many times faster microgradient is (time rows) or the share of their memory it
uses (memory rows). Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys

from benchmarks import graphs, mlp
from benchmarks.common import MICROGRAD_VERSION, log, micrograd_engine, table, torch, version_of


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--mlp-repeats", type=int, default=15)
    parser.add_argument("--graph-repeats", type=int, default=3)
    args = parser.parse_args(argv)

    deep, per_node, wide = (10_000, 10_000, 10_000) if args.quick else (10**6, 100_000, 10**6)
    mlp_repeats = 3 if args.quick else args.mlp_repeats
    graph_repeats = 1 if args.quick else args.graph_repeats

    rows = []
    log(f"1. MLP step ({mlp_repeats} interleaved repetitions)")
    rows += mlp.run(mlp_repeats)
    log(f"2. chain of {deep:,} operations ({graph_repeats} repetitions)")
    rows += graphs.run_chain(deep, graph_repeats)
    log(f"3. memory per node ({per_node:,}-operation chains)")
    rows += graphs.run_memory(per_node)
    log(f"4. wide sum of {wide:,} products ({graph_repeats} repetitions)")
    rows += graphs.run_wide(wide, graph_repeats)

    micrograd = version_of("micrograd") if micrograd_engine is not None else None
    torch_version = torch.__version__ if torch is not None else None
    print(
        f"{datetime.date.today().isoformat()}, Python {platform.python_version()}, "
        f"microgradient {version_of('microgradient')}, "
        f"micrograd {micrograd or f'{MICROGRAD_VERSION} not installed'}, "
        f"torch {torch_version or 'not installed'}, {platform.machine()}\n"
    )
    print(table(rows))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
