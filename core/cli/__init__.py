"""The command line over the core: `python -m core COMMAND ...` (see --help)."""

from __future__ import annotations

import sys

from core.errors import StudioError


def main(argv: list[str] | None = None) -> int:
    from core.cli.parser import build_parser

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
