"""Stage I configurations: ``tiny`` (2 CPU cores, minutes) and ``full`` (paper scale, one GPU)."""

from __future__ import annotations

from dataclasses import dataclass

from reference_model.config_record import ConfigRecord


@dataclass(frozen=True)
class SDFConfig(ConfigRecord):
    """Every knob of Stage I data, model and training (distances in metres)."""

    name: str = "tiny"
    head: str = "synthetic"
    # parameter sampling (the paper: Gaussian shape/expression, ranges of jaw and neck pose)
    n_param_sets: int = 4000  # paper: 150_000
    n_shape: int = 10  # conditioning uses the first n_shape shape coefficients
    n_expression: int = 10
    shape_std: float = 1.0
    expression_std: float = 1.0
    jaw_open_max: float = 0.35  # radians about +x
    jaw_side_std: float = 0.03
    neck_std: float = 0.12
    # points per mesh (the paper: 4K on-surface N and 4K off-surface F)
    n_surface: int = 512
    n_off_surface: int = 512
    # fraction of the surface points N drawn with probability area x expression mobility (the per-vertex norm
    # of the displacements unit expression coefficients cause) instead of area alone: 0 is the paper's uniform
    # sampling; on the synthetic head 4 % of the area moves > 4 mm with expression, so L_sem barely sees it
    mobile_fraction: float = 0.0
    near_std: float = 0.01  # off-surface: half near the surface (Gaussian offset, metres) ...
    volume_pad: float = 0.05  # ... half uniform in the padded bounding box
    meshes_per_step: int = 8
    # model
    hidden: int = 128
    layers: int = 5
    pe_frequencies: int = 6  # finest period 2 pi r / 32 ~ 4 cm (4 octaves: 16 cm smoothed the nose and lips)
    skip_layer: int = 3
    # losses (weights)
    w_surface: float = 3000.0
    w_normal: float = 50.0
    w_eikonal: float = 5.0
    w_offsurface: float = 300.0  # |s - s*| on off-surface points (ground-truth distances are available)
    w_semantic: float = 500.0
    # optimisation
    steps: int = 6000
    lr: float = 1e-3
    lr_decay_every: int = 1000
    lr_decay: float = 0.5
    seed: int = 0
    log_every: int = 100
    ckpt_every: int = 500


CONFIGS: dict[str, SDFConfig] = {
    "tiny": SDFConfig(),
    "full": SDFConfig(
        name="full",
        n_param_sets=150_000,
        n_shape=100,
        n_expression=50,
        n_surface=4096,
        n_off_surface=4096,
        meshes_per_step=16,
        hidden=256,
        layers=8,
        pe_frequencies=6,
        skip_layer=4,
        steps=200_000,
        lr=5e-4,
        lr_decay_every=50_000,
        ckpt_every=5000,
        log_every=500,
    ),
}
