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


def test_montage_slices_are_never_empty_and_legend_fits():
    foci = pd.DataFrame({"experiment_id": [f"e{i}" for i in range(12)], "x": np.linspace(-50, 50, 12),
                         "y": np.linspace(-60, 40, 12), "z": np.full(12, 20.0)})
    img = figures.descriptive_ale(foci, {f"e{i}": 15 for i in range(12)})
    thr = 0.1 * float(np.asarray(img.dataobj).max())
    cuts = figures.choose_cuts(img, foci, threshold=thr)
    assert cuts and min(cuts) >= -80 and max(cuts) <= 60  # only where foci / map are, inside the brain
    ijk = np.argwhere(np.asarray(img.dataobj) > thr)
    map_y = (ijk @ img.affine[:3, :3].T + img.affine[:3, 3])[:, 1]
    for c in cuts:  # no empty slice: the map is drawn on it, or a focus near it is
        assert np.any(np.abs(foci["y"] - c) <= 5) or np.any(np.abs(map_y - c) < 1.01)
    assert figures.choose_cuts(None, None) == []
    colours, handles = figures._foci_colours(foci, "experiment_id")
    assert len(handles) == 1 and set(colours.values()) == {figures.FOCI_COLOUR}  # 12 groups: one colour
    colours, handles = figures._foci_colours(foci.head(5), "experiment_id")
    assert len(handles) == 5 and len(set(colours.values())) == 5
    fig = figures.coronal_montage(img, foci, title="t", outline_img=img)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["foci (n = 12, 12 experiments)", "surviving clusters"]
    # the legend sits below the slices, not on them
    assert fig.legends[0].get_bbox_to_anchor().y0 <= min(ax.get_position().y0 for ax in fig.axes)
    # every colour bar is labelled
    assert any(ax.get_ylabel() == "ALE" for ax in fig.axes)


def test_surviving_clusters_figure_and_empty_case(tmp_path):
    foci = pd.DataFrame({"experiment_id": ["a", "b"], "x": [40.0, 40.0], "y": [4.0, 4.0], "z": [2.0, 2.0]})
    img = figures.descriptive_ale(foci, {"a": 20, "b": 20})
    data = np.asarray(img.dataobj)
    thr = type(img)(np.where(data > 0.01, data, 0).astype(np.float32), img.affine)
    clusters = pd.DataFrame({"cluster_id": [1], "peak_x": [40.0], "peak_y": [4.0], "peak_z": [2.0]})
    fig = figures.surviving_clusters(thr, clusters, title="t")
    files = save_figure(fig, tmp_path / "surv")
    assert all(f.stat().st_size > 1000 for f in files)
    assert figures.surviving_clusters(thr, clusters.iloc[:0], title="t") is None


def test_interactive_viewer_is_offline():
    import re

    foci = pd.DataFrame({"experiment_id": ["a", "b"], "x": [40.0, 38.0], "y": [4.0, 6.0], "z": [2.0, 2.0]})
    img = figures.descriptive_ale(foci, {"a": 20, "b": 20})
    html = figures.interactive_view(img).get_standalone()
    assert "brainsprite" in html.lower() and "jquery" in html.lower()  # the libraries are inlined
    # nothing is fetched: no script, link, image or frame source outside the page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, flags=re.IGNORECASE)
    assert not re.search(r"https?://[^\s\"'<>]*(cdn|googleapis|jsdelivr|unpkg|cloudflare)", html, flags=re.I)
    embedded = figures.viewer_html(figures.interactive_view(img))
    assert embedded.startswith('<div class="pm-viewer"><iframe') and "srcdoc=" in embedded
