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
# Coordinate-based meta-analysis: every reported peak (focus) is blurred with a Gaussian whose width depends on the
# experiment's sample size (Eickhoff et al. 2009); an experiment's modelled activation (MA) map is the voxel-wise
# maximum over its foci (Turkeltaub et al. 2012); ALE is the union of the experiments' MA maps within the MNI152 2 mm
# mask (228,483 voxels). Convergence is tested against a null of spatial independence: voxel p-values from the
# analytic null, then family-wise error (FWE) control from a seeded Monte Carlo null that records, per iteration, the
# largest ALE value, the largest cluster and the largest cluster mass. Two independent engines compute every model:
# NiMARE (`painmeta.ale.nimare_engine`) and the in-house engine (`painmeta.ale.inhouse`), compared in
# `painmeta.ale.crosscheck`. Which one gives the reported result is the dataset's `ale.engine` (NiMARE by default;
# very large datasets use the in-house engine and let NiMARE cross-check a stated number of iterations,
# `ale.crosscheck_max_iters`). Models with too few experiments are skipped with the reason.

# %% tags=["parameters"]
dataset = "cipn"
config_overrides = {}
quick = False          # tests: few Monte Carlo iterations
engine = None          # primary engine (default: the config's ale.engine); the other one cross-checks

# %%
import pandas as pd
from IPython.display import HTML, display

from painmeta import extraction
from painmeta.ale import figures, models
from painmeta.ale.inference import METHOD_SHORT
from painmeta.display import literal, show_markdown, show_table
from painmeta.notebooks import progress_enabled, setup_notebook
from painmeta.plotting import copy_figures, publish

setup_notebook()
ext, config, paths = extraction.extract(dataset, config_overrides or None)
engine = engine or config.ale.engine
out = paths.stage("ale")
# Progress bars show in the terminal and JupyterLab, never in a rendered page (progress_enabled).
# Quick runs (tests) skip the exact-placement comparison; its section says so.
analysis = models.analyze(ext.experiments, ext.foci, config.ale, engine=engine, crosscheck=True,
                          n_iters=50 if quick else None, progress=progress_enabled(), placement_check=not quick)
models.save_analysis(analysis, out)
ran = [m for m in analysis.models if not m.skipped]
INFERENCE_TEXT = {
    "cluster_size": "cluster-level FWE on cluster size",
    "cluster_mass": "cluster-level FWE on cluster mass",
    "voxel": "voxel-level FWE",
}
budget = config.ale.crosscheck_max_iters if engine == "inhouse" else None
show_markdown(
    f"Primary engine: **{engine}**; the other engine cross-checks every model"
    + (f" on the first {budget} Monte Carlo iterations (identical draws)" if budget else "") + ". "
    f"Settings: cluster-forming threshold p < {config.ale.voxel_thresh:g} (uncorrected), FWE α = "
    f"{config.ale.cluster_alpha:g}, Monte Carlo iterations "
    f"{'50 (quick run)' if quick else 'per model (below)'}, seed {config.ale.seed}."
)

# %% [markdown]
# ## Models
# Every model in `dataset.yaml`, whether it ran and why not. *Experiments* counts the independent samples that
# entered: contrasts that share participants (the same `subject_group` in `experiments.csv`) are pooled into one
# experiment first (Turkeltaub et al. 2012), and *pooled* lists them. *Inference* is the FWE correction that decides
# which clusters survive; all three corrections are computed from the same Monte Carlo null and written for every model.

# %%
show = ["model", "description", "status", "reason", "n_experiments", "n_contrasts", "pooled", "n_foci", "n_subjects",
        "n_iters", "inference", "focus_placement", "n_clusters_significant", "warnings", "excluded"]
show_table(analysis.summary, columns=[c for c in show if c in analysis.summary.columns],
           headers={"n_experiments": "Experiments (after pooling)", "n_contrasts": "Contrasts",
                    "n_subjects": "Subjects", "n_clusters_significant": "Surviving clusters"})

