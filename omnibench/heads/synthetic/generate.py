"""``make_synthetic_head``: build, validate, serialise and write a synthflame file set (flame.md §5)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from pathlib import Path

import numpy as np
import scipy

from omnibench.assets import cache_root, sha256_file
from omnibench.errors import OmnibenchError
from omnibench.fileio import atomic_directory, atomic_path, atomic_write_bytes
from omnibench.heads.synthetic.bases import SEMANTIC_EXPRESSIONS
from omnibench.heads.synthetic.model import RNG_STREAMS, SynthHead, build_head
from omnibench.heads.synthetic.presets import get_preset
from omnibench.heads.synthetic.rig import JOINT_NAMES, JOINT_TARGETS, UINT32_SENTINEL
from omnibench.heads.synthetic.serialise import serialise
from omnibench.heads.synthetic.validate import SynthValidationError, validate_head

GENERATOR_NAME = "synthflame"
GENERATOR_VERSION = "1"
STATEMENT = "synthetic, not FLAME; no MPI data used"
MANIFEST = "manifest.json"
VERIFIED = ".verified.json"  # (size, mtime, inode) of each file at the last successful hash check
# files that are byte-identical aliases of generic_model.pkl (hard-linked where the filesystem allows)
ALIASES = ("flame2023.pkl", "flame/FLAME_NEUTRAL.pkl")


def _options(columns: int, f_dtype: str, kintree_sentinel: bool) -> dict[str, object]:
    return {"columns": int(columns), "f_dtype": f_dtype, "kintree_sentinel": bool(kintree_sentinel)}


def default_dir(preset: str, seed: int, columns: int = 400, f_dtype: str = "uint32",
                kintree_sentinel: bool = True) -> Path:
    """``<cache_root>/heads/synthflame-<preset>-s<seed>-v<GENERATOR_VERSION>[variant]``."""
    suffix = ""
    if columns != 400:
        suffix += f"-c{columns}"
    if f_dtype != "uint32":
        suffix += f"-f{f_dtype}"
    if not kintree_sentinel:
        suffix += "-kneg"
    return cache_root() / "heads" / f"{GENERATOR_NAME}-{preset}-s{seed}-v{GENERATOR_VERSION}{suffix}"


def _file_stats(directory: Path, rels: list[str]) -> dict[str, list[int]]:
    out = {}
    for rel in rels:
        st = (directory / rel).stat()
        out[rel] = [st.st_size, st.st_mtime_ns, st.st_ino]
    return out


def manifest_is_valid(directory: Path, preset: str, seed: int, options: dict[str, object], *,
                      full: bool = False) -> bool:
    """True when ``directory`` holds a complete set of this generator version with matching hashes.

    Hashing a `small` set takes ~0.3 s, so after a successful check the (size, mtime, inode) of every file
    is recorded in ``.verified.json``; later checks re-hash only when one of those changed (or ``full``).
    """
    directory = Path(directory)
    try:
        man = json.loads((directory / MANIFEST).read_text())
        if (man.get("generator"), man.get("generator_version"), man.get("preset"), man.get("seed"),
                man.get("options")) != (GENERATOR_NAME, GENERATOR_VERSION, preset, seed, options):
            return False
        rels = sorted(man["files"]) + [MANIFEST]
        stats = _file_stats(directory, rels)
        if not full:
            try:
                if json.loads((directory / VERIFIED).read_text()) == stats:
                    return True
            except (OSError, ValueError):
                pass
        if not all(sha256_file(directory / rel) == meta["sha256"] for rel, meta in man["files"].items()):
            return False
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    try:
        atomic_write_bytes(directory / VERIFIED, json.dumps(stats).encode())
    except OSError:  # read-only folder: fine, just re-hash next time
        pass
    return True


def _version(pkg: str) -> str | None:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return None


def build_manifest(head: SynthHead, files: dict[str, bytes], flags: dict[str, object],
                   options: dict[str, object], report: dict[str, object]) -> dict[str, object]:
    """Provenance, counts, conventions and per-file SHA-256 (deterministic: no timestamps)."""
    m = head.mesh
    n_head_f = m.n_head_faces
    n_eye_f = (m.faces.shape[0] - n_head_f) // 2
    d = int(m.slit_interior.size)
    return {
        "generator": GENERATOR_NAME,
        "generator_version": GENERATOR_VERSION,
        "statement": STATEMENT,
        "preset": head.preset.name,
        "seed": head.seed,
        "options": options,
        "rng": {"bit_generator": "PCG64", "streams": list(RNG_STREAMS), "derivation": "SeedSequence(seed).spawn(4)"},
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "torch": _version("torch")},
        "units": "metres; +y up, +z out of the face, +x subject's left",
        "counts": {"vertices": m.n_vertices, "faces": int(m.faces.shape[0]), "shape_columns": 300,
                   "expression_columns": 100, "expression_offset": 300, "shapedirs_columns": int(options["columns"]),
                   "posedirs_columns": 36, "joints": 5, "slit_duplicates": d},
        "components": {"head": [0, m.n_head], "left_eyeball": [m.left_eye.start, m.left_eye.stop],
                       "right_eyeball": [m.right_eye.start, m.right_eye.stop]},
        "face_ranges": {"head": [0, n_head_f], "left_eyeball": [n_head_f, n_head_f + n_eye_f],
                        "right_eyeball": [n_head_f + n_eye_f, n_head_f + 2 * n_eye_f]},
        "boundary_loops": {"neck": head.preset.n_phi, "mouth": 2 * (d + 1)},
        "joints": {"names": list(JOINT_NAMES), "parents": [-1, 0, 1, 1, 1], "targets": JOINT_TARGETS.tolist(),
                   "pose_layout": "15 axis-angle values [global 0:3 | neck 3:6 | jaw 6:9 | leye 9:12 | reye 12:15]"},
        "expressions": {
            "semantic": {str(300 + i): name for i, name in enumerate(SEMANTIC_EXPRESSIONS)},
            "orthogonal": False,
            "note": "columns 300-315 are semantic and not orthogonalised; 316-399 are orthogonal to all earlier "
                    "expression columns; do not assume orthogonality across expression columns",
        },
        "landmarks": {
            "order": "iBUG-68; point 0 on -x (subject's right), 36-41 right eye, 48 right mouth corner",
            "targets_68": head.landmarks.targets.tolist(),
            "static_51": "iBUG 17-67 (RingNet-style), equals full-68[17:]",
            "static_68_file": "flame_static_embedding_68.pkl holds the full static 68 (contour fixed)",
            "dynamic": {
                "rows": 79,
                "row_of_yaw": "a = round(yaw deg) clamped to <= 39; a >= 0 -> row a; -39 <= a < 0 -> row 39 - a; a < -39 -> row 78",
                "sign": "row a is the contour of the head yawed by +a degrees about +y (nose toward +x) seen from +z, "
                        "i.e. DECA's +euler_y convention (smplx/FLAME_PyTorch index with -euler_y)",
                "row0_equals_static_contour": True,
                "mirror": "row 39+i mirrors row i (point k <-> 16-k)",
            },
            "inner_lips": "61-63 are embedded in the band above the slit, 65-67 below it (the gap grows with jaw)",
        },
        "eyelids": {"files": ["l_eyelid.npy", "r_eyelid.npy"], "params": "eyelid_params (N,2) = [left, right] in [0,1]",
                    "apply": "after LBS (metrical-tracker convention)"},
        "flags": {
            "deca_tensor_compat": bool(flags["deca_tensor_compat"]),
            "kintree_sentinel": UINT32_SENTINEL if options["kintree_sentinel"] else -1,
            "f_dtype": options["f_dtype"],
            "valid_flame_layout": int(options["columns"]) == 400,
        },
        "mirror_idx": m.mirror_idx.tolist(),
        "validation": report,
        "files": {rel: {"sha256": hashlib.sha256(b).hexdigest(), "bytes": len(b)} for rel, b in sorted(files.items())},
    }


def head_fingerprint(head: SynthHead) -> str:
    """SHA-256 over every array that is serialised (dtype, shape and raw bytes, fixed order)."""
    h = hashlib.sha256()
    lm = head.landmarks
    arrays: list[object] = [head.model[k] for k in head.model]
    arrays += [lm.targets, lm.full.faces, lm.full.bary, lm.dyn_faces, lm.dyn_bary, head.l_eyelid, head.r_eyelid]
    arrays += [head.regions.masks[k] for k in head.regions.masks]
    for a in arrays:
        if isinstance(a, str):
            h.update(a.encode())
            continue
        a = a.toarray() if hasattr(a, "toarray") else np.asarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _link_or_write(src: Path, path: Path, data: bytes) -> None:
    """Hard-link ``path`` to ``src`` (same bytes) atomically, falling back to a copy."""
    try:
        with atomic_path(path) as tmp:
            tmp.unlink()  # the link takes the temporary's name
            os.link(src, tmp)
    except OSError:
        atomic_write_bytes(path, data)


def write_files(directory: Path, files: dict[str, bytes], manifest: dict[str, object]) -> None:
    """Write every file atomically; aliases of ``generic_model.pkl`` as hard links; manifest last."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST).unlink(missing_ok=True)
    (directory / VERIFIED).unlink(missing_ok=True)
    for rel, data in files.items():
        if rel in ALIASES:
            continue
        atomic_write_bytes(directory / rel, data)
    for rel in ALIASES:
        _link_or_write(directory / "generic_model.pkl", directory / rel, files[rel])
    atomic_write_bytes(directory / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
    # the bytes just written are the ones hashed into the manifest: stamp them as verified
    atomic_write_bytes(directory / VERIFIED, json.dumps(_file_stats(directory, sorted(files) + [MANIFEST])).encode())


def generate_files(preset: str, seed: int, *, columns: int = 400, f_dtype: str = "uint32",
                   kintree_sentinel: bool = True, check_determinism: bool = True) -> tuple[dict[str, bytes], dict]:
    """Build, validate and serialise in memory; returns ``(files, manifest)``. Raises on any failed check."""
    options = _options(columns, f_dtype, kintree_sentinel)
    head = build_head(preset, seed, kintree_sentinel=kintree_sentinel)
    report = validate_head(head)
    files, flags = serialise(head, columns=columns, f_dtype=f_dtype)
    if check_determinism:
        # serialisation is a pure function of the arrays (fixed zip timestamps, no addresses), so a second
        # build must reproduce every array bit for bit; the tests also compare whole files byte for byte
        first, second = head_fingerprint(head), head_fingerprint(build_head(preset, seed, kintree_sentinel=kintree_sentinel))
        if first != second:
            raise SynthValidationError("synthflame generation is not deterministic: a second build differs")
        report["determinism.identical_arrays"] = {"ok": True, "value": first}
    return files, build_manifest(head, files, flags, options, report)


def make_synthetic_head(preset: str = "small", seed: int = 0, out_dir: Path | None = None, *, columns: int = 400,
                        f_dtype: str = "uint32", kintree_sentinel: bool = True,
                        check_determinism: bool = True) -> Path:
    """Write the synthflame file set of ``preset``/``seed`` and return its directory.

    ``out_dir`` defaults to :func:`default_dir` in the cache and is reused when its manifest validates
    (generator version, options and every file's SHA-256). ``columns`` != 400 writes deliberately invalid
    shapedirs (for loader tests); ``f_dtype`` "int64" and ``kintree_sentinel=False`` exercise the other
    loader paths. Generation is validated (flame.md §5.15) before anything is written.
    """
    get_preset(preset)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise OmnibenchError(f"synthetic head seed must be a non-negative integer, got {seed!r}")
    if isinstance(columns, bool) or not isinstance(columns, (int, np.integer)) or not 1 <= columns <= 4096:
        raise OmnibenchError(f"--columns must be an integer in 1..4096 (FLAME has 400), got {columns!r}")
    if f_dtype not in ("uint32", "int64"):
        raise OmnibenchError(f"f_dtype must be 'uint32' or 'int64', got {f_dtype!r}")
    seed, columns = int(seed), int(columns)
    options = _options(columns, f_dtype, kintree_sentinel)
    target = Path(out_dir) if out_dir is not None else default_dir(preset, seed, columns, f_dtype, kintree_sentinel)
    if manifest_is_valid(target, preset, seed, options):
        return target
    if target.exists() and not target.is_dir():
        raise OmnibenchError(f"output path {target} exists and is not a directory")
    files, manifest = generate_files(preset, seed, columns=columns, f_dtype=f_dtype,
                                     kintree_sentinel=kintree_sentinel, check_determinism=check_determinism)
    if out_dir is not None:
        write_files(target, files, manifest)
        return target
    # cache: build in a sibling temp dir and rename, so concurrent users never see a partial set; a valid set
    # that another process finished first is kept (it is identical)
    with atomic_directory(target, keep_existing=lambda t: manifest_is_valid(t, preset, seed, options)) as tmp:
        write_files(tmp, files, manifest)
    return target
