# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     notebook_metadata_filter: kernelspec,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python (painmeta)
#     language: python
#     name: painmeta
# ---

# %% [markdown]
# # Stage 1 · Activation likelihood estimation (ALE)
#
# Coordinate-based meta-analysis as the review configured it: sample-size-dependent Gaussian kernels (Eickhoff 2009),
# Turkeltaub's non-additive modelled activation, the MNI152 2 mm mask (228,483 voxels), cluster-forming p < 0.001 and
# cluster-level FWE p < 0.05 from a seeded Monte Carlo null. The primary engine is NiMARE (`painmeta.ale.nimare_engine`);
# every model is re-run by our independent in-house engine (`painmeta.ale.inhouse`) and the two are compared
# (`painmeta.ale.crosscheck`). Models with too few experiments are skipped with the reason.

# %% tags=["parameters"]
dataset = "cipn"
config_overrides = {}
quick = False          # tests: few Monte Carlo iterations
engine = None          # primary engine (default: the config's ale.engine); the other one cross-checks

# %%
import json

import pandas as pd
import yaml
from IPython.display import Markdown, display  # Markdown: the fail-safe N / contrast cells use it

from painmeta import extraction
from painmeta.ale import figures, models
from painmeta.display import literal, show_markdown
from painmeta.notebooks import progress_enabled, setup_notebook
from painmeta.plotting import publish

setup_notebook()
ext, config, paths = extraction.extract(dataset, config_overrides or None)
engine = engine or config.ale.engine
out = paths.stage("ale")
analysis = models.analyze(ext.experiments, ext.foci, config.ale, engine=engine, crosscheck=True,
                          n_iters=50 if quick else None, progress=progress_enabled())
show_markdown(f"Monte Carlo iterations: {'50 (quick run)' if quick else 'per model, from dataset.yaml'}; "
                 f"seed {config.ale.seed}.")

# %% [markdown]
# ## Models
# Every model in `dataset.yaml`, whether it ran, and why not.

# %%
display(analysis.summary)
for m in analysis.models:
    if len(getattr(m, "excluded", [])):
        show_markdown(f"**{literal(m.name)}**: experiments not entering the model")
        display(m.excluded)

# %% [markdown]
# ## What the kernel alone determines
# FWHM and the peak value of one isolated focus for each sample size entering ALE.

# %%
n_ale = ext.experiments.loc[ext.experiments["study_id"].isin(
    ext.studies.loc[ext.studies["syntheses"].str.contains("ale", na=False), "study_id"]), "n_ale"].dropna().astype(int)
kernels = figures.kernel_table(n_ale.tolist() or [20])
display(kernels)
reported_file = paths.raw / "reported.yaml"
if reported_file.is_file():
    rep = {i["id"]: i for i in yaml.safe_load(reported_file.read_text())["items"]}
    fw = rep.get("ale_fwhm", {}).get("value")
    mx = rep.get("ale_max", {}).get("value")
    n20 = kernels.set_index("n")
    lines = []
    if fw:
        lines.append(f"- Review's FWHM range {fw[0]}–{fw[1]} mm; kernels here: " +
                     ", ".join(f"n = {n}: {r.fwhm_mm:.2f} mm" for n, r in n20.iterrows()))
    if mx and 20 in n20.index:
        lines.append(f"- Review's maximum ALE {mx}; an isolated n = 20 focus peaks at {n20.loc[20, 'peak_ma']:.4f}: "
                     "no two experiments overlapped anywhere.")
    show_markdown("\n".join(lines))

# %% [markdown]
# ## What is public

# %%
in_ale = ext.experiments[ext.experiments["in_ale"]]
public_foci = int(ext.foci["experiment_id"].isin(in_ale["experiment_id"]).sum())
lines = [f"- {len(in_ale)} experiment(s) from {in_ale['study_id'].nunique()} stud(ies) have public coordinates "
         f"({public_foci} foci)."]
if reported_file.is_file() and {"ale_foci", "ale_datasets", "ale_participants"} <= set(rep):
    lines.append(f"- The review used {rep['ale_foci']['value']} foci from {rep['ale_datasets']['value']} datasets "
                 f"({rep['ale_participants']['value']} participants).")
unverified = in_ale[in_ale["evidence"] == "unverified"]
for r in unverified.itertuples():
    lines.append(f"- {literal(r.experiment_id)}: {literal(r.evidence_note)}")