# %% [markdown]
# ## Inference
# Three family-wise error corrections come from the same Monte Carlo loop (random foci at in-mask voxels, the real
# foci counts and kernels):
#
# - **cluster size** (the usual ALE choice): a cluster of voxels above the cluster-forming threshold survives when
#   fewer than α of the iterations produced a cluster at least as large;
# - **cluster mass** (sum of ALE above the threshold over the cluster), more sensitive to strong small clusters;
# - **voxel level**: a voxel survives when fewer than α of the iterations reached its ALE anywhere in the brain.
#
# Each p-value is the share of iterations whose maximum is at least the observed value (at least 1/iterations), as
# NiMARE's `FWECorrector` computes it. Thresholds below are the values a statistic must exceed.

# %%
if not ran:
    show_markdown("No model ran (see the table above), so there is no inference to report.")
else:
    rows = []
    for m in ran:
        s = analysis.primary[m.name].summary()
        rows.append({
            "model": m.name, "primary inference": INFERENCE_TEXT[s["inference"]],
            "focus placement": s["focus_placement"], "cluster-forming ALE": s["cluster_forming_ale"],
            "min. cluster size (mm³)": s["cluster_size_threshold_mm3"],
            "cluster mass to exceed": s["cluster_mass_threshold"], "voxel-level ALE to exceed": s["vfwe_ale_threshold"],
            "clusters (size)": s["n_clusters_significant_size"], "clusters (mass)": s["n_clusters_significant_mass"],
            "clusters (voxel)": s["n_clusters_significant_voxel"], "voxels (voxel FWE)": s["n_voxels_vfwe"],
        })
    show_table(pd.DataFrame(rows))

# %% [markdown]
# ## What the kernel alone determines
# FWHM and the peak value of one isolated focus (the largest ALE an experiment can contribute alone) for each sample
# size entering ALE.

# %%
ale_exps = ext.experiments[ext.experiments["in_ale"]]
kernels = figures.kernel_table(ale_exps["n_ale"].dropna().astype(int).tolist() or [20])
show_table(kernels, headers={"n": "Sample size (n)"})

# %% [markdown]
# ## What is public
# What the dataset provides for ALE, and the ALE numbers its source reports (when the dataset has a `reported.yaml`;
# the audit stage recomputes each of them).

# %%
public_foci = int(ext.foci["experiment_id"].isin(ale_exps["experiment_id"]).sum())
lines = [f"- {len(ale_exps)} experiment(s) from {ale_exps['study_id'].nunique()} stud(ies) have coordinates "
         f"({public_foci} foci)."]
for r in ale_exps[ale_exps["evidence"] == "unverified"].itertuples():
    lines.append(f"- {literal(r.experiment_id)}: {literal(r.evidence_note)}")
no_coords = ext.experiments[ext.experiments["n_foci"] == 0]
if len(no_coords):
    lines.append(f"- No coordinates for {len(no_coords)} contrast(s): "
                 + ", ".join(literal(e) for e in no_coords["experiment_id"]))
show_markdown("\n".join(lines))
reported_file = paths.raw / "reported.yaml"
reported = models.reported_ale_items(reported_file) if reported_file.is_file() else pd.DataFrame()
if len(reported):
    show_table(reported, caption="ALE numbers the source reports (reported.yaml)")

# %% [markdown]
# ## Results per model
# For every model that ran: the clusters as papers print them (size, peak and centre of mass in MNI mm, peak and mean
# ALE and z, FWE p for size, mass and voxel level, atlas labels at the peak and the labelled share of the cluster's
# voxels from AAL2 and Harvard-Oxford), the thresholded map of the surviving clusters, the unthresholded map with the
# foci and the surviving clusters outlined, and an interactive viewer. Every map is also written as NIfTI next to
# this page's outputs.

# %%
foci_in = ext.foci[ext.foci["experiment_id"].isin(ale_exps["experiment_id"])]
if not ran:
    show_markdown("No model ran, so there are no clusters to report (see the models table for why).")
