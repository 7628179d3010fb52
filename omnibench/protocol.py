"""Named, versioned, frozen evaluation protocols.

A protocol pins everything that moves a number: sample counts per sample set, image resolution and resize
policy, truncation, the camera distribution, where FLAME controls come from, the views of the multi-view
set, the real-set size and the seed. Its :attr:`Protocol.hash` (sha256 over the canonical JSON of all
fields) keys the sample cache and is recorded in every result file. Change a protocol -> bump ``version``
and add a line to ``CHANGELOG`` below; never edit a released protocol silently.

Sample sets (see docs/architecture.md): ``main`` (N independent samples), ``views`` (groups x views: one
latent and FLAME set per group, cameras from :attr:`Protocol.view_list`), ``expr`` (groups x members: one
latent and shape per group, expression and jaw vary, camera fixed at :attr:`Protocol.expr_view`).

Names: ``quick`` is the current default version of ``quick`` (:data:`DEFAULT_VERSIONS`), ``quick@2`` (or
``quick@v2``) one version exactly. Every released version stays loadable; tables and ``compare`` never rank
results of different versions together.

CHANGELOG
- 2026-11-25 quick v1, standard v1, paper v1: first release.
- 2026-12-06 quick v2, standard v2, paper v2: cameras framed like EG3D's FFHQ cameras converted to metres
  (:data:`omnibench.cameras.FRAMING_FFHQ`: 1.0395 m from the pivot (0, 0, 0.077) m, focal 4.2647, a 0.244 m
  field instead of v1's 0.375 m); everything else as v1. The defaults stay v1 until the synthetic profile's
  v2 assets (real set, estimator, reference model) ship.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

from omnibench.cameras import FRAMING_FFHQ, FRAMING_V1, FRAMINGS, Framing
from omnibench.errors import OmnibenchError, suggest

SET_NAMES = ("main", "views", "expr")
RESIZE_POLICIES = {
    "none": "generator must render at the protocol resolution; any other size is an error",
    "bicubic-aa": "torch bicubic with antialias on float [0,1], then round to uint8 (PIL-like, clean-fid style)",
}
FLAME_SOURCES = {
    "prior": "the head model's prior (omnibench.data.synth.sample_controls), camera from Protocol.camera",
    "labels": "joint draw of camera + FLAME from a label bank (dataset.json), as EG3D's random labels",
}


@dataclass(frozen=True)
class CameraDistribution:
    """Orbit cameras (see :func:`omnibench.cameras.orbit_camera`): yaw/pitch ~ Normal(mean, std) in radians,
    clipped to +-``*_clip``; fixed radius (metres) and normalised focal length. Used when the FLAME source
    provides no camera; the defaults equal the FFHQ-like spread of ``omnibench.data.control_prior``."""

    yaw_mean: float = 0.0
    yaw_std: float = 0.3
    yaw_clip: float = 0.9
    pitch_mean: float = 0.0
    pitch_std: float = 0.12
    pitch_clip: float = 0.36
    radius: float = FRAMING_V1.radius
    focal: float = FRAMING_V1.focal
    look_at: tuple[float, float, float] = FRAMING_V1.look_at  # pivot, metres in the head frame (added in v2)

    @property
    def framing(self) -> Framing:
        """This distribution's radius, pivot and focal as a :class:`omnibench.cameras.Framing`."""
        for f in FRAMINGS.values():
            if (f.radius, tuple(f.look_at), f.focal) == (self.radius, tuple(self.look_at), self.focal):
                return f
        return Framing("custom", self.radius, tuple(self.look_at), self.focal)  # type: ignore[arg-type]


# Fields added after the first release, with the value every v1 protocol implicitly had: left out of the
# canonical JSON while they hold it, so v1 hashes (and the sample caches and result files keyed by them)
# stay what they were.
_ADDED_FIELDS = {("camera", "look_at"): [0.0, 0.0, 0.0]}


@dataclass(frozen=True)
class SetSize:
    """``n_groups x n_members`` samples; ``main`` uses ``n_members = 1``."""

    n_groups: int
    n_members: int = 1

    @property
    def n(self) -> int:
        return self.n_groups * self.n_members


@dataclass(frozen=True)
class Protocol:
    """One frozen evaluation protocol; ``hash`` identifies it exactly."""

    name: str
    version: int
    description: str
    seed: int
    resolution: int
    resize_policy: str
    truncation_psi: float
    main: SetSize
    views: SetSize
    expr: SetSize
    view_list: tuple[tuple[float, float], ...]  # (yaw, pitch) radians, one per member of the views set
    expr_view: tuple[float, float] = (0.0, 0.0)
    camera: CameraDistribution = field(default_factory=CameraDistribution)
    flame_source: str = "prior"
    real_n: int | None = None  # None: the full real set
    bootstrap: int = 1000  # bootstrap resamples for ci95
    depth_sets: tuple[str, ...] = SET_NAMES  # sets whose depth/mask are cached (paper: not main, to save disk)

    def __post_init__(self) -> None:
        if self.resize_policy not in RESIZE_POLICIES:
            raise ValueError(f"resize_policy '{self.resize_policy}' not in {sorted(RESIZE_POLICIES)}")
        if self.flame_source not in FLAME_SOURCES:
            raise ValueError(f"flame_source '{self.flame_source}' not in {sorted(FLAME_SOURCES)}")
        if len(self.view_list) != self.views.n_members:
            raise ValueError("views.n_members must equal len(view_list)")

    def set_size(self, set_name: str) -> SetSize:
        if set_name not in SET_NAMES:
            raise OmnibenchError(f"unknown sample set '{set_name}'{suggest(set_name, SET_NAMES)}")
        return getattr(self, set_name)

    def to_dict(self) -> dict:
        """All fields as plain JSON types (tuples become lists); fields added after v1 only where they differ
        from the value v1 implied (see ``_ADDED_FIELDS``)."""
        d = json.loads(json.dumps(asdict(self)))
        for (block, key), implied in _ADDED_FIELDS.items():
            if d[block].get(key) == implied:
                del d[block][key]
        return d

    @property
    def ref(self) -> str:
        """``name@version``, the exact name of this protocol."""
        return f"{self.name}@{self.version}"

    @property
    def hash(self) -> str:
        """sha256 of the canonical JSON of every field (sorted keys, no whitespace)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def summary(self) -> dict:
        """The result file's ``protocol`` block."""
        return {"name": self.name, "version": self.version, "seed": self.seed, "hash": self.hash,
                "settings": self.to_dict()}

    def with_seed(self, seed: int | None) -> Protocol:
        """Copy with another seed (``--seed``); the hash changes with it."""
        return self if seed is None or seed == self.seed else replace(self, seed=int(seed))


