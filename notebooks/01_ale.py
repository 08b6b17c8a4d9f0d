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
# largest ALE value, the largest cluster and the largest cluster mass. The primary engine is NiMARE
# (`painmeta.ale.nimare_engine`); every model is re-run by the independent in-house engine (`painmeta.ale.inhouse`)
# and the two are compared (`painmeta.ale.crosscheck`). Models with too few experiments are skipped with the reason.

# %% tags=["parameters"]
dataset = "cipn"
config_overrides = {}
quick = False          # tests: few Monte Carlo iterations
engine = "nimare"      # primary engine; the other one cross-checks

# %%
from html import escape

import pandas as pd
import yaml
from IPython.display import HTML, Markdown, display

from painmeta import extraction
from painmeta.ale import figures, models
from painmeta.ale.inference import METHOD_SHORT
from painmeta.notebooks import setup_notebook
from painmeta.plotting import publish, save_figure

setup_notebook()
ext, config, paths = extraction.extract(dataset, config_overrides or None)
out = paths.stage("ale")
# Progress bars stay in the terminal and JupyterLab; a rendered page never shows them.
analysis = models.analyze(ext.experiments, ext.foci, config.ale, engine=engine, crosscheck=True,
                          n_iters=50 if quick else None, progress=False)
models.save_analysis(analysis, out)
ran = [m for m in analysis.models if not m.skipped]
INFERENCE_TEXT = {
    "cluster_size": "cluster-level FWE on cluster size",
    "cluster_mass": "cluster-level FWE on cluster mass",
    "voxel": "voxel-level FWE",
}
display(Markdown(
    f"Settings: cluster-forming threshold p < {config.ale.voxel_thresh:g} (uncorrected), FWE α = "
    f"{config.ale.cluster_alpha:g}, Monte Carlo iterations "
    f"{'50 (quick run)' if quick else 'per model (below)'}, seed {config.ale.seed}."
))

# %% [markdown]
# ## Models
# Every model in `dataset.yaml`, whether it ran and why not. *Experiments* counts the independent samples that
# entered: contrasts that share participants (the same `subject_group` in `experiments.csv`) are pooled into one
# experiment first (Turkeltaub et al. 2012), and *pooled* lists them. *Inference* is the FWE correction that decides
# which clusters survive; all three corrections are computed from the same Monte Carlo null and written for every model.

# %%
show = ["model", "description", "status", "reason", "n_experiments", "n_contrasts", "pooled", "n_foci", "n_subjects",
        "n_iters", "inference", "focus_placement", "n_clusters_significant", "warnings", "excluded"]
display(analysis.summary[[c for c in show if c in analysis.summary.columns]])

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
    display(Markdown("No model ran (see the table above), so there is no inference to report."))
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
    display(pd.DataFrame(rows))

# %% [markdown]
# ## What the kernel alone determines
# FWHM and the peak value of one isolated focus (the largest ALE an experiment can contribute alone) for each sample
# size entering ALE.

# %%
ale_exps = ext.experiments[ext.experiments["in_ale"]]
kernels = figures.kernel_table(ale_exps["n_ale"].dropna().astype(int).tolist() or [20])
display(kernels)

# %% [markdown]
# ## What is public
# What the dataset provides for ALE, and the ALE numbers its source reports (when the dataset has a `reported.yaml`;
# the audit stage recomputes each of them).

# %%
public_foci = int(ext.foci["experiment_id"].isin(ale_exps["experiment_id"]).sum())
lines = [f"- {len(ale_exps)} experiment(s) from {ale_exps['study_id'].nunique()} stud(ies) have coordinates "
         f"({public_foci} foci)."]
for r in ale_exps[ale_exps["evidence"] == "unverified"].itertuples():
    lines.append(f"- `{escape(r.experiment_id)}`: {escape(str(r.evidence_note))}")
no_coords = ext.experiments[ext.experiments["n_foci"] == 0]
if len(no_coords):
    lines.append(f"- No coordinates for {len(no_coords)} contrast(s): "
                 + ", ".join(escape(e) for e in no_coords["experiment_id"]))