for m in ran:
    res = analysis.primary[m.name]
    maps = res.maps
    show_markdown(f"### Model {literal(m.name)}\n\n{literal(m.description)}")
    notes = [INFERENCE_TEXT[res.inference].capitalize() + f" decides survival (α = {res.cluster_alpha:g})",
             f"cluster-forming ALE {res.ale_threshold:.5f}",
             f"{res.engine} engine, focus placement {res.focus_placement}"]
    show_markdown(literal("; ".join(notes) + "."))
    if res.notes:
        show_markdown("\n".join(f"- {literal(n)}" for n in res.notes))
    cl = res.clusters
    if len(cl):
        show_table(models.cluster_display_table(cl), caption=f"Surviving clusters of {m.name}")
    else:
        show_markdown(f"**No cluster survived {INFERENCE_TEXT[res.inference]}.** {len(res.clusters_all)} cluster(s) "
                      "exceeded the cluster-forming threshold; every one of them is in clusters_all.csv.")
    model_foci = foci_in[foci_in["experiment_id"].isin(m.foci.get("contrast_id", m.foci["experiment_id"]))]
    colour_by = "experiment_id" if model_foci["experiment_id"].nunique() <= 8 else "study_id"
    fig = figures.surviving_clusters(maps[f"ale_fwe-{METHOD_SHORT[res.inference]}"], cl,
                                     title=f"{m.name}: surviving clusters ({INFERENCE_TEXT[res.inference]}, "
                                           f"α = {res.cluster_alpha:g}); numbers are cluster ids")
    if fig is not None:
        publish(fig, out / "figures" / f"{m.name}_surviving")
    montage = figures.coronal_montage(maps["ale"], model_foci, title=f"{m.name}: unthresholded ALE",
                                      colour_by=colour_by, outline_img=maps["clusters"])
    glass = figures.glass_brain(maps["ale"], model_foci, title=f"{m.name}: unthresholded ALE")
    written = publish(montage, out / "figures" / f"{m.name}_coronal_montage")
    written += publish(glass, out / "figures" / f"{m.name}_glass_brain")
    if m is ran[0]:  # the report index shows the first model's maps under these names
        copy_figures(written, {f"{m.name}_coronal_montage": out / "ale_coronal_montage",
                               f"{m.name}_glass_brain": out / "ale_glass_brain"})
    show_markdown("Interactive viewer (unthresholded ALE; click to move the cursor):")
    # nilearn's self-contained viewer (inlined JavaScript, no network), in an iframe's srcdoc
    display(HTML(figures.viewer_html(figures.interactive_view(maps["ale"]))))

# %% [markdown]
# ## Descriptive map when no model runs
# With too few experiments there is no inference, but a map can still show where the kernels of the public foci put
# their probability mass (descriptive only).

# %%
if ran:
    show_markdown("Models ran, so their maps are shown above instead.")
elif len(foci_in):
    sizes = ale_exps.set_index("experiment_id")["n_ale"].astype(int).to_dict()
    img = figures.descriptive_ale(foci_in[["experiment_id", "x", "y", "z"]], sizes)
    label = f"{config.name}: descriptive ALE of the public foci (not an inferential map)"
    colour_by = "experiment_id" if foci_in["experiment_id"].nunique() <= 8 else "study_id"
    publish(figures.coronal_montage(img, foci_in, title=label, colour_by=colour_by), out / "ale_coronal_montage")
    publish(figures.glass_brain(img, foci_in, title=label), out / "ale_glass_brain")
else:
    show_markdown("No public foci, so there is no map to show.")

# %% [markdown]
# ## Focus placement
# NiMARE centres each kernel on the voxel nearest to the reported coordinate; GingerALE centres it at the coordinate
# itself. Every model is also run with exact placement on the in-house engine (models configured with
# `focus_placement: exact` report that run), and this table says how far the map and the surviving clusters move:
# the largest ALE difference, the correlation of the two maps, the number of surviving clusters and, per surviving
# cluster, the shift of its peak (mm) and the change of its size (voxels). Coordinates reported on the 2 mm grid
# (even millimetres) do not move at all. The Monte Carlo null places its random foci at voxel centres in both cases:
# a uniformly drawn location is uniform over the mask's voxels, and `tools/placement_movement.py` checks that a null
# with continuous random locations gives the same thresholds.

# %%
if quick and not len(analysis.placement):
    show_markdown("Not computed in a quick run (tests); `make ale` computes it.")
elif len(analysis.placement):
    show_table(analysis.placement, formats={"max_abs_ale_diff": "{:.3g}", "r_ale": "{:.5f}"})
else:
    show_markdown("No model ran, so there is nothing to compare.")

# %% [markdown]
# ## Cross-check: NiMARE vs the in-house engine
# Same foci, same random foci draws: ALE maps must agree within 1e-6 (float32 sums), p-maps and clusters identically,
# every Monte Carlo iteration identically, and so the voxel-level and cluster-mass FWE maps, their thresholds and the
# surviving voxels. Independent random streams: a two-sample KS test that does not reject and 95th percentiles within
# sampling error. Each row states its tolerance and why.

