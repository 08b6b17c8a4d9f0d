"""ALE figures render on small inputs (files exist and are non-empty)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from painmeta.ale import figures
from painmeta.plotting import save_figure


def test_kernel_table_reproduces_review_kernel_facts():
    t = figures.kernel_table([12, 20, 20]).set_index("n")
    assert round(t.loc[20, "fwhm_mm"], 2) == 9.24 and round(t.loc[12, "fwhm_mm"], 2) == 9.76
    assert round(t.loc[20, "peak_ma"], 4) == 0.0084


def test_montage_glass_and_null_render(tmp_path):
    foci = pd.DataFrame({"experiment_id": ["a", "a", "b"], "x": [-40, 30, 6], "y": [-20, 18, -58],
                         "z": [50, 4, 40]})
    img = figures.descriptive_ale(foci, {"a": 12, "b": 20})
    assert float(np.asarray(img.dataobj).max()) > 0.008
    for fig, stem in ((figures.coronal_montage(img, foci, title="t"), "montage"),
                      (figures.glass_brain(img, foci, title="t"), "glass")):
        files = save_figure(fig, tmp_path / stem)
        assert all(f.stat().st_size > 1000 for f in files)
    rng = np.random.default_rng(0)
    nulls = pd.DataFrame({"model": "m", "engine": ["nimare"] * 20 + ["inhouse"] * 20,
                          "max_ale": rng.uniform(0.01, 0.02, 40), "max_cluster_size": rng.integers(10, 90, 40),
                          "max_cluster_mass": rng.uniform(0.1, 0.3, 40)})
    files = save_figure(figures.null_distributions(nulls), tmp_path / "null")
    assert all(f.stat().st_size > 1000 for f in files)