display(HTML("<ul>" + "".join(f"<li>{line[2:]}</li>" for line in lines) + "</ul>"))
reported_file = paths.raw / "reported.yaml"
reported = models.reported_ale_items(reported_file) if reported_file.is_file() else pd.DataFrame()
if len(reported):
    display(reported)

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
    display(Markdown("No model ran, so there are no clusters to report (see the models table for why)."))
for m in ran:
    res = analysis.primary[m.name]
    maps = res.maps
    display(HTML(f"<h3>Model {escape(m.name)}</h3><p>{escape(m.description)}</p>"))
    notes = [INFERENCE_TEXT[res.inference].capitalize() + f" decides survival (α = {res.cluster_alpha:g})",
             f"cluster-forming ALE {res.ale_threshold:.5f}",
             f"{res.engine} engine, focus placement {res.focus_placement}"]
    display(HTML("<p>" + escape("; ".join(notes)) + ".</p>"))
    if res.notes:
        display(HTML("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in res.notes) + "</ul>"))
    cl = res.clusters
    if len(cl):
        display(models.cluster_display_table(cl))
    else:
        display(HTML(f"<p><strong>No cluster survived {escape(INFERENCE_TEXT[res.inference])}.</strong> "
                     f"{len(res.clusters_all)} cluster(s) exceeded the cluster-forming threshold; "
                     "every one of them is in clusters_all.csv.</p>"))
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
    if m is ran[0]:  # the report index shows the first model's maps under these names
        save_figure(montage, out / "ale_coronal_montage")
        save_figure(glass, out / "ale_glass_brain")
    publish(montage, out / "figures" / f"{m.name}_coronal_montage")
    publish(glass, out / "figures" / f"{m.name}_glass_brain")
    display(HTML("<p>Interactive viewer (unthresholded ALE; click to move the cursor):</p>"))
    display(HTML(figures.viewer_html(figures.interactive_view(maps["ale"]))))

# %% [markdown]
# ## Descriptive map when no model runs
# With too few experiments there is no inference, but a map can still show where the kernels of the public foci put
# their probability mass (descriptive only).

# %%
if ran:
    display(Markdown("Models ran, so their maps are shown above instead."))
elif len(foci_in):
    sizes = ale_exps.set_index("experiment_id")["n_ale"].astype(int).to_dict()
    img = figures.descriptive_ale(foci_in[["experiment_id", "x", "y", "z"]], sizes)
    label = f"{config.name}: descriptive ALE of the public foci (not an inferential map)"
    colour_by = "experiment_id" if foci_in["experiment_id"].nunique() <= 8 else "study_id"
    publish(figures.coronal_montage(img, foci_in, title=label, colour_by=colour_by), out / "ale_coronal_montage")
    publish(figures.glass_brain(img, foci_in, title=label), out / "ale_glass_brain")
else:
    display(Markdown("No public foci, so there is no map to show."))

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
if len(analysis.placement):
    display(analysis.placement)
else:
    display(Markdown("No model ran, so there is nothing to compare."))

# %% [markdown]
# ## Cross-check: NiMARE vs the in-house engine
# Same foci, same random foci draws: ALE maps must agree within 1e-6 (float32 sums), p-maps and clusters identically,
# every Monte Carlo iteration identically, and so the voxel-level and cluster-mass FWE maps, their thresholds and the
# surviving voxels. Independent random streams: a two-sample KS test that does not reject and 95th percentiles within
# sampling error. Each row states its tolerance and why.

# %%
if len(analysis.crosscheck):
    cc = analysis.crosscheck
    display(Markdown(f"**{int(cc['passed'].sum())} of {len(cc)} checks passed.**"))
    display(cc)
else:
    display(Markdown("No model ran, so nothing to cross-check here; the engines are cross-checked on synthetic data "
                     "and on the `nidm_pain` positive control in the test suite."))

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
    display(Markdown("No null distribution: no model ran."))

# %% [markdown]
# ## Contribution analysis
# For each surviving cluster: jackknife (share of the cluster's ALE lost without each experiment) and focus counts.

# %%
if len(analysis.contributions):
    display(analysis.contributions.pivot_table(index=["model", "kind", "experiment_id"], columns="cluster_id",
                                               values="value").round(4))
else:
    display(Markdown("No surviving cluster, so no contribution analysis."))