# %%
if len(analysis.crosscheck):
    cc = analysis.crosscheck
    show_markdown(f"**{int(cc['passed'].sum())} of {len(cc)} checks passed.**")
    show_table(cc)
else:
    show_markdown("No model ran, so nothing to cross-check here; the engines are cross-checked on synthetic data "
                  "and on the `nidm_pain` positive control in the test suite.")

# %% [markdown]
# ## Monte Carlo null distributions
# Per-iteration maxima of each model; dashed lines are the values a statistic must exceed for FWE p < α, solid black
# lines the observed maxima.

# %%
if len(analysis.nulls):
    observed = figures.observed_statistics(analysis.primary)
    publish(figures.null_distributions(analysis.nulls, observed, alpha=config.ale.cluster_alpha),
            out / "ale_null_distributions")
else:
    show_markdown("No null distribution: no model ran.")

# %% [markdown]
# ## Contribution analysis
# For each surviving cluster: jackknife (share of the cluster's ALE lost without each experiment) and focus counts.

# %%
if len(analysis.contributions):
    table = analysis.contributions.pivot_table(index=["model", "kind", "experiment_id"], columns="cluster_id",
                                               values="value").round(4)
    show_table(table.rename(columns=lambda c: f"cluster {c}"))
else:
    show_markdown("No surviving cluster, so no contribution analysis.")

# %% [markdown]
# <!-- ===== ale-analyses section: leave-one-out, fail-safe N, subtraction / conjunction ===== -->
# ## Leave-one-experiment-out stability
# For every significant cluster and every experiment: the ALE map without that experiment (from the model's total
# log-sum minus the experiment's own term, no refit), its own cluster-forming value, and whether the cluster still
# survives the model's primary inference (size at least the minimum significant size, mass above the critical mass,
# or a voxel above the voxel-level FWE cutoff; one Monte Carlo null for all leave-one-out maps: removing one
# experiment moves the null little, and a null per experiment would cost as many nulls as experiments). Above 100
# experiments the full model's cluster-forming value is reused too (column `threshold_source`).

# %%
from painmeta.ale import analysis_figures, contrast as ale_contrast, contributions as ale_contrib, fsn as ale_fsn
from painmeta.ale.problem import make_problem

loo_done = False
for model in ran:
    name = model.name
    res = analysis.primary[name]
    sig = [int(c) for c in res.clusters["cluster_id"]]
    if not sig:
        continue
    problem = make_problem(model.foci[["experiment_id", "x", "y", "z"]], model.sample_sizes,
                           experiment_order=res.experiment_ids, focus_placement=res.focus_placement)
    loo = ale_contrib.leave_one_out_stability(problem, res.label_map, sig, res.cluster_size_threshold,
                                              res.voxel_thresh, full_threshold=res.ale_threshold,
                                              inference=res.inference, critical_mass=res.cluster_mass_threshold,
                                              critical_ale=res.vfwe_ale_threshold)
    loo.to_csv(out / name / "leave_one_out.csv", index=False)
    n_fail = int((~loo["survives"]).sum())
    show_markdown(f"**{literal(name)}**: {len(sig)} cluster(s) x {problem.n_experiments} experiments; "
                  f"{n_fail} experiment-cluster pair(s) where the cluster no longer survives.")
    show_table(loo.pivot(index="experiment_id", columns="cluster_id", values="size_change_pct").round(1)
               .add_prefix("size change % cl. ").reset_index(),
               caption="Cluster size change (%) without each experiment")
    publish(analysis_figures.loo_figure(loo, title=f"{name}: leave-one-experiment-out"), out / f"ale_loo_{name}")
    loo_done = True
if not loo_done:
    show_markdown("No significant cluster in any model, so there is nothing whose stability could be tested.")

