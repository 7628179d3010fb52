"""``omnibench data synth``: an EG3D-style synthetic dataset rendered by the oracle generator.

Layout written (atomically: everything goes to a temporary sibling folder that is renamed at the end)::

    DIR/images/img00000000.png ...            RGB uint8, R x R
    DIR/dataset.json   {"labels": [[relpath, [25 camera floats]], ...],
                        "flame":  [[relpath, {"shape": [...], "expression": [...], "pose": [15]}], ...],
                        "head_model": {"name", "sha256"}, "generator": {...}}
    DIR/manifest.json  per-file sha256, content hash, versions, seed, command

Cameras sit on a :class:`omnibench.cameras.Framing`'s sphere (``--framing v1``, the default, or ``ffhq``;
recorded in the manifest when not ``v1``). Sample ``i`` uses ``sample_controls(1, seed, head, start_index=i)`` (or ``sample_wide_controls`` with
``prior="wide"``, ``sample_wide_pair_controls`` with ``prior="wide-pairs"``) and ``sample_latents(1, seed, 64, i)``
(``i // 2`` under ``wide-pairs``)
(see :mod:`omnibench.data.control_prior`), so the bytes depend on ``(seed, n, resolution, head, versions)`` and
never on the number of worker processes. Work is split into fixed chunks of :data:`CHUNK` samples.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from omnibench.cameras import get_framing
from omnibench.data.control_prior import (
    PRIORS,
    SAMPLER_VERSION,
    WIDE_SAMPLER_VERSION,
    controls_for_prior,
    latents_for_prior,
    sample_controls,
    sample_latents,
)
from omnibench.errors import OmnibenchError
from omnibench.fileio import atomic_directory
from omnibench.render import APPEARANCE_VERSION, RENDERER_VERSION

__all__ = ["SYNTH_VERSION", "sample_controls", "sample_latents", "synthesize_dataset", "content_hash"]

SYNTH_VERSION = "1"
CHUNK = 50
FORMAT = "omnibench-eg3d-dataset"

_WORKER: dict[str, object] = {}


def _oracle(head: str, resolution: int, supersample: int):
    key = (head, resolution, supersample)
    if _WORKER.get("key") != key:
        from omnibench.generators.oracle import OracleGenerator

        _WORKER["key"] = key
        _WORKER["oracle"] = OracleGenerator(head=head, resolution=resolution, supersample=supersample)
    return _WORKER["oracle"]


def _worker_init() -> None:
    torch.set_num_threads(1)


def _f32_list(t: torch.Tensor) -> list[float]:
    return [float(x) for x in t.detach().cpu().to(torch.float32).numpy().astype(np.float32)]


def _render_chunk(tmp: str, head: str, seed: int, start: int, count: int, resolution: int, supersample: int,
                  prior: str = "ffhq", framing: str = "v1") -> list[dict]:
    """Render samples ``start .. start + count - 1`` into ``tmp/images``; return their records in order."""
    oracle = _oracle(head, resolution, supersample)
    controls = controls_for_prior(prior, count, seed, oracle.model, start_index=start, framing=framing)
    z = latents_for_prior(prior, count, seed, oracle.z_dim, start_index=start)
    images = oracle.synthesize(z, controls).image_uint8().permute(0, 2, 3, 1).numpy()
    records = []
    for k in range(count):
        rel = f"images/img{start + k:08d}.png"
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(images[k])).save(buf, format="PNG", compress_level=6)
        data = buf.getvalue()
        Path(tmp, rel).write_bytes(data)
        records.append({
            "relpath": rel, "sha256": hashlib.sha256(data).hexdigest(), "camera": _f32_list(controls.camera[k]),
            "shape": _f32_list(controls.shape[k]), "expression": _f32_list(controls.expression[k]),
            "pose": _f32_list(controls.pose[k]),
        })
    return records


def content_hash(files: dict[str, str]) -> str:
    """SHA-256 over ``"relpath sha256\\n"`` lines in sorted path order (the manifest's ``content_hash``)."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(f"{rel} {files[rel]}\n".encode())
    return h.hexdigest()


def _json_bytes(obj: object) -> bytes:
    return (json.dumps(obj, indent=None, separators=(",", ":")) + "\n").encode()


def synthesize_dataset(
    out: str | os.PathLike,
    n: int,
    resolution: int = 64,
    head: str = "synthetic",
    seed: int = 0,
    workers: int = 1,
    supersample: int = 2,
    force: bool = False,
    command: list[str] | None = None,
    progress: bool = False,
    chunk: int = CHUNK,
    prior: str = "ffhq",
    framing: str = "v1",
) -> dict:
    """Render ``n`` samples into ``out`` (see module docstring); returns the manifest dict.

    ``workers`` processes render ``chunk``-sized index ranges; neither changes a single output byte.
    ``prior``: the control distribution, ``ffhq`` (the protocols'), ``wide`` or ``wide-pairs`` (estimator
    training; see :mod:`omnibench.data.control_prior`). ``framing``: where the cameras sit
    (:data:`omnibench.cameras.FRAMINGS`: ``v1`` for protocols v1, ``ffhq`` for v2).
    """
    framing_spec = get_framing(framing)
    if prior not in PRIORS:
        raise OmnibenchError(f"--prior must be one of {', '.join(PRIORS)}, got {prior!r}")
    for name, value, lo, hi in (("n", n, 1, 10_000_000), ("resolution", resolution, 16, 2048), ("seed", seed, 0, 2**63 - 1),
                                ("workers", workers, 1, 256), ("supersample", supersample, 1, 8),
                                ("chunk", chunk, 1, 100_000)):
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise OmnibenchError(f"--{name} must be an integer in [{lo}, {hi}], got {value!r}")
    out = Path(out).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise OmnibenchError(f"output '{out}' exists and is not empty; choose another --out or pass --force")
    oracle = _oracle(head, resolution, supersample)  # fail early (bad head) before any work
    model = oracle.model
    with atomic_directory(out) as tmp:  # a crash or error leaves no partial set and the old one in place
        (tmp / "images").mkdir()
        chunks = [(s, min(chunk, n - s)) for s in range(0, n, chunk)]
        args = [(str(tmp), head, seed, s, c, resolution, supersample, prior, framing_spec.name) for s, c in chunks]
        t0 = time.time()
        records: list[dict] = []
        if workers == 1:
            for i, a in enumerate(args):
                records += _render_chunk(*a)
                _progress(progress, i + 1, len(args), t0)
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_worker_init) as pool:
                futures = [pool.submit(_render_chunk, *a) for a in args]
                for i, fut in enumerate(futures):
                    records += fut.result()
                    _progress(progress, i + 1, len(args), t0)
        head_info = {"name": str(getattr(model, "name", head)), "spec": head, "sha256": getattr(model, "sha256", None)}
        generator = {"name": oracle.name, "z_dim": oracle.z_dim, "supersample": supersample,
                     "flame_layout": {"n_shape": oracle.flame_layout.n_shape, "n_expression": oracle.flame_layout.n_expression}}
        dataset = {
            "labels": [[r["relpath"], r["camera"]] for r in records],
            "flame": [[r["relpath"], {"shape": r["shape"], "expression": r["expression"], "pose": r["pose"]}] for r in records],
            "head_model": head_info,
            "generator": generator,
        }
        ds_bytes = _json_bytes(dataset)
        (tmp / "dataset.json").write_bytes(ds_bytes)
        files = {r["relpath"]: r["sha256"] for r in records}
        files["dataset.json"] = hashlib.sha256(ds_bytes).hexdigest()
        manifest = {
            "format": FORMAT, "format_version": 1, "n": n, "resolution": resolution, "seed": seed,
            "generator": "omnibench.data.synth", "generator_version": SYNTH_VERSION,
            "versions": {"synth": SYNTH_VERSION, "sampler": SAMPLER_VERSION if prior == "ffhq" else WIDE_SAMPLER_VERSION,
                         "renderer": RENDERER_VERSION,
                         "appearance": APPEARANCE_VERSION, "numpy": np.__version__, "torch": torch.__version__,
                         "python": platform.python_version()},
            "head_model": head_info, "prior": prior,
            **({} if framing_spec.name == "v1" else {"framing": framing_spec.to_dict()}),
            "sampler": "omnibench.data.control_prior.controls_for_prior(prior, n, seed, head, start_index)",
            "latents": "omnibench.data.synth.sample_latents(n, seed, 64, start_index)"
                       + (" at index i // 2 (omnibench.data.control_prior.latents_for_prior)" if prior == "wide-pairs" else ""),
            "command": command if command is not None else [os.path.basename(sys.argv[0]), *sys.argv[1:]],
            "content_hash": content_hash(files), "files": files,
        }
        (tmp / "manifest.json").write_bytes(_json_bytes(manifest))
    return manifest


def _progress(enabled: bool, done: int, total: int, t0: float) -> None:
    if enabled:
        print(f"\rsynth: {done}/{total} chunks, {time.time() - t0:.1f}s", end="\n" if done == total else "", file=sys.stderr)