_THREE_VIEWS = ((-0.4, 0.0), (0.0, 0.0), (0.4, 0.0))
_FIVE_VIEWS = ((-0.5, 0.0), (-0.25, 0.0), (0.0, 0.0), (0.25, 0.0), (0.5, 0.0))

_V1: tuple[Protocol, ...] = (
    Protocol(
        name="quick",
        version=1,
        description="smoke test / CI: 500 samples at 64 px, 24x3 views, 24x3 expressions; minutes on 2 CPU cores",
        seed=0,
        resolution=64,
        resize_policy="bicubic-aa",
        truncation_psi=1.0,
        main=SetSize(500),
        views=SetSize(24, 3),
        expr=SetSize(24, 3),
        view_list=_THREE_VIEWS,
        real_n=500,
    ),
    Protocol(
        name="standard",
        version=1,
        description="recommended: 5k samples at 256 px vs 5k real, 256x5 views, 256x5 expressions",
        seed=0,
        resolution=256,
        resize_policy="bicubic-aa",
        truncation_psi=1.0,
        main=SetSize(5000),
        views=SetSize(256, 5),
        expr=SetSize(256, 5),
        view_list=_FIVE_VIEWS,
        real_n=5000,
    ),
    Protocol(
        name="paper",
        version=1,
        description="EG3D fid50k_full convention: 50k samples at 512 px vs the full real set, controls drawn "
        "from dataset labels; 1024x5 views, 500x20 expressions",
        seed=0,
        resolution=512,
        resize_policy="bicubic-aa",
        truncation_psi=1.0,
        main=SetSize(50000),
        views=SetSize(1024, 5),
        expr=SetSize(500, 20),
        view_list=_FIVE_VIEWS,
        flame_source="labels",
        real_n=None,
        depth_sets=("views", "expr"),
    ),
)

# v2: the same protocols with cameras framed like EG3D's FFHQ cameras (omnibench.cameras.FRAMING_FFHQ).
_CAMERA_V2 = CameraDistribution(radius=FRAMING_FFHQ.radius, focal=FRAMING_FFHQ.focal, look_at=FRAMING_FFHQ.look_at)
_V2: tuple[Protocol, ...] = tuple(
    replace(p, version=2, camera=_CAMERA_V2, description=p.description + "; v2: FFHQ-framed cameras (0.244 m field)")
    for p in _V1
)

RELEASES: dict[tuple[str, int], Protocol] = {(p.name, p.version): p for p in (*_V1, *_V2)}
# The version a bare name means: v2 since the synthetic profile's v2 assets shipped (issue #20); v1 stays loadable.
DEFAULT_VERSIONS: dict[str, int] = {"quick": 2, "standard": 2, "paper": 2}
PROTOCOLS: dict[str, Protocol] = {name: RELEASES[(name, v)] for name, v in DEFAULT_VERSIONS.items()}


def parse_protocol_name(name: str) -> tuple[str, int | None]:
    """``"quick"`` -> ``("quick", None)``; ``"quick@2"`` / ``"quick@v2"`` -> ``("quick", 2)``."""
    base, sep, ver = name.partition("@")
    if not sep:
        return name, None
    digits = ver[1:] if ver[:1] in ("v", "V") else ver
    if not digits.isdigit():
        raise OmnibenchError(f"protocol '{name}': the version after '@' must be a number, e.g. {base}@2")
    return base, int(digits)


def get_protocol(name: str, seed: int | None = None) -> Protocol:
    """Protocol by name (``quick``: its default version, :data:`PROTOCOLS`; ``quick@2``: that release),
    optionally with another seed. Unknown names and versions raise with the available ones."""
    base, version = parse_protocol_name(name)
    current = PROTOCOLS.get(base)
    if version is None and current is not None:
        return current.with_seed(seed)
    if (base, version) in RELEASES:
        return RELEASES[(base, version)].with_seed(seed)
    if current is not None and current.version == version:
        return current.with_seed(seed)
    names = list(dict.fromkeys([*PROTOCOLS, *(n for n, _ in RELEASES)]))
    if base not in names:
        raise OmnibenchError(f"unknown protocol '{base}'{suggest(base, names)}; available: {', '.join(names)}")
    known = ", ".join(f"{n}@{v}" for n, v in RELEASES if n == base)
    raise OmnibenchError(f"protocol '{base}' has no version {version}; released: {known}")
