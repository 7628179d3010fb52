"""``omnibench cache ls|rm``: inspect or delete cached sample sets (and feature statistics)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cache",
        help="list or remove cached sample sets",
        epilog="examples:\n  omnibench cache ls\n  omnibench cache rm main-oracle-1a2b3c\n  omnibench cache rm --all",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    csub = p.add_subparsers(dest="cache_cmd", metavar="ls|rm", required=True)
    pl = csub.add_parser("ls", help="list cached sample sets")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=run_ls)
    pr = csub.add_parser("rm", help="remove sample sets by id or key prefix (or --all, --features)")
    pr.add_argument("ids", nargs="*", help="entry ids or key prefixes from 'omnibench cache ls'")
    pr.add_argument("--all", action="store_true", help="remove every cached sample set")
    pr.add_argument("--features", action="store_true", help="also remove cached feature statistics")
    pr.add_argument("--datasets", action="store_true", help="also remove cached default (synthetic) real sets")
    pr.set_defaults(func=run_rm)


def run_ls(args: argparse.Namespace) -> int:
    from omnibench.assets import cache_root
    from omnibench.cache import list_entries

    root = cache_root()
    entries = list_entries(root)
    feats = sorted((root / "features").glob("*.npz")) if (root / "features").is_dir() else []
    datasets = sorted(p for p in (root / "datasets").iterdir() if p.is_dir()) if (root / "datasets").is_dir() else []
    if args.json:
        sys.stdout.write(json.dumps({"root": str(root), "samples": entries,
                                     "features": [{"file": f.name, "bytes": f.stat().st_size} for f in feats],
                                     "datasets": [d.name for d in datasets]}, indent=2) + "\n")
        return 0
    print(f"cache root: {root}")
    if not entries:
        print("no cached sample sets")
    for e in entries:
        print(f"{e['id']:<44} {e['protocol'] or '?':<9} n={e['n']:<6} shards {e['shards']:<8} "
              f"{e['bytes'] / 1e6:8.1f} MB")
    for f in feats:
        print(f"features/{f.name:<35} {f.stat().st_size / 1e6:8.1f} MB")
    for d in datasets:
        print(f"datasets/{d.name}")
    return 0


def run_rm(args: argparse.Namespace) -> int:
    from omnibench.assets import cache_root
    from omnibench.cache import remove_entries
    from omnibench.errors import OmnibenchError

    if not args.ids and not args.all and not args.features and not args.datasets:
        raise OmnibenchError("cache rm: give entry ids (see 'omnibench cache ls'), --all, --features or --datasets")
    root = cache_root()
    removed = remove_entries(root, args.ids, all_=args.all)
    if args.ids and not removed:
        raise OmnibenchError(f"cache rm: nothing matches {', '.join(args.ids)}; see 'omnibench cache ls'")
    if args.features and (root / "features").is_dir():
        shutil.rmtree(root / "features")
        removed.append("features/")
    if args.datasets and (root / "datasets").is_dir():
        shutil.rmtree(root / "datasets")
        removed.append("datasets/")
    for r in removed:
        print(f"removed {r}", file=sys.stderr)
    return 0
