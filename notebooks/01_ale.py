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
engine = "nimare"      # primary engine; the other one cross-checks

# %%
import json

import pandas as pd
import yaml
from IPython.display import Markdown, display

from painmeta import extraction
from painmeta.ale import figures, models
from painmeta.notebooks import setup_notebook
from painmeta.plotting import publish

setup_notebook()
ext, config, paths = extraction.extract(dataset, config_overrides or None)
out = paths.stage("ale")
analysis = models.analyze(ext.experiments, ext.foci, config.ale, engine=engine, crosscheck=True,
                          n_iters=50 if quick else None, progress=not quick)
display(Markdown(f"Monte Carlo iterations: {'50 (quick run)' if quick else 'per model, from dataset.yaml'}; "
                 f"seed {config.ale.seed}."))

# %% [markdown]
# ## Models
# Every model in `dataset.yaml`, whether it ran, and why not.

# %%
display(analysis.summary)
for m in analysis.models:
    if len(getattr(m, "excluded", [])):
        display(Markdown(f"**{m.name}**: experiments not entering the model"))
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
    display(Markdown("\n".join(lines)))

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
    lines.append(f"- `{r.experiment_id}`: {r.evidence_note}")
no_coords = ext.experiments[(ext.experiments["n_foci"] == 0)]
if len(no_coords):
    lines.append(f"- No public coordinates for {len(no_coords)} contrast(s): " + ", ".join(no_coords["experiment_id"]))
lines.append("- Reproduced here: the kernel values above, and every model that has enough public experiments. "
             "Not reproducible: any statistic that depends on the unpublished foci (minimum p, cluster-size "
             "threshold, ALE range of the review's models).")
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## Clusters
# Clusters surviving cluster-level FWE correction (an empty table is a result: no cluster survived).

# %%
ran = [m.name for m in analysis.models if not m.skipped]
if not ran:
    display(Markdown("No model ran (see the table above), so there is no cluster to report."))
for name in ran:
    res = analysis.results[engine][name]
    cl = res.clusters
    display(Markdown(f"**{name}** — cluster-forming ALE {res.ale_threshold:.5f}; minimum significant cluster "
                     f"{res.cluster_size_threshold} voxels"))
    display(cl if len(cl) else Markdown("No cluster survived cluster-level FWE correction."))
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
    display(Markdown(f"**{int(cc['passed'].sum())} of {len(cc)} checks passed.**"))
    display(cc)
    cc.to_csv(out / "crosscheck.csv", index=False)
else:
    display(Markdown("No model ran, so nothing to cross-check here; the engines are cross-checked on synthetic data "
                     "and on the `nidm_pain` positive control in the test suite."))

# %% [markdown]
# ## Monte Carlo null distributions

# %%
if len(analysis.nulls):
    publish(figures.null_distributions(analysis.nulls, alpha=config.ale.cluster_alpha), out / "ale_null_distributions")
    analysis.nulls.to_csv(out / "null.csv", index=False)
else:
    display(Markdown("No null distribution: no model ran."))

# %% [markdown]
# ## Contribution analysis
# For each significant cluster: jackknife (cluster ALE without each experiment) and focus counts.

# %%
if len(analysis.contributions):
    display(analysis.contributions.pivot_table(index=["model", "kind", "experiment_id"], columns="cluster_id",
                                               values="value").round(4))
else:
    display(Markdown("No significant cluster, so no contribution analysis."))
analysis.summary.to_csv(out / "models.csv", index=False)
