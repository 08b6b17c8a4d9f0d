"""Kernel facts: Eickhoff 2009 FWHM, identity with NiMARE's kernel, review numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from painmeta.ale import problem as ih
from painmeta.ale.kernel import ale_kernel, fwhm_from_sample_size, sigma_voxels


@pytest.mark.parametrize(("n", "fwhm"), [(20, 9.24), (12, 9.76), (13, 9.66)])
def test_fwhm_review_values(n: int, fwhm: float) -> None:
    # The review's range 9.24-9.76 mm is n = 20 (narrower) to n = 12 (wider).
    assert round(fwhm_from_sample_size(n), 2) == fwhm


def test_fwhm_decreases_with_sample_size() -> None:
    values = [fwhm_from_sample_size(n) for n in (1, 5, 12, 20, 100, 10_000)]
    assert all(a > b for a, b in zip(values, values[1:]))
    # The template term alone is the floor: 5.7 / (2 sqrt(2/pi)) * sqrt(8 ln 2).
    floor = 5.7 / (2 * np.sqrt(2 / np.pi)) * np.sqrt(8 * np.log(2))
    assert values[-1] > floor and values[-1] - floor < 0.01


def test_fwhm_rejects_nonpositive() -> None:
    with pytest.raises(ValueError):
        fwhm_from_sample_size(0)


@pytest.mark.parametrize("n", [1, 2, 9, 12, 13, 20, 32, 45, 1000])
def test_kernel_identical_to_nimare(n: int) -> None:
    from nimare.meta.utils import _kernel_to_sparse_support, get_ale_kernel
    from nimare.utils import get_template

    sigma, cube = get_ale_kernel(get_template("mni152_2mm", mask="brain"), sample_size=n)
    offsets, values = _kernel_to_sparse_support(cube)
    k = ale_kernel(sample_size=n)
    assert k.sigma_vox == sigma
    assert np.array_equal(k.cube, cube)
    assert np.array_equal(k.offsets, offsets)
    assert np.array_equal(k.values, values)  # float32, bit for bit


def test_kernel_geometry() -> None:
    k = ale_kernel(sample_size=20)
    assert k.cube.shape == (17, 17, 17)  # truncated at 4 sigma (sigma ~ 1.96 voxels)
    assert k.radius == 8
    assert k.values.dtype == np.float32
    assert abs(k.cube.sum() - 1.0) < 1e-12  # a probability distribution over voxels
    assert np.argmax(k.cube) == np.ravel_multi_index((8, 8, 8), k.cube.shape)
    assert sigma_voxels(k.fwhm_mm) == k.sigma_vox


def test_kernel_needs_one_parameter() -> None:
    with pytest.raises(ValueError):
        ale_kernel()
    with pytest.raises(ValueError):
        ale_kernel(sample_size=12, fwhm=9.0)


def test_isolated_focus_peak_is_review_maximum() -> None:
    # The review's maximum ALE 0.0084 is the peak of one isolated n = 20 focus.
    foci = pd.DataFrame(
        [("a", 40.0, 4.0, 2.0), ("b", -40.0, -60.0, 30.0), ("c", 0.0, 50.0, -10.0)],
        columns=["experiment_id", "x", "y", "z"],
    )
    problem = ih.make_problem(foci, {"a": 20, "b": 12, "c": 13})
    ale = ih.ale_map(problem)
    assert ale.max() == pytest.approx(0.0084046, abs=1e-7)
    assert round(float(ale.max()), 4) == 0.0084
    assert ale_kernel(sample_size=20).peak == pytest.approx(0.0084046, abs=1e-7)
    # MA of one experiment: the max over its foci, never a sum (Turkeltaub 2012).
    twin = pd.DataFrame([("a", 40.0, 4.0, 2.0), ("a", 40.0, 4.0, 2.0)], columns=["experiment_id", "x", "y", "z"])
    ma, _ = ih.ma_map(ih.make_problem(twin, {"a": 20}), 0)
    assert ma.max() == np.float32(ale_kernel(sample_size=20).peak)