# %% [markdown]
# ## Fail-safe N
# How many null experiments (sample sizes and foci counts resampled from the real ones, foci uniform in the brain
# mask, seeded) each significant cluster survives at cluster-level FWE (Acar et al. 2018), over several file drawers,
# with the in-house engine; found by bisection over nested refits (`painmeta.ale.fsn`). Null foci come from the
# brain mask, as in Enge et al. 2021 (NiMARE 0.0.9 returned that mask when asked for a grey-matter template); Acar et
# al.'s grey-matter template (not shipped with NiMARE 0.22.1) puts more null foci in cortex, where real clusters are,
# and so gives lower values. When `reported.yaml` holds a published fail-safe N for a model, the same refits also
# read it off at the published peaks (`fsn_points.csv`), for the audit stage to compare.

# %%
from painmeta import audit as _audit, reproduction

fsn_cfg = config.ale.fsn
fsn_done = False
published_tables = _audit.reported_cluster_tables(paths.raw)
for model in ran:  # a previous run's fail-safe N must not outlive a change of settings
    ale_fsn.clear_outputs(out / model.name)
if not fsn_cfg.enabled:
    show_markdown("Fail-safe N is not enabled for this dataset (`ale.fsn.enabled` in `dataset.yaml`); "
                  "`python -m painmeta ale --fsn` runs it on any model.")
else:
    fsn_models = [m for m in ran if fsn_cfg.models is None or m.name in fsn_cfg.models]
    if fsn_cfg.models is not None:
        show_markdown("Models asked for (`ale.fsn.models`): " + ", ".join(literal(m) for m in fsn_cfg.models)
                      + (f"; {len(fsn_models)} of them ran here." if fsn_models else "; none of them ran here."))
    for model in fsn_models:
        name = model.name
        res = analysis.primary[name]
        if res.clusters.empty:
            show_markdown(f"**{literal(name)}**: no significant cluster, so no fail-safe N.")
            continue
        points = reproduction.published_fsn_points(published_tables, name)
        fres = ale_fsn.attach_fsn(
            res, model.foci[["experiment_id", "x", "y", "z"]], model.sample_sizes,
            n_drawers=1 if quick else fsn_cfg.n_drawers, max_factor=1.0 if quick else fsn_cfg.max_factor,
            n_iters=50 if quick else (fsn_cfg.n_iters or res.n_iters), method=fsn_cfg.method,
            n_threads=config.ale.n_cores, executor=config.ale.executor, cluster_alpha=fsn_cfg.cluster_alpha,
            points=points if len(points) else None)
        fres.save(out / name)
        res.clusters_all.to_csv(out / name / "clusters_all.csv", index=False)
        res.clusters.to_csv(out / name / "clusters.csv", index=False)
        summ = fres.summary()
        show_markdown(f"**{literal(name)}**: {fres.n_drawers} drawer(s) of up to {fres.k_max} null experiments, "
                      f"{fres.n_iters} Monte Carlo iterations per refit ({fres.method}), significance at "
                      f"α = {fres.cluster_alpha:g}"
                      + (f" (the model's α is {res.cluster_alpha:g}; `ale.fsn.cluster_alpha`)"
                         if fres.cluster_alpha != res.cluster_alpha else "")
                      + (" - quick run: 1 drawer, k_max = number of experiments" if quick else "")
                      + (f"; also read off at {len(points)} published peak(s), compared in the audit stage"
                         if len(points) else ""))
        show_table(summ.round(2))
        flicker = fres.non_monotone()
        if fres.points is not None:
            outside = sorted(set(fres.points.loc[fres.points["fail_safe_n"].isna(), "point"]))
            if outside:
                show_markdown("Published peak(s) outside every significant cluster here (no fail-safe N): "
                              + ", ".join(literal(p) for p in outside) + ".")
        if fres.method == "bisect":
            show_markdown(
                f"Bisection assumes that a cluster, once lost, is not significant again with more null "
                f"experiments: {len(flicker)} of {len(fres.table)} drawer-cluster pair(s) contradict it in the "
                f"refits that ran" + (" (listed below; their value may differ from the scan's first failure)"
                                      if len(flicker) else "") + ".")
            if len(flicker):
                show_table(flicker, caption="Clusters lost and significant again")
        publish(analysis_figures.fsn_figure(summ, len(res.experiment_ids), fres.k_max, title=f"{name}: fail-safe N"),
                out / f"ale_fsn_{name}")
        fsn_done = True
    if not fsn_done and fsn_models:
        show_markdown("Fail-safe N is enabled, but no model it applies to has a significant cluster.")

