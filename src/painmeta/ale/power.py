"""ALE power analysis: how often would cluster-level FWE inference find a true convergence?

For each number of experiments k, many meta-analyses are simulated:

* **design**: experiment j has the sample size and foci count of the design's
  experiment ``j mod m`` (a dataset's model: its own sizes; or a fixed
  ``subjects`` / ``foci_per_experiment``), so k = m reproduces the design;
* **true effect**: in ``n_effect = max(1, round(share * k))`` experiments
  (the first ones; ``share`` from ``effect_shares``, each its own curve) one
  focus sits at ``location`` (MNI mm) plus
  Gaussian spatial jitter (``jitter_mm`` standard deviation per axis, redrawn
  until in the mask; default 4 mm, the spread the ALE kernel itself models for
  about 20 subjects: FWHM 9.2 mm);
* **everything else is noise**: all other foci are uniform random in-mask
  voxels, drawn as the Monte Carlo null draws them;
* **inference**, as the ALE stage runs it: ALE map, cluster-forming threshold
  at ``voxel_thresh`` from the analytic null, face-connected clusters,
  cluster-level FWE by cluster size against the Monte Carlo null
  (``p_fwe_size < cluster_alpha``);
* **detected** when a significant cluster has a voxel within ``hit_radius_mm``
  of ``location``; a significant cluster farther away counts as a false
  positive (``fwe_elsewhere``).

The null of each configuration (k, sample sizes, foci counts) is computed once
and reused by all its simulations (of every effect share): the cluster-forming threshold comes from the
analytic null of the configuration (its kernels and foci counts, foci placed
once at random; the few voxels where foci of one experiment overlap barely move
it) and the Monte Carlo null of maximum cluster size (in-house engine) from
``n_iters`` iterations at that threshold. Power is the share of detections with
a Clopper-Pearson 95% interval.

Randomness follows :mod:`painmeta.ale.executor`: the null of the ``q``-th k
draws from seed ``SeedSequence([seed, q, 0])``, the simulations of its
``s``-th effect share from ``SeedSequence([seed, q, s + 1])``, and every
simulation is its own block (one spawn child per simulation), so results do
not depend on where or in which order simulations run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from painmeta.ale.executor import Block, get_executor, map_blocks
from painmeta.ale.geometry import MaskGeometry, load_mask
from painmeta.ale.inference import (
    analytic_null,
    cluster_masses,
    label_clusters,
    min_significant_size,
    null_to_p,
    significant,
    threshold_from_null,
)
from painmeta.ale.problem import ALEProblem, ale_map, make_problem
from painmeta.errors import InputError

#: Default scenario (stated in the CLI help, the notebook and power.csv).
DEFAULT_N_EXPERIMENTS = (3, 5, 10, 17, 25, 40)
DEFAULT_SUBJECTS = 20
DEFAULT_FOCI = 10
DEFAULT_EFFECT_SHARES = (0.4,)
DEFAULT_JITTER_MM = 4.0
DEFAULT_LOCATION = (38.0, 20.0, -4.0)
DEFAULT_HIT_RADIUS_MM = 8.0
#: Published guidance the results are compared with (Eickhoff et al. 2016, NeuroImage 137:70-85).
EICKHOFF_2016_RANGE = (17, 20)

POWER_COLUMNS = ["n_experiments", "power", "ci_low", "ci_high", "n_detected", "n_sims", "n_effect",
                 "effect_share", "jitter_mm", "hit_radius_mm", "location_x", "location_y", "location_z",
                 "subjects", "total_subjects", "foci_per_experiment", "total_foci", "design", "fwe_elsewhere",
                 "cluster_forming_ale", "min_significant_cluster_mm3", "voxel_thresh", "cluster_alpha",
                 "n_iters", "seed"]


@dataclass
class PowerScenario:
    """What is simulated (see module docstring); every field is written to ``power.csv`` / ``scenario.json``.

    ``subjects`` and ``foci`` are per design experiment (cycled for larger
    k); ``design`` says where they come from (e.g. "cipn/all_between" or
    "fixed").
    """

    n_experiments: list[int] = field(default_factory=lambda: list(DEFAULT_N_EXPERIMENTS))
    subjects: list[int] = field(default_factory=lambda: [DEFAULT_SUBJECTS])
    foci: list[int] = field(default_factory=lambda: [DEFAULT_FOCI])
    effect_shares: list[float] = field(default_factory=lambda: list(DEFAULT_EFFECT_SHARES))
    jitter_mm: float = DEFAULT_JITTER_MM
    location: tuple[float, float, float] = DEFAULT_LOCATION
    hit_radius_mm: float = DEFAULT_HIT_RADIUS_MM
    n_sims: int = 200
    n_iters: int = 1000
    seed: int = 0
    voxel_thresh: float = 0.001
    cluster_alpha: float = 0.05
    design: str = "fixed"

    def validate(self, mask: MaskGeometry) -> None:
        """Raise :class:`InputError` naming the bad parameter and how to fix it."""
        ks = list(self.n_experiments)
        if not ks or any(int(k) != k or k < 2 for k in ks):
            raise InputError(f"n_experiments must be whole numbers >= 2 (ALE needs two experiments), got {ks}")
        if not self.subjects or any(int(s) != s or s < 1 for s in self.subjects):
            raise InputError(f"subjects must be positive whole numbers, got {self.subjects}")
        if not self.foci or any(int(f) != f or f < 1 for f in self.foci):
            raise InputError(f"foci per experiment must be positive whole numbers, got {self.foci}")
        if len(self.subjects) != len(self.foci):
            raise InputError("subjects and foci must list the same design experiments")
        if not self.effect_shares or any(not 0 < float(v) <= 1 for v in self.effect_shares):
            raise InputError(f"effect shares must be in (0, 1], got {self.effect_shares}")
        if not 0 <= self.jitter_mm <= 30:
            raise InputError(f"jitter must be between 0 and 30 mm, got {self.jitter_mm}")
        if not 0 <= self.hit_radius_mm <= 50:
            raise InputError(f"hit radius must be between 0 and 50 mm, got {self.hit_radius_mm}")
        if self.n_sims < 1 or self.n_iters < 20:
            raise InputError(f"need n_sims >= 1 and n_iters >= 20 (a 5% FWE needs at least 20 iterations), "
                             f"got {self.n_sims}, {self.n_iters}")
        if not (0 < self.voxel_thresh < 1 and 0 < self.cluster_alpha < 1):
            raise InputError("voxel_thresh and cluster_alpha must be in (0, 1)")
        if int(self.seed) < 0:
            raise InputError(f"seed must be a non-negative whole number, got {self.seed}")
        ijk = mask.mm2vox(np.asarray(self.location, dtype=float))[0]
        inside = np.all((ijk >= 0) & (ijk < np.array(mask.shape))) and mask.data[tuple(ijk)]
        if not inside:
            raise InputError(f"location {tuple(self.location)} mm is outside the MNI152 2 mm brain mask; "
                             "choose a point inside the brain")

    def design_of(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample sizes and foci counts of the k experiments (design cycled)."""
        m = len(self.subjects)
        idx = np.arange(k) % m
        return np.asarray(self.subjects, dtype=int)[idx], np.asarray(self.foci, dtype=int)[idx]

    @staticmethod
    def n_effect(k: int, share: float) -> int:
        return max(1, int(round(float(share) * k)))