no_coords = ext.experiments[(ext.experiments["n_foci"] == 0)]
if len(no_coords):
    lines.append(f"- No public coordinates for {len(no_coords)} contrast(s): "
                 + ", ".join(literal(e) for e in no_coords["experiment_id"]))
lines.append("- Reproduced here: the kernel values above, and every model that has enough public experiments. "
             "Not reproducible: any statistic that depends on the unpublished foci (minimum p, cluster-size "
             "threshold, ALE range of the review's models).")
show_markdown("\n".join(lines))

# %% [markdown]
# ## Clusters
# Clusters surviving cluster-level FWE correction (an empty table is a result: no cluster survived).

# %%
ran = [m.name for m in analysis.models if not m.skipped]
if not ran:
    show_markdown("No model ran (see the table above), so there is no cluster to report.")
for name in ran:
    res = analysis.results[engine][name]
    cl = res.clusters
    show_markdown(f"**{literal(name)}** — cluster-forming ALE {res.ale_threshold:.5f}; minimum significant cluster "
                  f"{res.cluster_size_threshold} voxels")
    display(cl) if len(cl) else show_markdown("No cluster survived cluster-level FWE correction.")
    res.save(out / name)

# %% [markdown]
# ## Maps
# Coronal slices across the review's range (y = −102 to +88 mm) with the foci on their nearest slice, and a glass brain.

# %%
foci_in = ext.foci[ext.foci["experiment_id"].isin(in_ale["experiment_id"])]
colour_by = "experiment_id" if foci_in["experiment_id"].nunique() <= 8 else "study_id"
if ran:
    name = ran[0]
    img = analysis.results[engine][name].maps["ale"]
    label = f"{config.name}, model {name}: unthresholded ALE"
elif len(foci_in):
    sizes = in_ale.set_index("experiment_id")["n_ale"].astype(int).to_dict()
    img = figures.descriptive_ale(foci_in[["experiment_id", "x", "y", "z"]], sizes)
    label = f"{config.name}: descriptive ALE of the public foci (no model could run; not an inferential map)"
else:
    img = None
    label = f"{config.name}: no public foci"
if img is not None or len(foci_in):
    publish(figures.coronal_montage(img, foci_in, title=label, colour_by=colour_by), out / "ale_coronal_montage")
if img is not None:
    publish(figures.glass_brain(img, foci_in, title=label), out / "ale_glass_brain")

# %% [markdown]
# ## Cross-check: NiMARE vs the in-house engine
# Same foci, same random foci draws: ALE maps must agree within 1e-6 (float32 sums), p-maps and clusters identically,
# every Monte Carlo iteration identically. Independent random streams: a two-sample KS test that does not reject and
# 95th percentiles within sampling error. Each row states its tolerance and why.

# %%
if len(analysis.crosscheck):
    cc = analysis.crosscheck
    show_markdown(f"**{int(cc['passed'].sum())} of {len(cc)} checks passed.**")
    display(cc)
    cc.to_csv(out / "crosscheck.csv", index=False)
else:
    show_markdown("No model ran, so nothing to cross-check here; the engines are cross-checked on synthetic data "
                     "and on the `nidm_pain` positive control in the test suite.")

# %% [markdown]
# ## Monte Carlo null distributions

# %%
if len(analysis.nulls):
    publish(figures.null_distributions(analysis.nulls, alpha=config.ale.cluster_alpha), out / "ale_null_distributions")
    analysis.nulls.to_csv(out / "null.csv", index=False)
else:
    show_markdown("No null distribution: no model ran.")

# %% [markdown]
# ## Contribution analysis
# For each significant cluster: jackknife (cluster ALE without each experiment) and focus counts.

# %%
if len(analysis.contributions):
    display(analysis.contributions.pivot_table(index=["model", "kind", "experiment_id"], columns="cluster_id",
                                               values="value").round(4))
else:
    show_markdown("No significant cluster, so no contribution analysis.")
analysis.summary.to_csv(out / "models.csv", index=False)

# %% [markdown]
# <!-- ===== ale-analyses section: leave-one-out, fail-safe N, subtraction / conjunction ===== -->
# ## Leave-one-experiment-out stability
# For every significant cluster and every experiment: the ALE map without that experiment (from the model's total
# log-sum minus the experiment's own term, no refit), its own cluster-forming value, and whether the cluster still
# reaches the model's minimum significant size (one Monte Carlo null for all leave-one-out maps: removing one
# experiment moves the null little, and a null per experiment would cost as many nulls as experiments). Above 100
# experiments the full model's cluster-forming value is reused too (column `threshold_source`).