# %% [markdown]
# ## Subtraction and conjunction
# Contrasts declared in `dataset.yaml` (`ale.contrasts`): label-permutation subtraction of two models' ALE maps
# (two-sided voxel p and a minimum cluster extent, Enge et al. 2021's thresholds by default) and the conjunction
# (voxel-wise minimum of both models' cluster-FWE thresholded ALE). The subtraction reported here is the in-house one,
# whatever the primary engine: it keeps exact ties between permuted and observed differences, whereas NiMARE 0.22.1
# compares a float64 permuted difference with a float32 observed one and so breaks such ties by rounding (on Enge et
# al. 2021's subtraction that makes voxels where both sets' ALE is near zero "significant"). The cross-check runs both
# on NiMARE's own permutations.

# %%
if not config.ale.contrasts:
    show_markdown("No contrast is declared for this dataset (`ale.contrasts` in `dataset.yaml`).")
else:
    contrasts, ctable = ale_contrast.run_dataset_contrasts(
        # The in-house subtraction keeps exact ties; NiMARE 0.22.1's ALESubtraction breaks them by float32/float64
        # rounding, which makes spurious "significant" voxels where both sets' ALE is near zero. NiMARE cross-checks
        # it below on its own permutations.
        analysis.models, config.ale, analysis.primary, engine="inhouse", seed=config.ale.seed,
        n_cores=config.ale.n_cores, n_iters=100 if quick else None,
        subject_groups=models.subject_groups(ext.experiments))
    show_table(ctable)
    ctable.to_csv(out / "contrasts.csv", index=False)
    checks = []
    for cname, cres in contrasts.items():
        cres.save(out / f"contrast-{cname}")
        show_markdown(f"**{literal(cname)}** ({literal(cres.label_a)} vs {literal(cres.label_b)}), "
                      f"{cres.subtraction.n_iters} permutations")
        show_table(cres.clusters, empty="No subtraction or conjunction cluster.")
        publish(analysis_figures.contrast_figure(cres), out / f"ale_contrast_{cname}")
        c = config.ale.contrasts[cname]
        ma = next(m for m in analysis.models if m.name == c.a)
        mb = next(m for m in analysis.models if m.name == c.b)
        checks.append(ale_contrast.crosscheck_subtraction(
            ma.foci, ma.sample_sizes, mb.foci, mb.sample_sizes, n_iters=40 if quick else min(c.n_iters, 1000),
            seed=config.ale.seed, name=cname, voxel_thresh=c.voxel_thresh, min_cluster_mm3=c.min_cluster_mm3,
            n_cores=config.ale.n_cores))
    if checks:
        cc_sub = pd.concat(checks, ignore_index=True)
        show_markdown(f"**Subtraction cross-check: {int(cc_sub['passed'].sum())} of {len(cc_sub)} checks passed.**")
        show_table(cc_sub)
        cc_sub.to_csv(out / "contrast_crosscheck.csv", index=False)
# <!-- ===== end of ale-analyses section ===== -->

# %% [markdown]
# <!-- ===== ale-scale section: power analysis ===== -->
# ## Power: could ALE have found a convergence with this design?
# Simulated meta-analyses (`painmeta.ale.power`): for each number of experiments k, the design's sample sizes and foci
# counts (its experiments cycled), a true effect at one location in a stated share of experiments (Gaussian jitter per
# axis), uniform random foci for everything else, and cluster-level FWE by cluster size at the dataset's
# cluster-forming threshold (the usual ALE inference, whatever a model above reports as primary). The null of each k is computed once and reused by all its simulations. Power is the
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
    if scenario.design == "fixed":
        show_markdown("No design could be taken from the data (no model ran, or `ale.power.model` was skipped): "
                      "the simulations use a fixed design of "
                      f"{scenario.subjects[0]} subjects and {scenario.foci[0]} foci per experiment.")
    show_table(presult.table[["n_experiments", "effect_share", "n_effect", "power", "ci_low", "ci_high",
                              "fwe_elsewhere", "total_subjects", "total_foci", "min_significant_cluster_mm3"]].round(3))
    publish(ale_power.power_figure(presult.table, len(scenario.subjects) if scenario.design != "fixed" else None),
            out / "ale_power")
    show_markdown(ale_power.compare_with_eickhoff(presult.table))
# <!-- ===== end of ale-scale section ===== -->
