"""Assemble every array of a synthflame head in memory (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from omnibench.heads.synthetic.bases import (
    expression_basis,
    eyelids,
    posedirs,
    shape_basis,
)
from omnibench.heads.synthetic.landmarks import LandmarkSet, build_landmarks
from omnibench.heads.synthetic.mesh import HeadMesh, build_mesh, vertex_normals
from omnibench.heads.synthetic.presets import Preset, get_preset
from omnibench.heads.synthetic.regions import Regions, build_regions
from omnibench.heads.synthetic.rig import Rig, build_rig

RNG_STREAMS = ("shape", "expression", "posedirs", "landmarks")


@dataclass
class SynthHead:
    """Everything the serialiser writes. ``model`` is the FLAME-layout dict (keys in FLAME order)."""

    preset: Preset
    seed: int
    mesh: HeadMesh
    regions: Regions
    rig: Rig
    landmarks: LandmarkSet
    model: dict[str, object]
    l_eyelid: np.ndarray
    r_eyelid: np.ndarray


def rng_streams(seed: int) -> dict[str, np.random.Generator]:
    """One PCG64 child stream per component, spawned in the fixed order of :data:`RNG_STREAMS`."""
    children = np.random.SeedSequence(seed).spawn(len(RNG_STREAMS))
    return {name: np.random.Generator(np.random.PCG64(c)) for name, c in zip(RNG_STREAMS, children)}


def build_head(preset: str | Preset = "small", seed: int = 0, *, kintree_sentinel: bool = True) -> SynthHead:
    """Build all arrays of one preset and seed (float64, single-threaded BLAS for bit-reproducibility)."""
    p = get_preset(preset) if isinstance(preset, str) else preset
    with threadpool_limits(limits=1):
        rngs = rng_streams(seed)
        mesh = build_mesh(p)
        regions = build_regions(mesh)
        rig = build_rig(mesh, kintree_sentinel=kintree_sentinel)
        normals = vertex_normals(mesh.vertices, mesh.faces, mesh.mirror_idx)
        shp = shape_basis(mesh, normals, rngs["shape"])
        exp = expression_basis(mesh, regions, normals, rngs["expression"])
        pdirs = posedirs(mesh, regions, normals, rig.weights, rngs["posedirs"])
        lmk = build_landmarks(mesh)
        l_eye, r_eye = eyelids(mesh)
    model: dict[str, object] = {
        "f": mesh.faces.astype(np.uint32),
        "J_regressor": sp.csc_matrix(rig.J_regressor),
        "kintree_table": rig.kintree_table,
        "J": rig.J,
        "weights": rig.weights,
        "posedirs": pdirs,
        "v_template": mesh.vertices.copy(),
        "shapedirs": np.ascontiguousarray(np.concatenate([shp, exp], axis=2)),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    return SynthHead(preset=p, seed=int(seed), mesh=mesh, regions=regions, rig=rig, landmarks=lmk, model=model,
                     l_eyelid=l_eye, r_eyelid=r_eye)
