"""Talairach/MNI conversion and coordinate QA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from painmeta import coords
from painmeta.extraction import extract


def test_lancaster_matrices_are_the_published_ones():
    # Coefficients as published with Lancaster et al. 2007 (BrainMap icbm_spm2tal.m,
    # icbm_fsl2tal.m, icbm_other2tal.m); a typo here would shift every converted focus.
    assert coords.ICBM2TAL["tal2icbm_spm"][0].tolist() == [0.9254, 0.0024, -0.0118, -1.0207]
    assert coords.ICBM2TAL["tal2icbm_spm"][2].tolist() == [0.0152, 0.0883, 0.8924, 4.0926]
    assert coords.ICBM2TAL["tal2icbm_fsl"][1].tolist() == [-0.0083, 0.9479, -0.0580, -1.0239]
    assert coords.ICBM2TAL["tal2icbm_other"][2].tolist() == [0.0103, 0.0752, 0.8967, 3.6475]


def test_tal2mni_matches_published_values():
    # icbm_spm2tal applied to MNI (10, 20, 30) gives, by the published matrix:
    # x = 0.9254*10 + 0.0024*20 - 0.0118*30 - 1.0207 = 7.9273
    # y = -0.0048*10 + 0.9316*20 - 0.0871*30 - 1.7667 = 14.2043
    # z = 0.0152*10 + 0.0883*20 + 0.8924*30 + 4.0926 = 32.7826. The inverse must map it back.
    tal = coords.mni2tal([[10, 20, 30]], "tal2icbm_spm")[0]
    assert tal == pytest.approx([7.9273, 14.2043, 32.7826], abs=1e-4)
    assert coords.tal2mni([tal], "tal2icbm_spm")[0] == pytest.approx([10, 20, 30], abs=1e-9)


@pytest.mark.parametrize("transform", sorted(coords.ICBM2TAL))
def test_round_trip(transform):
    rng = np.random.default_rng(0)
    xyz = rng.uniform(-70, 70, size=(50, 3))
    assert coords.tal2mni(coords.mni2tal(xyz, transform), transform) == pytest.approx(xyz, abs=1e-9)


def test_tal2mni_other_agrees_with_nimare():
    # NiMARE's tal2mni is an independent port of BrainMap's tal2icbm_other.m.
    from nimare.utils import tal2mni as nimare_tal2mni

    xyz = np.array([[-38.0, -20.0, 50.0], [12.0, 40.0, -8.0], [0.0, -60.0, 30.0], [50.0, 10.0, 5.0]])
    assert coords.tal2mni(xyz, "tal2icbm_other") == pytest.approx(nimare_tal2mni(xyz), abs=1e-6)


def test_mask_is_the_gingerale_style_mask():
    mask, affine = coords.brain_mask()
    assert mask.shape == (91, 109, 91)
    assert int(mask.sum()) == 228483
    assert affine[0, 0] == pytest.approx(-2) or affine[0, 0] == pytest.approx(2)


def test_hua_table_errors_are_flagged():
    ext, _, _ = extract("cancer_pain")
    flags = ext.qa_flags
    errors = flags[flags["severity"] == "error"]
    by = {(r.focus_id, r.check) for r in errors.itertuples()}
    # 1) "right" precentral peak at x = -48: hemisphere sign.
    assert ("Hua2024_T2_05", "hemisphere_sign") in by
    # 2) orbitofrontal peak at x = -80: outside the brain.
    assert ("Hua2024_T2_07", "outside_brain") in by
    # 3) "cerebellum Crus1" at (-2, -34, 64), the vertex: label far from its atlas region.
    assert ("Hua2024_T2_10", "label_far_from_atlas") in by
    crus = flags[(flags.focus_id == "Hua2024_T2_10") & (flags.check == "label_far_from_atlas")].iloc[0]
    assert "Cerebelum_Crus1" in crus["message"]
    # Brodmann labels that do not fit their regions are reported (as warnings).
    assert {"Hua2024_T2_08", "Hua2024_T2_01"} <= set(flags.loc[flags.check == "brodmann_far_from_atlas", "focus_id"])
    # Flags inform, they never change data.
    foci = ext.foci.set_index("focus_id")
    assert (foci.loc["Hua2024_T2_07", ["x", "y", "z"]].tolist()) == [-80, 30, -20]


def test_clean_peaks_raise_no_error():
    foci = pd.DataFrame({
        "focus_id": ["a", "b", "c"], "x": [-40, 6, 40], "y": [-10, -58, -60], "z": [56, 40, -30],
        "label": ["precentral gyrus", "precuneus", "Cerebellum_Crus1_R"], "hemisphere": ["left", "right", "right"],
    })
    lookup, flags = coords.qa_foci(foci)
    assert flags.empty or (flags["severity"] != "error").all(), flags
    assert lookup.loc[0, "aal"].startswith("Precentral")


def test_label_rules_are_explicit():
    assert coords.expected_aal_prefixes("Cerebellum_Crus2_L") == ("Cerebelum_Crus2",)
    assert coords.expected_aal_prefixes("Postcentral gyrus (BA 31)") == ("Postcentral",)
    assert coords.expected_aal_prefixes("something unusual") == ()


def test_label_at_many_points_at_once_equals_one_at_a_time():
    from painmeta.coords import load_atlas

    rng = np.random.default_rng(3)
    xyz = np.vstack([rng.uniform(-80, 80, size=(200, 3)), [[500.0, 0.0, 0.0], [-40.0, -20.0, 50.0]]])
    for name in ("aal", "harvard_oxford", "talairach_ba"):
        atlas = load_atlas(name)
        many = atlas.label_at(xyz)
        assert many == [atlas.label_at(p)[0] for p in xyz]
        assert many[-2] == "" and many[-1] != ""  # outside the volume; in the brain


def test_brain_mask_is_nimares_and_read_without_importing_nimare():
    import subprocess
    import sys

    from nimare.utils import get_resource_path, get_template

    from painmeta.coords import brain_mask, nimare_resources

    mask, affine = brain_mask()
    ref = get_template("mni152_2mm", mask="brain")
    assert np.array_equal(mask, np.asarray(ref.dataobj) > 0) and np.array_equal(affine, ref.affine)
    assert int(mask.sum()) == 228483
    assert nimare_resources().resolve() == Path(get_resource_path()).resolve()
    # Importing NiMARE takes seconds; the extraction stage reads two of its files without it.
    code = ("import sys; from painmeta import coords; coords.brain_mask(); coords.load_atlas('harvard_oxford'); "
            "print('nimare' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
