"""Calibration reports: metric families run on generators whose answer is known, each writing its section
of ``reports/calibration.md``.

* :mod:`metrics.calibration.control` — AED / ASD / APD (``python -m metrics.calibration.control``);
* :mod:`metrics.calibration.idmv` — identity, multi-view consistency and geometry
  (``python -m metrics.calibration.idmv``).
"""
