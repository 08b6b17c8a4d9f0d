"""painmeta: reproducible neuroimaging meta-analysis of CIPN and cancer pain.

Stages (one module each): :mod:`painmeta.extraction` (tables, validation,
coordinate QA, exports), :mod:`painmeta.ale` (NiMARE wrapper and in-house
engine), :mod:`painmeta.roi`, :mod:`painmeta.proportions`,
:mod:`painmeta.quality`, :mod:`painmeta.audit`, :mod:`painmeta.report`.
"""

__version__ = "0.1.0"
