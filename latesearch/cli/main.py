"""`latesearch` console command: one sub-command per module of this package."""

from __future__ import annotations

import os

# OpenMP reads its wait policy once, when torch loads it: set before anything imports
# torch. Passive: idle threads sleep instead of spinning, which on a busy machine made a
# 2-thread search 27x slower (docs/serving.md); a policy set by the user is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from importlib import import_module  # noqa: E402

from latesearch.errors import LatesearchError  # noqa: E402

# Each module defines `register(subparsers)`, which adds its parser and sets `func`.
COMMANDS = (
    "demo", "encode", "index", "compress", "update", "delete", "search", "serve", "train",
    "evaluate", "compare", "mix", "verify", "calibrate", "push", "pull",
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latesearch",
        description="ColBERT late-interaction retrieval: index, search, train, evaluate.",
    )
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = import_module(f"latesearch.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"latesearch.cli.{name}":
                continue  # sub-command not built yet
            raise
        module.register(subparsers)
    return parser


def _version() -> str:
    from latesearch import __version__

    return f"latesearch {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for bad input, 130 for Ctrl-C)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LatesearchError as err:
        print(f"latesearch {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"latesearch {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
