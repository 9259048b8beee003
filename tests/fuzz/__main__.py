"""``python -m tests.fuzz --minutes 10 [--seed S]``: the long differential campaign.

Run from the repository root (with ``PYTHONPATH=src`` in a checkout). Exits 1 if chainrule
and torch disagreed anywhere, after printing each shrunk reproduction.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

from .campaign import fuzz


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to run")
    parser.add_argument("--seed", type=int, default=0, help="the first graph's seed")
    parser.add_argument("--ops", type=int, default=12, help="nodes per graph")
    parser.add_argument(
        "--include-known",
        action="store_true",
        help="also draw the patterns of open bugs (tests/fuzz/test_regressions.py)",
    )
    args = parser.parse_args(argv)
    figures = fuzz(
        seed=args.seed,
        seconds=args.minutes * 60,
        n_ops=args.ops,
        avoid_known=not args.include_known,
    )
    print(
        f"differential fuzz, chainrule vs torch: seed {args.seed}, {time.strftime('%Y-%m-%d')}, "
        f"{platform.machine()} {platform.processor() or ''} Python {platform.python_version()}"
    )
    print(figures.report())
    return 1 if figures.failures or figures.invalid else 0


if __name__ == "__main__":
    sys.exit(main())
