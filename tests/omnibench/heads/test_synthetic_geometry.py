"""Geometry and behaviour of the synthflame head on the `small` preset, checked independently of the
generator's own self-validation (landmark tolerances, dynamic-contour sign, eyelids, locality, LBS)."""

from __future__ import annotations

import numpy as np
import pytest

from omnibench.heads.synthetic.landmarks import evaluate
from omnibench.heads.synthetic.mesh import face_normals
from omnibench.heads.synthetic.model import SynthHead, build_head
from omnibench.heads.synthetic.reference_lbs import reference_lbs, rodrigues


@pytest.fixture(scope="module")
def small() -> SynthHead:
    return build_head("small", 0)


def test_landmarks_within_2mm_and_valid(small: SynthHead) -> None:
    m, lm = small.mesh, small.landmarks
    pts = evaluate(m.vertices, m.faces, lm.full.faces, lm.full.bary)
    assert np.linalg.norm(pts - lm.targets, axis=1).max() < 0.002
    assert lm.full.bary.min() >= 0 and np.allclose(lm.full.bary.sum(1), 1.0)
    assert lm.full.faces.max() < m.n_head_faces  # landmarks never sit on the eyeballs
    # iBUG handedness: point 0 and the right eye (36-41) on -x, point 16 and 42-47 on +x
    assert pts[0, 0] < 0 < pts[16, 0] and pts[36:42, 0].max() < 0 < pts[42:48, 0].min()
    assert pts[48, 0] < 0 < pts[54, 0]
    dyn = evaluate(m.vertices, m.faces, lm.dyn_faces, lm.dyn_bary)
    np.testing.assert_array_equal(dyn[0], pts[:17])
    np.testing.assert_allclose(dyn[40:], dyn[1:40, ::-1] * [-1.0, 1.0, 1.0], atol=1e-3)


def test_dynamic_row_is_silhouette_of_positive_yaw(small: SynthHead) -> None:
    """Row a holds the contour of the head yawed by +a deg (nose toward +x) seen from +z (DECA's sign)."""
    m, lm, md = small.mesh, small.landmarks, small.model
    a = 20
    pose = np.zeros(15)
    pose[:3] = [0.0, np.deg2rad(a), 0.0]
    posed = reference_lbs(md, None, None, pose).vertices
    nose = posed[: m.n_head][np.argmax(m.vertices[: m.n_head, 2])]
    assert nose[0] > 0.02  # +yaw about +y turns the nose toward +x
    fn = face_normals(posed, m.faces)
    fn /= np.linalg.norm(fn, axis=1, keepdims=True)
    far = slice(12, 17)  # outer +x contour points
    nz_row = fn[lm.dyn_faces[a, far], 2]
    nz_static = fn[lm.dyn_faces[0, far], 2]
    nz_wrong = fn[lm.dyn_faces[39 + a, far], 2]  # the mirrored row keeps the static +x side
    assert np.abs(nz_row).max() < 0.35  # on the silhouette: normals perpendicular to the view
    for nz in (nz_static, nz_wrong):  # the static contour faces away from the camera
        assert nz.max() < 0.0 and nz.mean() < -0.15


def test_eyelids_close_the_eye_after_lbs(small: SynthHead) -> None:
    m, lm, md = small.mesh, small.landmarks, small.model
    pose = np.zeros(15)
    pose[:3] = [0.1, -0.2, 0.05]
    posed = reference_lbs(md, None, None, pose).vertices
    r0 = rodrigues(pose[:3])
    for eyelid, upper, lower in ((small.r_eyelid, [37, 38], [41, 40]), (small.l_eyelid, [43, 44], [47, 46])):
        assert np.abs(eyelid[m.n_head:]).max() == 0.0
        assert 0.008 <= np.linalg.norm(eyelid, axis=1).max() <= 0.0105
        open_ = evaluate(posed, m.faces, lm.full.faces, lm.full.bary)
        closed = evaluate(posed + eyelid @ r0.T, m.faces, lm.full.faces, lm.full.bary)
        d_open = np.linalg.norm(open_[upper] - open_[lower], axis=1)
        d_closed = np.linalg.norm(closed[upper] - closed[lower], axis=1)
        assert np.all(d_closed < 0.5 * d_open)
        other = [41, 40] if upper == [43, 44] else [47, 46]
        np.testing.assert_allclose(closed[other], open_[other], atol=1e-15)  # one eye at a time


def test_expression_and_jaw_are_local(small: SynthHead) -> None:
    m, md, rg = small.mesh, small.model, small.regions
    scalp, lips, neck = rg.masks["scalp"], rg.masks["lips"], rg.masks["neck"]
    sd = md["shapedirs"]
    jaw_drop = np.linalg.norm(sd[:, :, 300], axis=1)
    assert jaw_drop[lips].max() > 0.005 and jaw_drop[scalp].max() == 0.0
    assert np.linalg.norm(sd[:, :, 300:], axis=1)[neck | ~rg.masks["face"]].max() == 0.0
    upper = m.rows[m.slit_row, np.isin(m.rows[m.slit_row], m.dup_of[m.dup_of >= 0])]
    lower = np.flatnonzero(m.dup_of >= 0)
    assert not np.allclose(sd[upper, :, 300], sd[lower, :, 300])  # lips part under expression
    pose = np.zeros(15)
    pose[6] = 0.3
    moved = np.linalg.norm(reference_lbs(md, None, None, pose).vertices - m.vertices, axis=1)
    assert moved[scalp].max() < 1e-12
    chin = rg.sub["chin"]
    assert moved[chin].mean() > 0.01


def test_reference_lbs_known_answers(small: SynthHead) -> None:
    md = dict(small.model)
    v = md["v_template"]
    w = md["weights"]
    t = np.array([0.01, -0.02, 0.03])
    np.testing.assert_allclose(reference_lbs(md, None, None, None, t).vertices, v + t, atol=1e-15)
    # chain composition on fully neck-weighted vertices, correctives switched off
    md["posedirs"] = np.zeros_like(md["posedirs"])
    pose = np.zeros(15)
    pose[:3], pose[3:6] = [0.1, 0.2, -0.1], [0.3, -0.1, 0.2]
    out = reference_lbs(md, None, None, pose)
    j = out.rest_joints
    r0, r1 = rodrigues(pose[:3]), rodrigues(pose[3:6])
    ids = np.flatnonzero(w[:, 1] == 1.0)
    assert ids.size > 100
    expect = ((v[ids] - j[1]) @ r1.T + (j[1] - j[0])) @ r0.T + j[0]
    np.testing.assert_allclose(out.vertices[ids], expect, atol=1e-14)
    # posedirs layout: column 9(j-1)+3r+c multiplies element (r, c) of R_j - I, vertex-major (v, k)
    vid = int(np.flatnonzero(w[:, 0] == 1.0)[0])
    for jnt, r, c, k in ((2, 2, 1, 1), (1, 0, 2, 0), (4, 1, 0, 2)):
        pd = np.zeros_like(md["posedirs"])
        pd[vid, k, 9 * (jnt - 1) + 3 * r + c] = 1.0
        md["posedirs"] = pd
        pose = np.zeros(15)
        pose[3 * jnt: 3 * jnt + 3] = [0.2, -0.3, 0.4]
        out = reference_lbs(md, None, None, pose)
        delta = out.vertices[vid] - v[vid]
        expect = np.zeros(3)
        expect[k] = (rodrigues(pose[3 * jnt: 3 * jnt + 3]) - np.eye(3))[r, c]
        np.testing.assert_allclose(delta, expect, atol=1e-14)