# %%
from painmeta.ale import analysis_figures, contrast as ale_contrast, contributions as ale_contrib, fsn as ale_fsn
from painmeta.ale.problem import make_problem

loo_done = False
for name in ran:
    res = analysis.results[engine][name]
    sig = [int(c) for c in res.clusters["cluster_id"]]
    if not sig:
        continue
    model = next(m for m in analysis.models if m.name == name)
    problem = make_problem(model.foci[["experiment_id", "x", "y", "z"]], model.sample_sizes,
                           experiment_order=res.experiment_ids)
    loo = ale_contrib.leave_one_out_stability(problem, res.label_map, sig, res.cluster_size_threshold,
                                              res.voxel_thresh, full_threshold=res.ale_threshold)
    loo.to_csv(out / name / "leave_one_out.csv", index=False)
    n_fail = int((~loo["survives"]).sum())
    display(Markdown(f"**{name}**: {len(sig)} cluster(s) x {problem.n_experiments} experiments; "
                     f"{n_fail} experiment-cluster pair(s) where the cluster no longer survives."))
    display(loo.pivot(index="experiment_id", columns="cluster_id", values="size_change_pct").round(1)
            .add_prefix("size change % cl. "))
    publish(analysis_figures.loo_figure(loo, title=f"{name}: leave-one-experiment-out"), out / f"ale_loo_{name}")
    loo_done = True
if not loo_done:
    display(Markdown("No significant cluster in any model, so there is nothing whose stability could be tested."))

# %% [markdown]
# ## Fail-safe N
# How many null experiments (sample sizes and foci counts resampled from the real ones, foci uniform in the brain
# mask, seeded) each significant cluster survives at cluster-level FWE (Acar et al. 2018), over several file drawers,
# with the in-house engine; found by bisection over nested refits (`painmeta.ale.fsn`). Null foci come from the
# brain mask, as in Enge et al. 2021 (NiMARE 0.0.9 returned that mask when asked for a grey-matter template); Acar et
# al.'s grey-matter template (not shipped with NiMARE 0.22.1) puts more null foci in cortex, where real clusters are,
# and so gives lower values.

# %%
fsn_cfg = config.ale.fsn
fsn_done = False
if not fsn_cfg.enabled:
    display(Markdown("Fail-safe N is not enabled for this dataset (`ale.fsn.enabled` in `dataset.yaml`); "
                     "`python -m painmeta ale --fsn` runs it on any model."))
else:
    for name in ran:
        res = analysis.results[engine][name]
        if res.clusters.empty:
            continue
        model = next(m for m in analysis.models if m.name == name)
        fres = ale_fsn.attach_fsn(
            res, model.foci[["experiment_id", "x", "y", "z"]], model.sample_sizes,
            n_drawers=1 if quick else fsn_cfg.n_drawers, max_factor=1.0 if quick else fsn_cfg.max_factor,
            n_iters=50 if quick else (fsn_cfg.n_iters or res.n_iters), method=fsn_cfg.method,
            n_threads=config.ale.n_cores)
        fres.save(out / name)
        res.clusters_all.to_csv(out / name / "clusters_all.csv", index=False)
        res.clusters.to_csv(out / name / "clusters.csv", index=False)
        summ = fres.summary()
        display(Markdown(f"**{name}**: {fres.n_drawers} drawer(s) of up to {fres.k_max} null experiments, "
                         f"{fres.n_iters} Monte Carlo iterations per refit ({fres.method})"
                         + (" - quick run: 1 drawer, k_max = number of experiments" if quick else "")))
        display(summ.round(2))
        publish(analysis_figures.fsn_figure(summ, len(res.experiment_ids), fres.k_max, title=f"{name}: fail-safe N"),
                out / f"ale_fsn_{name}")
        fsn_done = True
    if not fsn_done:
        display(Markdown("Fail-safe N is enabled, but no model has a significant cluster."))

# %% [markdown]
# ## Subtraction and conjunction
# Contrasts declared in `dataset.yaml` (`ale.contrasts`): label-permutation subtraction of two models' ALE maps
# (two-sided voxel p and a minimum cluster extent, Enge et al. 2021's thresholds by default) and the conjunction
# (voxel-wise minimum of both models' cluster-FWE thresholded ALE). The in-house subtraction keeps exact ties between
# permuted and observed differences; NiMARE 0.22.1 compares a float64 permuted difference with a float32 observed one
# and so breaks such ties by rounding. The cross-check runs both on NiMARE's own permutations.

