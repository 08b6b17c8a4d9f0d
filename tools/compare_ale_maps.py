#!/usr/bin/env python
"""Compare two ALE (or any statistic) maps voxel by voxel in world space.

Typical use: a published NIfTI map against a map this project computed from the
same input, e.g. Enge et al. 2021's NiMARE 0.0.9 ALE map against ours::

    .venv/bin/python tools/compare_ale_maps.py \\
        ours_ale.nii.gz published_ale_all_stat.nii.gz \\
        --labels ours published --sleuth sleuth_all.txt --shifts \\
        --figure out/ours_vs_published --json out/ours_vs_published.json

What it reports (on the voxels of ``--mask``; default: the MNI152 2 mm brain
mask shipped with NiMARE, 228,483 voxels):

* Pearson r, max / mean |A - B|, mean signed difference, RMS difference, and
  where the largest difference sits (mm);
* each map's peak value and its location (mm);
* the ratio A / B on voxels where both maps exceed ``--ratio-floor`` times the
  larger peak (is the difference a constant scale factor?);
* with ``--sleuth``: |A - B| by distance to the nearest focus (are the
  differences near foci, in the tails, everywhere?);
* with ``--shifts``: r and max |A - B| after shifting B by every integer voxel
  offset in {-1, 0, 1}^3 (a whole-voxel misregistration shows up as a shift
  with r = 1; a half-voxel bias as two neighbouring shifts of similar r);
* with ``--figure STEM``: ``STEM.png`` and ``STEM.svg`` - the difference map
  on orthogonal slices through the largest difference, plus a scatter of B
  against A.

Images may sit on grids that differ by axis flips or permutations (NiMARE 0.0.9
wrote x-flipped images): both are brought to RAS+ orientation with
``nibabel.as_closest_canonical``, which reorders voxels without interpolation,
and must then share one affine and shape; otherwise the tool stops (it never
resamples silently). Exit status: 0 on success, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import nibabel as nib
import numpy as np


class CompareError(Exception):
    """Input problem the user can fix (message says how)."""


@dataclass
class Comparison:
    """Summary of a voxelwise comparison of map A with map B."""

    label_a: str
    label_b: str
    n_voxels: int
    pearson_r: float
    max_abs_diff: float
    max_abs_diff_mm: list[float]
    mean_abs_diff: float
    mean_diff: float
    rms_diff: float
    peak_a: float
    peak_a_mm: list[float]
    peak_b: float
    peak_b_mm: list[float]
    n_nonzero_a: int
    n_nonzero_b: int
    ratio_floor: float
    ratio_n: int
    ratio_median: float
    ratio_p05: float
    ratio_p95: float
    ratio_min: float
    ratio_max: float
    by_distance: list[dict] = field(default_factory=list)
    shifts: list[dict] = field(default_factory=list)


def load_canonical(path: str | Path) -> nib.Nifti1Image:
    """Load a 3-D image in RAS+ voxel order (no interpolation)."""
    path = Path(path)
    if not path.is_file():
        raise CompareError(f"{path}: file not found. Fix: give the path of a NIfTI image.")
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises several types for bad files
        raise CompareError(f"{path}: not a readable NIfTI image ({exc}).") from exc
    img = nib.as_closest_canonical(img)
    if len(img.shape) == 4 and img.shape[3] == 1:
        img = img.slicer[..., 0]
    if len(img.shape) != 3:
        raise CompareError(f"{path}: expected a 3-D image, got shape {img.shape}.")
    return img


def same_grid(a: nib.Nifti1Image, b: nib.Nifti1Image, what: str) -> None:
    """Raise unless ``a`` and ``b`` share shape and affine (within 1e-4 mm)."""
    if a.shape != b.shape or not np.allclose(a.affine, b.affine, atol=1e-4):
        raise CompareError(
            f"{what}: grids differ after reorientation (shapes {a.shape} vs {b.shape}; affines\n"
            f"{np.round(a.affine, 4)}\nvs\n{np.round(b.affine, 4)}). Fix: resample one map onto the "
            "other's grid first (this tool does not interpolate)."
        )


def default_mask() -> nib.Nifti1Image:
    """The MNI152 2 mm brain mask that ships inside the NiMARE wheel."""
    try:
        from painmeta.ale.geometry import default_mask_path
    except ImportError as exc:  # pragma: no cover - only outside the project venv
        raise CompareError("no --mask given and painmeta is not importable. Fix: pass --mask.") from exc
    return nib.as_closest_canonical(nib.load(str(default_mask_path())))


def read_foci_mm(path: str | Path) -> np.ndarray:
    """MNI foci (mm) of a Sleuth file, Talairach converted (project reader)."""
    from painmeta.sleuth import read_sleuth

    data = read_sleuth(path).to_mni()
    return data.foci[["x", "y", "z"]].to_numpy(dtype=float)


def _mm(affine: np.ndarray, ijk: Sequence[int]) -> list[float]:
    return [float(v) for v in nib.affines.apply_affine(affine, np.asarray(ijk, dtype=float))]


def _shift(vol: np.ndarray, d: tuple[int, int, int]) -> np.ndarray:
    """``out[v] = vol[v + d]`` with zeros shifted in (no wrap-around)."""
    out = np.zeros_like(vol)
    src = tuple(slice(max(s, 0), n + min(s, 0)) for s, n in zip(d, vol.shape))
    dst = tuple(slice(max(-s, 0), n + min(-s, 0)) for s, n in zip(d, vol.shape))
    out[dst] = vol[src]
    return out


def compare(
    a_img: nib.Nifti1Image,
    b_img: nib.Nifti1Image,
    mask_img: nib.Nifti1Image,
    labels: tuple[str, str] = ("A", "B"),
    foci_mm: np.ndarray | None = None,
    shifts: bool = False,
    ratio_floor: float = 0.1,
    distance_edges: Sequence[float] = (0, 2, 4, 6, 8, 10, 15, 20, 30, np.inf),
) -> Comparison:
    """Compare two canonical images on a mask; see the module docstring.

    Parameters
    ----------
    a_img, b_img, mask_img : nibabel.Nifti1Image
        RAS+ images on one grid (use :func:`load_canonical`).
    labels : tuple of str
        Names of A and B in the output.
    foci_mm : (F, 3) array, optional
        Foci for the distance breakdown.
    shifts : bool
        Also evaluate integer voxel shifts of B in {-1, 0, 1}^3.
    ratio_floor : float
        Ratio statistics use voxels where both maps exceed this share of the larger peak.
    distance_edges : sequence of float
        Bin edges (mm) of the distance-to-nearest-focus breakdown.

    Returns
    -------
    Comparison
    """
    same_grid(a_img, b_img, f"{labels[0]} vs {labels[1]}")
    same_grid(a_img, mask_img, f"{labels[0]} vs mask")
    a = np.asarray(a_img.dataobj, dtype=np.float64)
    b = np.asarray(b_img.dataobj, dtype=np.float64)
    m = np.asarray(mask_img.dataobj) > 0
    if not m.any():
        raise CompareError("mask has no voxel > 0. Fix: pass a brain mask with --mask.")
    aff = a_img.affine
    va, vb = a[m], b[m]
    d = va - vb
    ijk = np.argwhere(m)
    i_max = int(np.argmax(np.abs(d)))
    ia, ib = int(np.argmax(va)), int(np.argmax(vb))
    with np.errstate(invalid="ignore"):
        r = float(np.corrcoef(va, vb)[0, 1])
    floor = ratio_floor * max(va.max(), vb.max())
    keep = (va > floor) & (vb > floor)
    ratio = va[keep] / vb[keep] if keep.any() else np.array([np.nan])
    out = Comparison(
        label_a=labels[0],
        label_b=labels[1],
        n_voxels=int(m.sum()),
        pearson_r=r,
        max_abs_diff=float(np.abs(d).max()),
        max_abs_diff_mm=_mm(aff, ijk[i_max]),
        mean_abs_diff=float(np.abs(d).mean()),
        mean_diff=float(d.mean()),
        rms_diff=float(np.sqrt(np.mean(d**2))),
        peak_a=float(va[ia]),
        peak_a_mm=_mm(aff, ijk[ia]),
        peak_b=float(vb[ib]),
        peak_b_mm=_mm(aff, ijk[ib]),
        n_nonzero_a=int((va != 0).sum()),
        n_nonzero_b=int((vb != 0).sum()),
        ratio_floor=float(floor),
        ratio_n=int(keep.sum()),
        ratio_median=float(np.median(ratio)),
        ratio_p05=float(np.percentile(ratio, 5)),
        ratio_p95=float(np.percentile(ratio, 95)),
        ratio_min=float(ratio.min()),
        ratio_max=float(ratio.max()),
    )
    if foci_mm is not None and len(foci_mm):
        from scipy.spatial import cKDTree

        dist, _ = cKDTree(np.asarray(foci_mm, dtype=float)).query(nib.affines.apply_affine(aff, ijk))
        for lo, hi in zip(distance_edges[:-1], distance_edges[1:]):
            sel = (dist >= lo) & (dist < hi)
            if sel.any():
                out.by_distance.append(
                    {
                        "from_mm": float(lo),
                        "to_mm": float(hi),
                        "n": int(sel.sum()),
                        "mean_abs_diff": float(np.abs(d[sel]).mean()),
                        "max_abs_diff": float(np.abs(d[sel]).max()),
                        "mean_diff": float(d[sel].mean()),
                        "mean_a": float(va[sel].mean()),
                    }
                )
    if shifts:
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for dz in (-1, 0, 1):
                    bs = _shift(b, (dx, dy, dz))[m]
                    out.shifts.append(
                        {
                            "shift_vox": [dx, dy, dz],
                            "r": float(np.corrcoef(va, bs)[0, 1]),
                            "max_abs_diff": float(np.abs(va - bs).max()),
                        }
                    )
        out.shifts.sort(key=lambda s: -s["r"])
    return out


def figure(
    a_img: nib.Nifti1Image,
    b_img: nib.Nifti1Image,
    mask_img: nib.Nifti1Image,
    result: Comparison,
    stem: str | Path,
) -> list[Path]:
    """Difference map (A - B) through the largest difference, and a B-vs-A scatter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from nilearn import plotting

    m = np.asarray(mask_img.dataobj) > 0
    a = np.asarray(a_img.dataobj, dtype=np.float64)
    b = np.asarray(b_img.dataobj, dtype=np.float64)
    diff = nib.Nifti1Image(np.where(m, a - b, 0.0), a_img.affine)
    vmax = result.max_abs_diff or 1.0
    fig = plt.figure(figsize=(12, 4.2))
    ax_map = fig.add_axes((0.0, 0.0, 0.66, 1.0))
    display = plotting.plot_stat_map(
        diff,
        bg_img=None,
        threshold=None,  # nilearn's default hides |values| < 1e-6, i.e. every float32-level difference
        cut_coords=result.max_abs_diff_mm,
        display_mode="ortho",
        cmap="RdBu_r",  # diverging, colour-blind-safe blue/red
        vmax=vmax,
        symmetric_cbar=True,
        axes=ax_map,
        figure=fig,
        draw_cross=True,
        annotate=True,
        title=f"{result.label_a} - {result.label_b} (max |diff| {result.max_abs_diff:.2g})",
    )
    display.add_contours(mask_img, levels=[0.5], colors="grey", linewidths=0.5)
    ax = fig.add_axes((0.72, 0.14, 0.26, 0.74))
    va, vb = a[m], b[m]
    ax.scatter(va, vb, s=1, alpha=0.3, color="#0072B2", rasterized=True)
    hi = max(va.max(), vb.max())
    ax.plot([0, hi], [0, hi], color="#D55E00", lw=1, label="identity")
    ax.set_xlabel(f"{result.label_a} (value)")
    ax.set_ylabel(f"{result.label_b} (value)")
    ax.set_title(f"r = {result.pearson_r:.6f}, n = {result.n_voxels:,} voxels", fontsize=9)
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    files = []
    with plt.rc_context({"svg.hashsalt": "painmeta"}):
        for ext in ("png", "svg"):
            path = stem.parent / f"{stem.name}.{ext}"
            fig.savefig(path, dpi=150, bbox_inches="tight", metadata={"Date": None} if ext == "svg" else None)
            files.append(path)
    plt.close(fig)
    return files


