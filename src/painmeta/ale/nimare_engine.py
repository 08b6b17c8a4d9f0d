"""Thin typed wrapper around NiMARE's ALE (the reference engine).

Configuration (as the review): ``ALE`` with the sample-size kernel
(``ALEKernel``; Eickhoff 2009 FWHM per experiment, Turkeltaub non-additive MA),
the MNI152 2 mm brain mask (228,483 voxels), analytic (``"approximate"``)
voxel null, then ``FWECorrector(method="montecarlo", voxel_thresh=0.001,
n_iters=..., n_cores=...)`` for cluster-level FWE; ``Jackknife`` and
``FocusCounter`` for contributions.

Per-experiment sample sizes are put in the dataset metadata
(``sample_sizes``), which is how NiMARE gives every experiment its own kernel.
``ALE(kernel__sample_size=n)`` would instead force one n on all experiments,
so it is deliberately not set.

Seeding. Since 0.22.0 an estimator takes ``random_state``; each stochastic
step draws from a fresh ``numpy.random.default_rng(SeedSequence([seed mod
2**64, sha256(step)[:8]]))``. The cluster-level Monte Carlo is step
``"correct_fwe_montecarlo"`` and draws ``rng.choice(n_inmask, size=(n_foci,
n_iters))`` indices into the in-mask voxels (C order) - one column per
iteration, one row per focus in the estimator's coordinate order. Iterations
run on joblib threads and are collected in order, so a seed fixes the null
whatever ``n_cores`` is. :func:`fwe_draws` regenerates those draws through the
estimator's own generator (``ALE._get_rng``), so the in-house engine can be
fed exactly NiMARE's random foci.

Experiment ids are given to NiMARE as ``e0000_<experiment_id>-1`` (study
``e0000_<experiment_id>``, contrast ``1``) so that NiMARE's internal sorting
by id equals the order chosen here; the original ids are mapped back in every
table.
"""

from __future__ import annotations

import gc
import logging
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage

from painmeta.ale.geometry import MaskGeometry, load_mask
from painmeta.ale.inference import cluster_table
from painmeta.ale.problem import make_problem
from painmeta.ale.results import ALEResult
from painmeta.errors import InputError

#: NiMARE version the wrapper (and the bit-level cross-check) was written against.
PINNED_NIMARE = "0.22.1"
#: NiMARE's stream name for the cluster-level Monte Carlo.
FWE_STREAM = "correct_fwe_montecarlo"
MAP_SIZE = "z_desc-size_level-cluster_corr-FWE_method-montecarlo"
LOGP_SIZE = "logp_desc-size_level-cluster_corr-FWE_method-montecarlo"
LOGP_MASS = "logp_desc-mass_level-cluster_corr-FWE_method-montecarlo"
LOGP_VOXEL = "logp_level-voxel_corr-FWE_method-montecarlo"
NULL_KEYS = {
    "max_ale": "values_level-voxel_corr-fwe_method-montecarlo",
    "max_cluster_size": "values_desc-size_level-cluster_corr-fwe_method-montecarlo",
    "max_cluster_mass": "values_desc-mass_level-cluster_corr-fwe_method-montecarlo",
}


@contextmanager
def quiet_nimare() -> Iterator[None]:
    """Silence NiMARE's deprecation chatter and INFO logging inside the block; keep its GC calls cheap.

    nilearn calls ``gc.collect()`` each time it reads an image's data (about 50 times
    per NiMARE fit); with a notebook's heap each call took ~0.2 s, a third of a fit.
    The objects that exist when the block starts are frozen (``gc.freeze``), so those
    collections only scan what NiMARE itself allocates; they are unfrozen afterwards.
    """
    global _FREEZE_DEPTH
    if _FREEZE_DEPTH == 0:
        gc.freeze()
    _FREEZE_DEPTH += 1
    try:
        with _quiet_logs():
            yield
    finally:
        _FREEZE_DEPTH -= 1
        if _FREEZE_DEPTH == 0:
            gc.unfreeze()


#: Nesting depth of :func:`quiet_nimare` (only the outermost block freezes and unfreezes).
_FREEZE_DEPTH = 0


