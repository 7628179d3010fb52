"""EG3D-family snapshot pickles (EG3D, Next3D, OmniAvatar's release) as omnibench generators.

``scan`` reads a pickle without executing it; ``checkout`` finds and guards the user's code; ``loading`` builds
the network (rebuild from the checkout, or trusted unpickling); ``geometry`` converts cameras and depth;
``generator`` holds the ``eg3d``, ``next3d`` and ``omniavatar-pkl`` generators.
"""
