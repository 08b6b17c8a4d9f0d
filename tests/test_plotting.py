"""Shared figures: the foci glass brain draws markers for a few foci and a density for thousands."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402

from painmeta.plotting import foci_density_image, foci_glass_brain, foci_glass_brain_caption  # noqa: E402


def _foci(n: int, centre=(40, -20, 50), spread=4.0, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    xyz = np.asarray(centre, float) + rng.normal(0, spread, size=(n, 3))
    return pd.DataFrame({"focus_id": [f"f{i}" for i in range(n)], "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2],
                         "study_id": [f"s{i % 7}" for i in range(n)], "experiment_id": [f"e{i % 3}" for i in range(n)]})


def test_density_counts_every_focus_on_the_grid_and_peaks_where_they_are():
    foci = pd.concat([_foci(300), pd.DataFrame({"focus_id": ["far"], "x": [500.0], "y": [0.0], "z": [0.0],
                                                "study_id": ["s0"], "experiment_id": ["e0"]})], ignore_index=True)
    img, n_outside = foci_density_image(foci, fwhm=8.0)
    assert n_outside == 1
    data = np.asarray(img.dataobj)
    # foci per cm³ on 2 mm voxels: the integral over the grid is the number of foci counted (smoothing keeps it).
    assert data.sum() * 8 / 1000 == pytest.approx(300, rel=1e-3)
    peak = nib_world(img, np.unravel_index(np.argmax(data), data.shape))
    assert np.linalg.norm(peak - np.array([40, -20, 50])) < 6


def nib_world(img, ijk) -> np.ndarray:
    from nibabel.affines import apply_affine

    return apply_affine(img.affine, np.asarray(ijk, float))


def _artists(fig):
    images = sum(isinstance(a, AxesImage) for ax in fig.axes for a in ax.get_children())
    markers = sum(isinstance(a, PathCollection) for ax in fig.axes for a in ax.get_children())
    return images, markers


def test_glass_brain_draws_markers_up_to_the_limit_and_a_density_above_it():
    foci = _foci(40)
    flagged = {"f0", "f1"}
    few = foci_glass_brain(foci, flagged, title="t", density_above=40)
    images, markers = _artists(few)
    assert images == 0 and markers > 0
    many = foci_glass_brain(foci, flagged, title="t", density_above=39)
    images, markers = _artists(many)
    # One projection image per view (l, y, r, z), plus the colour bar; only the flagged foci are markers.
    assert images >= 4
    assert markers == 4
    plt.close("all")


def test_caption_says_what_the_figure_draws():
    foci = _foci(40)
    few = foci_glass_brain_caption(foci, {"f0"}, colour_by="study_id", density_above=40)
    assert few.startswith("One marker per focus (40 foci), one colour per study (7).")
    assert "Black crosses: 1 focus with a QA error." in few
    many = foci_glass_brain_caption(foci, set(), density_above=39)
    assert many.startswith("Density of all 40 foci, not one marker per focus (more than 39 markers")
    assert "FWHM 8 mm" in many and "cross" not in many


def test_figure_formats_can_be_narrowed_for_one_run(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from painmeta.plotting import copy_figures, save_figure

    fig = plt.figure()
    assert [p.suffix for p in save_figure(fig, tmp_path / "a")] == [".png", ".svg", ".pdf"]
    monkeypatch.setenv("PAINMETA_FIGURE_FORMATS", "png")
    written = save_figure(fig, tmp_path / "b")
    assert [p.suffix for p in written] == [".png"]
    monkeypatch.setenv("PAINMETA_FIGURE_FORMATS", "nonsense")  # unknown values fall back to every format
    assert len(save_figure(fig, tmp_path / "c")) == 3
    copied = copy_figures(written, {"b": tmp_path / "sub" / "d"})
    assert [p.name for p in copied] == ["d.png"] and copied[0].read_bytes() == written[0].read_bytes()
    plt.close(fig)