def format_text(c: Comparison) -> str:
    """Human-readable summary of a :class:`Comparison`."""
    lines = [
        f"A = {c.label_a}, B = {c.label_b}; {c.n_voxels:,} mask voxels "
        f"(non-zero: A {c.n_nonzero_a:,}, B {c.n_nonzero_b:,})",
        f"Pearson r            {c.pearson_r:.7f}",
        f"max |A-B|            {c.max_abs_diff:.3g} at {c.max_abs_diff_mm} mm",
        f"mean |A-B|           {c.mean_abs_diff:.3g}   mean A-B {c.mean_diff:.3g}   RMS {c.rms_diff:.3g}",
        f"peak A               {c.peak_a:.6f} at {c.peak_a_mm} mm",
        f"peak B               {c.peak_b:.6f} at {c.peak_b_mm} mm",
        f"A/B where both > {c.ratio_floor:.3g} (n={c.ratio_n:,}): median {c.ratio_median:.4f}, "
        f"5-95% [{c.ratio_p05:.4f}, {c.ratio_p95:.4f}], range [{c.ratio_min:.4f}, {c.ratio_max:.4f}]",
    ]
    if c.by_distance:
        lines.append("distance to nearest focus (mm): n, mean|A-B|, max|A-B|, mean A-B, mean A")
        for row in c.by_distance:
            lines.append(
                f"  [{row['from_mm']:>4g}, {row['to_mm']:>4g})  {row['n']:>7,}  {row['mean_abs_diff']:.3g}  "
                f"{row['max_abs_diff']:.3g}  {row['mean_diff']:+.3g}  {row['mean_a']:.3g}"
            )
    if c.shifts:
        lines.append("B shifted by (di, dj, dk) voxels (RAS+), best first: r, max|A-B|")
        for s in c.shifts[:5]:
            lines.append(f"  {tuple(s['shift_vox'])}  r={s['r']:.6f}  max={s['max_abs_diff']:.3g}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("map_a", help="first NIfTI map (A)")
    ap.add_argument("map_b", help="second NIfTI map (B)")
    ap.add_argument("--mask", help="mask NIfTI (default: NiMARE's MNI152 2 mm brain mask)")
    ap.add_argument("--labels", nargs=2, default=("A", "B"), metavar=("LABEL_A", "LABEL_B"))
    ap.add_argument("--sleuth", help="Sleuth file: break |A-B| down by distance to the nearest focus")
    ap.add_argument("--shifts", action="store_true", help="try integer voxel shifts of B in {-1,0,1}^3")
    ap.add_argument("--ratio-floor", type=float, default=0.1, help="share of the peak for ratio stats")
    ap.add_argument("--figure", metavar="STEM", help="write STEM.png and STEM.svg")
    ap.add_argument("--json", metavar="FILE", help="write the numbers as JSON")
    args = ap.parse_args(argv)
    try:
        a_img, b_img = load_canonical(args.map_a), load_canonical(args.map_b)
        mask_img = load_canonical(args.mask) if args.mask else default_mask()
        foci = read_foci_mm(args.sleuth) if args.sleuth else None
        res = compare(a_img, b_img, mask_img, tuple(args.labels), foci, args.shifts, args.ratio_floor)
    except CompareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # e.g. painmeta's InputError for a bad Sleuth file
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_text(res))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(asdict(res), indent=2))
    if args.figure:
        for path in figure(a_img, b_img, mask_img, res, args.figure):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
