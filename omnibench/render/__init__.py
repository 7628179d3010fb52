"""Mesh renderer: posed head meshes + EG3D cameras -> RGB, depth, mask, with procedural appearance.

``render_mesh(vertices (B, V, 3), faces (F, 3), camera (B, 25), resolution, appearance, regions=...)``
returns :class:`RenderOutput` (image, depth, mask). ``Appearance.from_latent(z)`` decodes a latent into
one identity's look; ``HeadRegions.from_model(model)`` tells the shader where lips, eyes and scalp are.
See docs/renderer.md.
"""

from omnibench.render.appearance import APPEARANCE_VERSION, APPEARANCE_Z_DIM, Appearance
from omnibench.render.regions import HeadRegions
from omnibench.render.renderer import RENDERER_VERSION, RenderOutput, render_mesh

__all__ = [
    "APPEARANCE_VERSION",
    "APPEARANCE_Z_DIM",
    "RENDERER_VERSION",
    "Appearance",
    "HeadRegions",
    "RenderOutput",
    "render_mesh",
]