@dataclass
class _Config:
    """One (k, sizes, foci) configuration: its null, computed once."""

    k: int
    subjects: np.ndarray
    foci: np.ndarray
    threshold: float
    null_sizes: np.ndarray
    seed: int


def _ids(k: int) -> list[str]:
    return [f"sim{j:03d}" for j in range(k)]


def _problem_from_voxels(mask: MaskGeometry, ijk: np.ndarray, counts: np.ndarray, subjects: np.ndarray) -> ALEProblem:
    ids = _ids(len(counts))
    xyz = mask.vox2mm(ijk)
    foci = pd.DataFrame({"experiment_id": np.repeat(ids, counts), "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]})
    return make_problem(foci, dict(zip(ids, subjects.tolist())), mask=mask, experiment_order=ids)


def config_seed(seed: int, *index: int) -> int:
    """Integer seed of a configuration (``SeedSequence([seed, *index])``)."""
    return int(np.random.SeedSequence([int(seed), *map(int, index)]).generate_state(1, dtype=np.uint32)[0])


def _configuration(scenario: PowerScenario, index: int, k: int, mask: MaskGeometry, n_threads: int | None,
                   executor: Any) -> _Config:
    from painmeta.ale.inhouse import null_statistics

    subjects, foci = scenario.design_of(k)
    seed = config_seed(scenario.seed, index, 0)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    ijk = mask.inmask_ijk[rng.integers(0, mask.n_voxels, int(foci.sum()))]
    problem = _problem_from_voxels(mask, ijk, foci, subjects)
    thr = threshold_from_null(analytic_null(problem), scenario.voxel_thresh)
    null = null_statistics(problem, thr, n_iters=scenario.n_iters, seed=seed, n_threads=n_threads, executor=executor)
    return _Config(k, subjects, foci, float(thr), null["max_cluster_size"].to_numpy(), seed)


def _effect_voxel(rng: np.random.Generator, mask: MaskGeometry, location: np.ndarray, jitter: float) -> np.ndarray:
    for _ in range(1000):
        xyz = location + rng.normal(0.0, jitter, 3) if jitter > 0 else location
        ijk = mask.mm2vox(xyz)[0]
        if np.all((ijk >= 0) & (ijk < np.array(mask.shape))) and mask.data[tuple(ijk)]:
            return ijk
    raise InputError("could not place a jittered effect focus inside the mask (location too close to the edge?)")


def simulate_one(block: Block, rng: np.random.Generator, cfg: _Config, scenario: PowerScenario,
                 mask: MaskGeometry, n_effect: int) -> dict:
    """One simulated meta-analysis (an executor block of size 1)."""
    counts = cfg.foci
    ijk = mask.inmask_ijk[rng.integers(0, mask.n_voxels, int(counts.sum()))].astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    location = np.asarray(scenario.location, dtype=float)
    for j in range(n_effect):  # the first focus of each effect experiment is the true effect
        ijk[starts[j]] = _effect_voxel(rng, mask, location, scenario.jitter_mm)
    problem = _problem_from_voxels(mask, ijk, counts, cfg.subjects)
    ale = ale_map(problem)
    labels, n = label_clusters(ale, cfg.threshold, mask)
    detected = elsewhere = False
    n_sig = 0
    best_p = 1.0
    if n:
        sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
        p = null_to_p(sizes, cfg.null_sizes)
        sig = significant(p, scenario.cluster_alpha)
        n_sig = int(np.sum(sig))
        loc_ijk = mask.mm2vox(location)[0]
        for lab in np.nonzero(sig)[0] + 1:
            vox = np.argwhere(labels == lab)
            d = np.sqrt((((mask.vox2mm(vox) - mask.vox2mm(loc_ijk)[0]) ** 2).sum(axis=1)).min())
            if d <= scenario.hit_radius_mm:
                detected = True
                best_p = min(best_p, float(p[lab - 1]))
            else:
                elsewhere = True
    return {"simulation": block.start, "detected": detected, "fwe_elsewhere": elsewhere,
            "n_significant": n_sig, "p_fwe_size_at_location": best_p if detected else float("nan"),
            "max_ale": float(ale.max())}


def clopper_pearson(count: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for one count (the project's :func:`painmeta.proportions.clopper_pearson`)."""
    from painmeta.proportions import clopper_pearson as _cp

    lo, hi = _cp([int(count)], [int(n)], level)
    return float(lo[0]), float(hi[0])


@dataclass
class PowerResult:
    """``table``: one row per k (:data:`POWER_COLUMNS`); ``simulations``: one row per simulated meta-analysis."""

    scenario: PowerScenario
    table: pd.DataFrame
    simulations: pd.DataFrame

    def save(self, out: str | Path) -> list[Path]:
        """Write ``power.csv``, ``simulations.csv``, ``scenario.json`` and the figure into ``out``."""
        from painmeta.plotting import save_figure

        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        self.table.to_csv(folder / "power.csv", index=False)
        self.simulations.to_csv(folder / "simulations.csv", index=False)
        (folder / "scenario.json").write_text(json.dumps(asdict(self.scenario), indent=1, default=float) + "\n")
        design_k = len(self.scenario.subjects) if self.scenario.design != "fixed" else None
        fig = power_figure(self.table, design_k)
        files = save_figure(fig, folder / "power")
        import matplotlib.pyplot as plt

        plt.close(fig)
        return [folder / "power.csv", folder / "simulations.csv", folder / "scenario.json", *files]


def run_power(scenario: PowerScenario, mask: MaskGeometry | None = None, n_threads: int | None = None,
              executor: Any = None, progress: bool = False) -> PowerResult:
    """Simulate every configuration of ``scenario``; see the module docstring.

    Parameters
    ----------
    scenario : PowerScenario
    mask : MaskGeometry, optional
        Default MNI152 2 mm.
    n_threads : int, optional
        numba threads for the Monte Carlo nulls (in-process).
    executor : Executor or scheduler spec, optional
        Where simulations and null blocks run; results are identical anywhere.
    progress : bool
        tqdm bar over simulations (terminals only).
    """
    geom = load_mask(mask)
    scenario.validate(geom)
    ex = get_executor(executor)
    rows, sims = [], []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=scenario.n_sims * len(scenario.n_experiments) * len(scenario.effect_shares),
                   desc="ALE power", unit="sim")
    try:
        for q, k in enumerate(scenario.n_experiments):
            cfg = _configuration(scenario, q, int(k), geom, n_threads, ex)  # once per k, for every share
            min_size = min_significant_size(cfg.null_sizes, scenario.cluster_alpha)
            for si, share in enumerate(scenario.effect_shares):
                n_effect = scenario.n_effect(int(k), share)
                out = map_blocks(simulate_one, scenario.n_sims, config_seed(scenario.seed, q, si + 1), executor=ex,
                                 block_size=1, progress=None if bar is None else bar.update, cfg=cfg,
                                 scenario=scenario, mask=geom, n_effect=n_effect)
                sim = pd.DataFrame(out)
                sim.insert(0, "effect_share", float(share))
                sim.insert(0, "n_experiments", int(k))
                sims.append(sim)
                hits = int(sim["detected"].sum())
                lo, hi = clopper_pearson(hits, scenario.n_sims)
                rows.append({
                    "n_experiments": int(k), "power": hits / scenario.n_sims, "ci_low": lo, "ci_high": hi,
                    "n_detected": hits, "n_sims": scenario.n_sims, "n_effect": n_effect,
                    "effect_share": float(share), "jitter_mm": scenario.jitter_mm,
                    "hit_radius_mm": scenario.hit_radius_mm, "location_x": scenario.location[0],
                    "location_y": scenario.location[1], "location_z": scenario.location[2],
                    "subjects": ";".join(map(str, cfg.subjects.tolist())),
                    "total_subjects": int(cfg.subjects.sum()),
                    "foci_per_experiment": ";".join(map(str, cfg.foci.tolist())), "total_foci": int(cfg.foci.sum()),
                    "design": scenario.design, "fwe_elsewhere": float(sim["fwe_elsewhere"].mean()),
                    "cluster_forming_ale": cfg.threshold,
                    "min_significant_cluster_mm3": (float(min_size * geom.voxel_volume_mm3)
                                                    if min_size is not None else float("nan")),
                    "voxel_thresh": scenario.voxel_thresh, "cluster_alpha": scenario.cluster_alpha,
                    "n_iters": scenario.n_iters, "seed": scenario.seed,
                })
    finally:
        if bar is not None:
            bar.close()
        if ex is not executor:
            ex.close()
    return PowerResult(scenario, pd.DataFrame(rows, columns=POWER_COLUMNS),
                       pd.concat(sims, ignore_index=True) if sims else pd.DataFrame())


def power_figure(table: pd.DataFrame, design_k: int | None = None, target: float = 0.8) -> "Any":
    """Power (Clopper-Pearson 95% CI) against the number of experiments, one line per effect share.

    Eickhoff et al. 2016's 17-20 experiments are shaded; the share of
    simulations with a significant cluster away from the effect is dotted.
    """
    import matplotlib.pyplot as plt

    from painmeta.plotting import OKABE_ITO, empty_axes_message

    fig, ax = plt.subplots(figsize=(6.6, 4.6))
    lo, hi = EICKHOFF_2016_RANGE
    ax.axvspan(lo, hi, color=OKABE_ITO[1], alpha=0.18, lw=0, label=f"Eickhoff et al. 2016: {lo}-{hi} experiments")
    ax.axhline(target, color="0.45", lw=0.8, ls="--", label=f"{target:.0%} power")
    colours = [OKABE_ITO[i] for i in (4, 0, 2, 6, 5)]
    markers = ["o", "^", "D", "v", "s"]
    if table.empty:
        empty_axes_message(ax, "no configuration simulated")
    else:
        groups = list(table.sort_values("n_experiments").groupby("effect_share", sort=True))
        for i, (share, t) in enumerate(groups):
            # curves side by side (x dodged by a fraction of an experiment) so equal values stay visible
            k = t["n_experiments"].to_numpy() + 0.22 * (i - (len(groups) - 1) / 2)
            pw = t["power"].to_numpy()
            err = np.vstack([pw - t["ci_low"].to_numpy(), t["ci_high"].to_numpy() - pw])
            ax.errorbar(k, pw, yerr=err, color=colours[i % 5], marker=markers[i % 5], ms=5, lw=1.6, capsize=3,
                        label=f"true effect in {share:.0%} of experiments (95% CI)")
        fp = table.groupby("n_experiments")["fwe_elsewhere"].mean()
        ax.plot(fp.index, fp.to_numpy(), color="0.35", marker="x", ms=4, lw=1.0, ls=":",
                label="significant cluster away from the effect")
        if design_k is not None and design_k in set(table["n_experiments"].tolist()):
            pw = table.loc[table["n_experiments"] == design_k, "power"]
            ax.axvline(design_k, color="0.55", lw=1.0, ls="-.", zorder=0,
                       label=f"this design: {design_k} experiments (power {pw.min():.0%}-{pw.max():.0%})"
                       if len(pw) > 1 else f"this design: {design_k} experiments (power {pw.iloc[0]:.0%})")
        ax.set_xlim(0, max(float(table["n_experiments"].max()) + 2, hi + 3))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("experiments in the meta-analysis (k)")
    ax.set_ylabel("probability of detecting the true effect")
    ax.set_title("ALE power: cluster-level FWE on simulated meta-analyses", fontsize=10)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    ax.grid(alpha=0.25, lw=0.5)
    fig.tight_layout()
    return fig


def scenario_from_model(model: Any, n_experiments: Sequence[int] | None = None, **kwargs: Any) -> PowerScenario:
    """Scenario with a model's design: its experiments' sample sizes and foci counts (cycled for larger k).

    ``model`` is an :class:`painmeta.ale.models.ALEModel` (skipped models have
    no design: raise :class:`InputError`). The design's own k is always included.
    """
    if getattr(model, "skipped", False) or not model.experiment_ids:
        raise InputError(f"model '{model.name}' has no experiments to take a design from")
    counts = model.foci.groupby("experiment_id").size()
    subjects = [int(model.sample_sizes[e]) for e in model.experiment_ids]
    foci = [int(counts.get(e, 0)) for e in model.experiment_ids]
    ks = sorted(set(int(k) for k in (n_experiments or DEFAULT_N_EXPERIMENTS)) | {len(subjects)})
    return PowerScenario(n_experiments=ks, subjects=subjects, foci=foci, **kwargs)


def scenario_from_config(power_cfg: Any, models: Sequence[Any], seed: int, voxel_thresh: float = 0.001,
                         cluster_alpha: float = 0.05, quick: bool = False) -> PowerScenario:
    """The scenario of ``ale.power`` in ``dataset.yaml`` (see :class:`painmeta.config.ALEPowerConfig`).

    ``quick`` (tests): 8 simulations, 60 Monte Carlo iterations, only the
    design's own k and 17 experiments.
    """
    common = dict(effect_shares=list(power_cfg.effect_shares), jitter_mm=float(power_cfg.jitter_mm),
                  location=tuple(float(v) for v in power_cfg.location), hit_radius_mm=float(power_cfg.hit_radius_mm),
                  n_sims=8 if quick else int(power_cfg.n_sims), n_iters=60 if quick else int(power_cfg.n_iters),
                  seed=int(seed if power_cfg.seed is None else power_cfg.seed), voxel_thresh=float(voxel_thresh),
                  cluster_alpha=float(cluster_alpha))
    ks = list(power_cfg.n_experiments)
    runnable = [m for m in models if not m.skipped]
    chosen = [m for m in models if m.name == power_cfg.model] if power_cfg.model else runnable[:1]
    if power_cfg.model and not chosen:
        raise InputError(f"ale.power.model '{power_cfg.model}' is not an ALE model of this dataset "
                         f"({', '.join(m.name for m in models)})")
    if power_cfg.subjects is not None:
        subjects, foci = list(power_cfg.subjects), list(power_cfg.foci_per_experiment)
        scenario = PowerScenario(n_experiments=sorted(set(ks) | {len(subjects)}), subjects=subjects, foci=foci,
                                 design=power_cfg.design_label or "dataset.yaml (ale.power)", **common)
    elif chosen and not chosen[0].skipped:
        model = chosen[0]
        scenario = scenario_from_model(model, ks, design=power_cfg.design_label or model.name, **common)
    else:
        scenario = PowerScenario(n_experiments=sorted(set(ks)), subjects=[DEFAULT_SUBJECTS], foci=[DEFAULT_FOCI],
                                 design="fixed", **common)
    if quick:
        design_k = len(scenario.subjects) if scenario.design != "fixed" else min(scenario.n_experiments)
        scenario.n_experiments = sorted({max(2, design_k), 17})
    return scenario


def design_statement(table: pd.DataFrame, scenario: PowerScenario) -> str:
    """What power the design itself had (its own k), in one or two sentences; empty for a fixed design."""
    if scenario.design == "fixed" or table.empty:
        return ""
    k = len(scenario.subjects)
    rows = table[table["n_experiments"] == k]
    if rows.empty:
        return ""
    first = rows.iloc[0]
    parts = [f"{r['power']:.0%} (95% CI {r['ci_low']:.0%}-{r['ci_high']:.0%}) when {int(r['n_effect'])} of {k} "
             f"experiments carry the true effect" for _, r in rows.iterrows()]
    return (
        f"This design ({k} experiments, {int(first['total_subjects'])} participants, {int(first['total_foci'])} "
        f"foci) detects a true convergence with probability {'; '.join(parts)} ({scenario.n_sims} simulated "
        f"meta-analyses each, Monte Carlo null of {scenario.n_iters} iterations, seed {scenario.seed}). A null "
        "result from such a design says little about whether a convergence exists."
    )


def compare_with_eickhoff(table: pd.DataFrame, target: float = 0.8) -> str:
    """One paragraph: where this curve reaches ``target`` power, next to Eickhoff et al. 2016's 17-20 experiments."""
    if table.empty:
        return "No configuration was simulated."
    lo, hi = EICKHOFF_2016_RANGE
    parts = []
    for share, t in table.groupby("effect_share", sort=True):
        reached = t[t["power"] >= target]
        if reached.empty:
            parts.append(f"with the true effect in {share:.0%} of experiments, power stays below {target:.0%} up to "
                         f"{int(t['n_experiments'].max())} experiments (at most {t['power'].max():.0%})")
        else:
            parts.append(f"with the true effect in {share:.0%} of experiments, power first reaches {target:.0%} "
                         f"at {int(reached['n_experiments'].min())} experiments (of those simulated)")
    where = "; ".join(parts)
    return (
        f"{where[0].upper()}{where[1:]}. Eickhoff et al. (2016) recommend at least "
        f"{lo}-{hi} experiments. The numbers need not agree: their simulations were built from real BrainMap "
        "experiments (their foci counts and sample sizes) and reported power by how many experiments carry the "
        "true effect, across many effect sizes; here the noise foci are uniform in the mask (as the ALE null "
        "assumes), the design is the one stated in the table, the effect is in a fixed share of experiments with "
        "the stated jitter, and detection requires a significant cluster within "
        f"{float(table['hit_radius_mm'].iloc[0]):g} mm of the true location."
    )


__all__ = [
    "DEFAULT_EFFECT_SHARES",
    "DEFAULT_N_EXPERIMENTS",
    "EICKHOFF_2016_RANGE",
    "POWER_COLUMNS",
    "PowerResult",
    "PowerScenario",
    "clopper_pearson",
    "compare_with_eickhoff",
    "design_statement",
    "scenario_from_config",
    "config_seed",
    "power_figure",
    "run_power",
    "scenario_from_model",
    "simulate_one",
]
