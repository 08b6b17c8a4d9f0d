"""Activation likelihood estimation: NiMARE wrapper and an independent engine.

Modules
-------
Layers, each importing only those above it in this list (ANALYSIS.md section 7):

kernel
    Eickhoff 2009 sample-size kernel (FWHM, MA values), identical to NiMARE's.
geometry
    The MNI152 2 mm mask, mm <-> voxel.
labels
    Atlas labels of MNI points and clusters (AAL2, Harvard-Oxford; shipped in wheels).
problem
    Foci -> per-experiment MA maps and the ALE union; voxel or exact focus placement.
inference
    Engine-neutral: analytic null, p/z, voxel-level and cluster (size, mass) FWE,
    thresholds, cluster labelling and labelled cluster tables.
results
    :class:`ALEResult`, the engine-neutral result (imports no engine).
inhouse
    Independent engine (numpy/numba): sparse parallel Monte Carlo cluster null.
nimare_engine
    Typed wrapper around NiMARE's ``ALE`` / ``FWECorrector`` / diagnostics.
contributions
    Jackknife and focus counter for significant clusters.
executor
    Seeded blocks of random work run in-process or on Dask (byte-identical
    either way). It imports nothing from this package, so any layer may use it.
crosscheck
    Engine agreement table.
models
    Models from the processed tables; running them; notebook tables.
cli
    ``python -m painmeta ale``.

Heavy imports (NiMARE, numba kernels) happen when a submodule is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "ALEModel",
    "ALEResult",
    "analyze",
    "build_models",
    "crosscheck",
    "fwhm_from_sample_size",
    "run_model",
]

_LAZY = {
    "ALEModel": "painmeta.ale.models",
    "analyze": "painmeta.ale.models",
    "build_models": "painmeta.ale.models",
    "run_model": "painmeta.ale.models",
    "ALEResult": "painmeta.ale.results",
    "fwhm_from_sample_size": "painmeta.ale.kernel",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    if name == "crosscheck":
        return import_module("painmeta.ale.crosscheck")
    raise AttributeError(name)