# %%
if not config.ale.contrasts:
    display(Markdown("No contrast is declared for this dataset (`ale.contrasts` in `dataset.yaml`)."))
else:
    contrasts, ctable = ale_contrast.run_dataset_contrasts(
        analysis.models, config.ale, analysis.results[engine], engine=engine, seed=config.ale.seed,
        n_cores=config.ale.n_cores, n_iters=200 if quick else None)
    display(ctable)
    ctable.to_csv(out / "contrasts.csv", index=False)
    checks = []
    for cname, cres in contrasts.items():
        cres.save(out / f"contrast-{cname}")
        display(Markdown(f"**{cname}** ({cres.label_a} vs {cres.label_b}), {cres.subtraction.n_iters} permutations"))
        display(cres.clusters if len(cres.clusters) else Markdown("No subtraction or conjunction cluster."))
        publish(analysis_figures.contrast_figure(cres), out / f"ale_contrast_{cname}")
        c = config.ale.contrasts[cname]
        ma = next(m for m in analysis.models if m.name == c.a)
        mb = next(m for m in analysis.models if m.name == c.b)
        checks.append(ale_contrast.crosscheck_subtraction(
            ma.foci, ma.sample_sizes, mb.foci, mb.sample_sizes, n_iters=100 if quick else min(c.n_iters, 1000),
            seed=config.ale.seed, name=cname, voxel_thresh=c.voxel_thresh, min_cluster_mm3=c.min_cluster_mm3,
            n_cores=config.ale.n_cores))
    if checks:
        cc_sub = pd.concat(checks, ignore_index=True)
        display(Markdown(f"**Subtraction cross-check: {int(cc_sub['passed'].sum())} of {len(cc_sub)} checks passed.**"))
        display(cc_sub)
        cc_sub.to_csv(out / "contrast_crosscheck.csv", index=False)
# <!-- ===== end of ale-analyses section ===== -->

# %% [markdown]
# <!-- ===== ale-scale section: power analysis ===== -->
# ## Power: could ALE have found a convergence with this design?
# Simulated meta-analyses (`painmeta.ale.power`): for each number of experiments k, the design's sample sizes and foci
# counts (its experiments cycled), a true effect at one location in a stated share of experiments (Gaussian jitter per
# axis), uniform random foci for everything else, and the same inference as above (cluster-forming p < 0.001,
# cluster-level FWE by size). The null of each k is computed once and reused by all its simulations. Power is the
# share of simulations with a significant cluster within the stated radius of the true location, with a
# Clopper-Pearson 95% interval. Settings: `ale.power` in `dataset.yaml`.

# %%
from painmeta.ale import power as ale_power

power_cfg = config.ale.power
if not power_cfg.enabled:
    show_markdown("The power analysis is not enabled for this dataset (`ale.power.enabled` in `dataset.yaml`).")
else:
    scenario = ale_power.scenario_from_config(power_cfg, analysis.models, config.ale.seed,
                                              config.ale.voxel_thresh, config.ale.cluster_alpha, quick=quick)
    presult = ale_power.run_power(scenario, n_threads=config.ale.n_cores, executor=config.ale.executor,
                                  progress=progress_enabled())
    presult.save(out / "power")
    show_markdown(
        f"Design: {literal(scenario.design)}; {scenario.n_sims} simulations per k and effect share, Monte Carlo null "
        f"of {scenario.n_iters} iterations per k, seed {scenario.seed}; true effect at MNI "
        f"({', '.join(f'{v:g}' for v in scenario.location)}) with {scenario.jitter_mm:g} mm jitter per axis; detected "
        f"within {scenario.hit_radius_mm:g} mm." + (" Quick run: few simulations and iterations." if quick else ""))
    statement = ale_power.design_statement(presult.table, scenario)
    if statement:
        show_markdown(f"**{statement}**")
    display(presult.table[["n_experiments", "effect_share", "n_effect", "power", "ci_low", "ci_high",
                           "fwe_elsewhere", "total_subjects", "total_foci", "min_significant_cluster_mm3"]].round(3))
    publish(ale_power.power_figure(presult.table, len(scenario.subjects) if scenario.design != "fixed" else None),
            out / "ale_power")
    show_markdown(ale_power.compare_with_eickhoff(presult.table))
# <!-- ===== end of ale-scale section ===== -->
