"""``omnibench doctor``: every asset the suite can use, found or missing, its sha256 and how to get it.

Never touches the network. Exit code 0 even when optional assets are missing; 2 when a found file fails
its pinned checksum.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="report which weights, head models and checkpoints are available",
        epilog="examples:\n  omnibench doctor\n  omnibench doctor --json --no-hash",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    p.add_argument("--no-hash", action="store_true", help="skip sha256 of found files (faster)")
    p.set_defaults(func=run)


def _builtin_records() -> list[dict]:
    """Assets that are code rather than files: the synthetic head model, built-in generators."""
    rec = {"name": "synthetic-head", "description": "built-in synthetic FLAME-layout head model (generated)",
           "used_by": "oracle generator, synthetic profile", "found": False, "origin": None, "path": None,
           "sha256": None, "expected_sha256": None, "ok": False,
           "how_to_get": "ships with omnibench (omnibench.heads); reinstall omnibench if missing"}
    try:
        from omnibench.heads import load_head_model  # type: ignore[attr-defined]

        head = load_head_model("synthetic")
        rec.update(found=True, ok=True, origin="packaged", path="omnibench.heads:synthetic",
                   sha256=getattr(head, "sha256", None))
    except Exception as exc:  # noqa: BLE001 - report, never crash the doctor
        rec["error"] = f"{type(exc).__name__}: {exc}"
    return [rec]


def run(args: argparse.Namespace) -> int:
    from omnibench.assets import ASSETS, asset_status, cache_root

    records = [asset_status(name, hash_files=not args.no_hash) for name in ASSETS] + _builtin_records()
    bad = [r for r in records if r["found"] and not r["ok"]]
    if args.json:
        sys.stdout.write(json.dumps({"cache_root": str(cache_root()), "assets": records}, indent=2) + "\n")
    else:
        print(f"cache root: {cache_root()}")
        for r in records:
            status = "ok" if r["ok"] else ("BAD CHECKSUM" if r["found"] else "missing")
            print(f"[{status:^12}] {r['name']:<32} {r['description']}")
            if r["found"]:
                sha = (r["sha256"] or "-")
                print(f"{'':15}{r['origin']}: {r['path']}\n{'':15}sha256 {sha}")
                if r["expected_sha256"] and not r["ok"]:
                    print(f"{'':15}expected {r['expected_sha256']}")
            if not r["ok"]:
                print(f"{'':15}how to get it: {r['how_to_get']}")
        n_ok = sum(r["ok"] for r in records)
        print(f"{n_ok}/{len(records)} assets available")
    return 2 if bad else 0
