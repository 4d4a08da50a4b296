"""Command line over the core: python -m core COMMAND ... (see --help)."""

from __future__ import annotations

import argparse
import json
import sys

from core.errors import StudioError


def _table(rows: list[list], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_models(args) -> None:
    from core.backbones import architecture_summary, available_offline, list_specs

    rows = []
    for spec in list_specs():
        summary = architecture_summary(spec)
        blocks, params = summary if summary else ("-", "-")
        rows.append([spec.name, spec.source, f"{spec.input_size}x{spec.input_size}", blocks,
                     f"{params:,}" if isinstance(params, int) else params,
                     "yes" if available_offline(spec) else "needs download"])
    print(_table(rows, ["name", "source", "input", "blocks", "parameters", "offline"]))


def cmd_prepare(args) -> None:
    from core.backbones import bundled

    print(json.dumps(bundled.prepare()))


def cmd_imagenet(args) -> None:
    import numpy as np

    from core import imagenet
    from core.backbones import load_backbone
    from core.data.decode import load_array

    backbone = load_backbone("efficientnet_lite0")
    images = np.stack([load_array(path, backbone.input_size, crop=True) for path in args.images])
    for path, top in zip(args.images, imagenet.top_k(backbone.imagenet_classifier(), images, k=args.top)):
        print(f"{path}:")
        for index, name, p in top:
            print(f"  {p:6.3f}  {index:4d}  {name}")


def cmd_datasets(args) -> None:
    from core.data.sources import DEMOS, demo_folder

    rows = []
    for demo in DEMOS.values():
        folder = demo_folder(demo.name)
        rows.append([demo.name, demo.classes, f"{demo.images:,}", demo.source, demo.description, str(folder)])
    print(_table(rows, ["name", "classes", "images", "source", "description", "folder"]))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Transfer Learning Studio core")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="list the backbone registry").set_defaults(func=cmd_models)
    sub.add_parser("prepare", help="convert the bundled weights and export the TF Hub copy").set_defaults(
        func=cmd_prepare)
    sub.add_parser("datasets", help="list the bundled demo datasets").set_defaults(func=cmd_datasets)
    p = sub.add_parser("imagenet", help="top-k ImageNet labels from the bundled classifier")
    p.add_argument("images", nargs="+")
    p.add_argument("--top", type=int, default=5)
    p.set_defaults(func=cmd_imagenet)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
