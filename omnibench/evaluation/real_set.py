"""The real image set of an evaluation: ``--real PATH`` or the synthetic profile's default.

The default is rendered once, deterministically, by :func:`omnibench.data.synth.synthesize_dataset` into
``cache_dir/datasets/`` (keyed by head model, size, resolution, seed and synth version). Two processes that
need it at once build it once: the second waits on a file lock and reuses the first one's dataset.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from filelock import FileLock

from omnibench.cameras import FRAMINGS
from omnibench.data.synth import SYNTH_VERSION, synthesize_dataset
from omnibench.errors import OmnibenchError
from omnibench.imagesets import ImageSet, open_image_set
from omnibench.protocol import Protocol


def open_real_set(path: Path) -> ImageSet:
    """Open ``path`` (folder, zip, dataset folder or statistics file); a missing path is one clear error."""
    if not path.exists():
        raise OmnibenchError(f"real set '{path}' does not exist: pass --real with an image folder, zip, "
                             "dataset folder or statistics file")
    return open_image_set(path)


def default_real_path(protocol: Protocol, head_spec: str, head_sha256: str, cache_dir: Path, *,
                      progress: bool) -> tuple[Path, float]:
    """The default real set's folder for ``protocol`` (``real_n`` images, or ``main.n``, at its resolution)
    and the seconds spent building it (0 when it was cached)."""
    n = protocol.real_n or protocol.main.n
    framing = protocol.camera.framing
    if framing.name not in FRAMINGS:
        raise OmnibenchError(f"protocol '{protocol.ref}' frames its cameras in a way the synthetic real set does "
                             "not render (radius, pivot, focal); pass --real")
    name = (f"synth-{_safe_name(head_spec)}-{head_sha256[:12]}-n{n}-r{protocol.resolution}-s{protocol.seed}"
            f"-v{SYNTH_VERSION}" + ("" if framing.name == "v1" else f"-{framing.name}"))
    out = cache_dir / "datasets" / name
    if (out / "manifest.json").is_file():
        return out, 0.0
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if (out / "manifest.json").is_file():  # built by another process while this one waited
            return out, 0.0
        workers = max(1, min(4, os.cpu_count() or 1))
        print(f"omnibench: building the default synthetic real set ({n} images at {protocol.resolution} px, "
              f"{framing.name} framing, one-off) in {out}", file=sys.stderr)
        t0 = time.perf_counter()
        synthesize_dataset(out, n, resolution=protocol.resolution, head=head_spec, seed=protocol.seed,
                           workers=workers, force=True, command=["omnibench", "evaluate (default real set)"],
                           progress=progress, framing=framing.name)
        return out, time.perf_counter() - t0


def _safe_name(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in s)[:32]
