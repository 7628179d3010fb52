"""OmniAvatar Stage II: the geometry-guided tri-plane GAN (EG3D-style generator guided by the frozen W).

Modules: ``mapping``, ``synthesis`` (tri-planes), ``triplane`` (lookup), ``decoder`` (dynamic details),
``renderer`` (rays, importance sampling, compositing), ``superresolution``, ``discriminator`` (dual),
``encoder`` (E for L_enc), ``losses``, ``generator`` (G), ``train``, ``checkpoint``.
"""