@contextmanager
def _quiet_logs() -> Iterator[None]:
    loggers = [logging.getLogger(n) for n in ("nimare", "nilearn")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*No clusters found.*")
        try:
            yield
        finally:
            for lg, lv in zip(loggers, levels):
                lg.setLevel(lv)


@contextmanager
def nimare_progress(enabled: bool) -> Iterator[None]:
    """Show or hide NiMARE's Monte Carlo progress bar inside the block.

    NiMARE's CBMA estimators call ``tqdm`` unconditionally; a rendered report
    must not fill with progress lines, so the module's ``tqdm`` is swapped for
    a disabled one while the block runs (restored afterwards).
    """
    import functools
    import sys

    import nimare.diagnostics  # noqa: F401 - imported so its tqdm is swapped too
    import nimare.meta.cbma.base  # noqa: F401

    swapped = []
    if not enabled:
        for name, module in list(sys.modules.items()):
            bar = getattr(module, "tqdm", None) if name.startswith("nimare") else None
            if bar is not None and callable(bar) and not isinstance(bar, type(sys)):
                swapped.append((module, bar))
                module.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        for module, bar in swapped:
            module.tqdm = bar


def nimare_version() -> str:
    import nimare

    return str(nimare.__version__)


def nimare_ids(experiment_ids: Sequence[str]) -> dict[str, str]:
    """NiMARE id for each experiment id, order-preserving under NiMARE's sorting."""
    return {e: f"e{i:04d}_{e}-1" for i, e in enumerate(experiment_ids)}


def build_dataset(
    foci: pd.DataFrame,
    sample_sizes: Mapping[str, float],
    experiment_order: Sequence[str] | None = None,
    space: str = "mni152_2mm",
) -> tuple[Any, dict[str, str]]:
    """NiMARE ``Studyset`` from a foci table (MNI mm) and sample sizes.

    Returns
    -------
    studyset : nimare.nimads.Studyset
    id_map : dict
        NiMARE id -> experiment id.
    """
    from nimare.dataset import Dataset
    from nimare.nimads import Studyset

    order = list(experiment_order) if experiment_order is not None else sorted(set(map(str, foci["experiment_id"])))
    ids = nimare_ids(order)
    source: dict[str, Any] = {}
    for exp in order:
        sub = foci[foci["experiment_id"].astype(str) == exp]
        if exp not in sample_sizes:
            raise InputError(f"experiment '{exp}' has no sample size (n_ale)")
        study = ids[exp][: -len("-1")]
        source[study] = {
            "contrasts": {
                "1": {
                    "coords": {
                        "space": "MNI",
                        "x": sub["x"].astype(float).tolist(),
                        "y": sub["y"].astype(float).tolist(),
                        "z": sub["z"].astype(float).tolist(),
                    },
                    "metadata": {"sample_sizes": [int(sample_sizes[exp])]},
                }
            }
        }
    with quiet_nimare():
        dset = Dataset(source, target=space)
        studyset = Studyset.from_dataset(dset)
    return studyset, {v: k for k, v in ids.items()}


def make_estimator(seed: int, mask_img: Any = None, n_cores: int = 1) -> Any:
    """NiMARE ``ALE`` configured as the review (sample-size kernel, approximate null)."""
    from nimare.meta.cbma.ale import ALE
    from nimare.meta.kernel import ALEKernel
    from nimare.utils import get_template

    mask_img = mask_img if mask_img is not None else get_template("mni152_2mm", mask="brain")
    return ALE(
        kernel_transformer=ALEKernel,
        null_method="approximate",
        mask=mask_img,
        n_cores=n_cores,
        random_state=int(seed),
    )


def fwe_draws(seed: int, n_foci: int, n_iters: int, n_inmask: int) -> np.ndarray:
    """NiMARE's random foci for the cluster-level Monte Carlo.

    Regenerated with the estimator's own generator (``ALE(random_state=seed)
    ._get_rng("correct_fwe_montecarlo")``) exactly as
    ``CBMAEstimator.correct_fwe_montecarlo`` draws them.

    Returns
    -------
    numpy.ndarray
        ``(n_iters, n_foci)`` indices into the in-mask voxels (C order), foci
        in the estimator's coordinate order.
    """
    est = make_estimator(seed)
    rng = est._get_rng(FWE_STREAM)
    rand_idx = rng.choice(n_inmask, size=(n_foci, n_iters))
    return np.ascontiguousarray(rand_idx.T, dtype=np.int64)


@dataclass(eq=False)
class NiMAREFit:
    """Raw NiMARE objects of one run."""

    estimator: Any
    result: Any
    corrected: Any
    id_map: dict[str, str]
    ale_threshold: float
    timings: dict[str, float]


def fit(
    foci: pd.DataFrame,
    sample_sizes: Mapping[str, float],
    n_iters: int,
    seed: int,
    voxel_thresh: float = 0.001,
    n_cores: int = 2,
    experiment_order: Sequence[str] | None = None,
    progress: bool = False,
) -> NiMAREFit:
    """Fit NiMARE ALE and apply Monte Carlo FWE correction; return raw objects."""
    from nimare.correct import FWECorrector

    studyset, id_map = build_dataset(foci, sample_sizes, experiment_order)
    est = make_estimator(seed, n_cores=n_cores)
    with quiet_nimare(), nimare_progress(progress):
        t0 = time.perf_counter()
        res = est.fit(studyset)
        # The same call NiMARE's corrector makes to turn voxel_thresh into an ALE value.
        thr = float(est._p_to_summarystat(voxel_thresh))
        t1 = time.perf_counter()
        corr = FWECorrector(method="montecarlo", voxel_thresh=voxel_thresh, n_iters=int(n_iters), n_cores=n_cores)
        cres = corr.transform(res)
        t2 = time.perf_counter()
    return NiMAREFit(est, res, cres, id_map, thr, {"fit": t1 - t0, "null": t2 - t1})


#: Name under which the surviving clusters are handed to NiMARE's diagnostics.
TARGET_SURVIVING = "z_painmeta-surviving"


def _contributions(raw: NiMAREFit, relabelled: np.ndarray, significant_ids: list[int],
                   progress: bool = False) -> dict[str, pd.DataFrame]:
    """Jackknife and FocusCounter via NiMARE on the surviving clusters, columns mapped to our cluster ids.

    The clusters that survive the primary inference (whichever it is) are given
    to NiMARE's diagnostics as a target map (1 inside a surviving cluster, 0
    elsewhere; threshold 0.5), so NiMARE's ``Jackknife`` and ``FocusCounter``
    work on exactly the clusters the table reports, for cluster-size,
    cluster-mass and voxel-level inference alike.
    """
    from nimare.diagnostics import FocusCounter, Jackknife

    if not significant_ids:
        return {}
    mask = load_mask()
    target = np.isin(relabelled, significant_ids)[mask.data].astype(np.float32)
    result = raw.corrected.copy()
    result.maps[TARGET_SURVIVING] = target
    out: dict[str, pd.DataFrame] = {}
    for kind, cls in (("jackknife", Jackknife), ("focus_counter", FocusCounter)):
        with quiet_nimare(), nimare_progress(progress):
            diag = cls(target_image=TARGET_SURVIVING, target_threshold=0.5, n_cores=1)
            dres = diag.transform(result.copy())
        label_keys = [k for k in dres.maps if k.startswith("label_") and k.endswith("tail-positive")]
        tab_keys = [k for k in dres.tables if k.endswith("tab-counts_tail-positive")]
        if not label_keys or not tab_keys or dres.tables[tab_keys[0]] is None:
            continue
        lab_vec = np.rint(np.asarray(dres.maps[label_keys[0]])).astype(int)
        lab3d = np.zeros(relabelled.shape, dtype=int)
        lab3d[mask.data] = lab_vec
        table = dres.tables[tab_keys[0]].copy()
        rename = {}
        for col in table.columns:
            if col == "id":
                continue
            nimare_label = int(str(col).split()[-1])
            ours = relabelled[lab3d == nimare_label]
            ours = ours[ours > 0]
            rename[col] = f"cluster_{int(np.bincount(ours).argmax())}" if ours.size else f"nimare_{nimare_label}"
        table = table.rename(columns=rename)
        table.insert(0, "experiment_id", table.pop("id").map(raw.id_map))
        cols = ["experiment_id"] + [f"cluster_{c}" for c in significant_ids if f"cluster_{c}" in table.columns]
        out[kind] = table[cols].astype({c: float for c in cols[1:]})
    return out


def run_nimare(
    foci: pd.DataFrame,
    sample_sizes: Mapping[str, float],
    n_iters: int,
    seed: int,
    voxel_thresh: float = 0.001,
    cluster_alpha: float = 0.05,
    n_cores: int = 2,
    name: str = "ale",
    contributions: bool = True,
    experiment_order: Sequence[str] | None = None,
    inference: str = "cluster_size",
    focus_placement: str = "voxel",
    progress: bool = False,
) -> ALEResult:
    """Run the review's ALE with NiMARE and return an :class:`ALEResult`.

    Clusters are the face-connected components of ALE > cluster-forming value
    (the ones NiMARE's corrector labels); their FWE p-values are computed with
    ``nimare.stats.null_to_p`` against NiMARE's own null (size and mass), and
    the voxel-level FWE p map with the same call on the null of the maximum
    ALE - the calls NiMARE's ``FWECorrector`` makes. Each is checked against
    the corresponding map NiMARE wrote (``logp_desc-size/mass_level-cluster``,
    ``logp_level-voxel``); a disagreement becomes a note.

    Parameters
    ----------
    inference : {"cluster_size", "cluster_mass", "voxel"}
        Primary inference (decides ``significant``).
    focus_placement : {"voxel"}
        NiMARE centres kernels on voxels only; ``"exact"`` is refused (use the
        in-house engine).
    progress : bool
        Show NiMARE's progress bar.
    """
    from nimare.stats import null_to_p

    if focus_placement != "voxel":
        raise InputError(
            f"focus_placement '{focus_placement}': NiMARE centres kernels on the nearest voxel only. "
            "Fix: use the in-house engine (--engine inhouse) for exact placement."
        )
    t0 = time.perf_counter()
    order = list(experiment_order) if experiment_order is not None else sorted(set(map(str, foci["experiment_id"])))
    raw = fit(foci, sample_sizes, n_iters, seed, voxel_thresh, n_cores, order, progress=progress)
    geom: MaskGeometry = load_mask()
    res, cres = raw.result, raw.corrected
    ale = np.asarray(res.get_map("stat", return_type="array"), dtype=np.float32)
    p = np.asarray(res.get_map("p", return_type="array"), dtype=np.float64)
    z = np.asarray(res.get_map("z", return_type="array"), dtype=np.float64)
    nd = cres.estimator.null_distributions_
    null = pd.DataFrame({k: np.asarray(nd[v]) for k, v in NULL_KEYS.items()})
    null["max_cluster_size"] = null["max_cluster_size"].astype(np.int64)
    thr = raw.ale_threshold
    vol = geom.unmask(ale)
    labels, n = ndimage.label(vol > thr, ndimage.generate_binary_structure(3, 1))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    masses = np.array([np.sum(vol[labels == lab] - np.float64(thr)) for lab in range(1, n + 1)])
    p_size = null_to_p(sizes, null["max_cluster_size"].to_numpy(), "upper") if n else np.zeros(0)
    p_mass = null_to_p(masses, np.asarray(nd[NULL_KEYS["max_cluster_mass"]]), "upper") if n else np.zeros(0)
    p_vfwe = np.asarray(null_to_p(ale, null["max_ale"].to_numpy(), "upper"), dtype=np.float64)
    table, relabelled = cluster_table(ale, labels, n, thr, geom, np.atleast_1d(p_size), np.atleast_1d(p_mass), masses,
                                      cluster_alpha, z=z, p_voxel=p_vfwe, inference=inference)
    notes = []
    # NiMARE's own FWE maps (float32 -log10 p) must agree with the p-values above.
    for key, col in ((LOGP_SIZE, "p_fwe_size"), (LOGP_MASS, "p_fwe_mass")):
        logp_map = geom.unmask(np.asarray(cres.get_map(key, return_type="array"), dtype=np.float64))
        for _, row in table.iterrows():
            vox = logp_map[relabelled == row["cluster_id"]]
            if not np.allclose(10 ** (-vox), row[col], rtol=1e-5):
                notes.append(f"cluster {row['cluster_id']}: NiMARE's {key} map disagrees with null_to_p")
    logp_vox = np.asarray(cres.get_map(LOGP_VOXEL, return_type="array"), dtype=np.float64)
    if not np.allclose(10 ** (-logp_vox), p_vfwe, rtol=1e-5):
        notes.append(f"NiMARE's {LOGP_VOXEL} map disagrees with null_to_p on the voxel-level null")
    sig = [int(c) for c in table.loc[table["significant"], "cluster_id"]] if n else []
    contrib = _contributions(raw, relabelled, sig, progress) if contributions else {}
    total = time.perf_counter() - t0
    problem = make_problem(foci, sample_sizes, experiment_order=order)
    return ALEResult(
        name=name,
        engine="nimare",
        experiment_ids=order,
        sample_sizes={e: float(sample_sizes[e]) for e in order},
        n_foci=int(len(foci)),
        fwhm=dict(zip(order, problem.fwhm.tolist())),
        mask=geom,
        ale=ale,
        p=p,
        z=z,
        ale_threshold=thr,
        voxel_thresh=voxel_thresh,
        cluster_alpha=cluster_alpha,
        null=null,
        clusters_all=table,
        label_map=relabelled,
        seed=int(seed),
        n_iters=int(n_iters),
        timings={**raw.timings, "total": total},
        contributions=contrib,
        native=cres,
        notes=notes,
        inference=inference,
        focus_placement=focus_placement,
        p_vfwe=p_vfwe,
    )
