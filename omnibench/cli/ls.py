"""``omnibench ls metrics|generators|protocols``: what is installed, one line each (``--json`` for JSON)."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ls",
        help="list metrics, generators or protocols",
        epilog="examples:\n  omnibench ls metrics\n  omnibench ls protocols --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("what", choices=["metrics", "generators", "protocols"])
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.set_defaults(func=run)


def _metrics() -> list[dict]:
    from omnibench.errors import OmnibenchError
    from omnibench.metric_api import METRICS, load_metric_plugins

    load_metric_plugins()
    rows = []
    for name in METRICS.names():
        try:
            cls = METRICS.get(name)
            rows.append({"name": name, "version": cls.version, "higher_is_better": cls.higher_is_better,
                         "variants": list(cls.variants), "default_variant": cls.default_variant,
                         "requires": list(cls.requires), "doc": (cls.__doc__ or "").strip().split("\n")[0]})
        except OmnibenchError as exc:
            rows.append({"name": name, "error": str(exc)})
    return rows


def _generators() -> list[dict]:
    from omnibench.errors import OmnibenchError
    from omnibench.generators import GENERATORS

    rows = []
    for name in GENERATORS.names():
        try:
            cls = GENERATORS.get(name)
            rows.append({"name": name, "z_dim": cls.z_dim, "resolution": cls.resolution,
                         "checkpoint_kind": cls.checkpoint_kind, "named_checkpoints": sorted(cls.named_checkpoints()),
                         "doc": (cls.__doc__ or "").strip().split("\n")[0]})
        except OmnibenchError as exc:
            rows.append({"name": name, "error": str(exc)})
    return rows


def _protocols() -> list[dict]:
    from omnibench.protocol import DEFAULT_VERSIONS, RELEASES

    return [{"name": p.name, "version": p.version, "ref": p.ref, "default": DEFAULT_VERSIONS[p.name] == p.version,
             "hash": p.hash, "resolution": p.resolution, "main": p.main.n,
             "views": [p.views.n_groups, p.views.n_members], "expr": [p.expr.n_groups, p.expr.n_members],
             "flame_source": p.flame_source, "framing": p.camera.framing.name, "doc": p.description}
            for p in sorted(RELEASES.values(), key=lambda p: (list(DEFAULT_VERSIONS).index(p.name), p.version))]


def run(args: argparse.Namespace) -> int:
    rows = {"metrics": _metrics, "generators": _generators, "protocols": _protocols}[args.what]()
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return 0
    for r in rows:
        if "error" in r:
            print(f"{r['name']:<16} unavailable: {r['error']}")
        elif args.what == "metrics":
            arrow = "higher" if r["higher_is_better"] else "lower"
            print(f"{r['name']:<16} v{r['version']} {arrow} is better; variants {','.join(r['variants'])}; "
                  f"needs {','.join(r['requires'])}  {r['doc']}")
        elif args.what == "generators":
            named = f"; --ckpt {', '.join(r['named_checkpoints'])}" if r["named_checkpoints"] else ""
            print(f"{r['name']:<16} z={r['z_dim']} {r['resolution']}px{named}  {r['doc']}")
        else:
            mark = " (default)" if r["default"] else ""
            print(f"{r['ref']:<12} {r['hash'][:12]} {r['framing']:<5}{mark:<10}  {r['doc']}")
    return 0
