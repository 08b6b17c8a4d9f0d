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
# # Stage 5 · Reproduction audit
#
# Every number the paper reports (`reported.yaml`) beside the value recomputed here from `data/raw/` by code in
# `src/`, with a status and a one-line reason:
#
# - **match**: recomputed from the data and equal at the printed precision (the only status counted as reproduced);
# - **consistent by construction**: equal only because it was copied into the config or tables, is a software
#   constant, or follows from a formula of copied inputs (it checks the transcription, not a result);
# - **mismatch**: recomputed and different; **not reproducible**: the inputs are not public;
#   **not compared**: listed, not judged (below a stated size floor, or not run here).
#
# Published cluster tables are compared cluster by cluster with this pipeline's clusters of the same model, published
# maps voxel by voxel; ALE values come from the ALE stage's outputs. Sensitivity models declared by the dataset show
# whether a doubtful input matters. Logic: `painmeta.audit`, `painmeta.reproduction`.

# %% tags=["parameters"]
dataset = "cipn"
config_overrides = {}
quick = False

# %%
import pandas as pd
from IPython.display import Markdown, display

from painmeta import audit, reproduction
from painmeta.display import literal, show_markdown, show_table  # escaped tables and Markdown from data
from painmeta.notebooks import setup_notebook
from painmeta.plotting import publish

setup_notebook(200)
ctx = audit.build_context(dataset, config_overrides or None)
has_reported = audit.has_reported(ctx)
out = ctx.paths.stage("audit")
STATUS_COLOURS = {"status": {audit.MATCH: "#d9f0d3", audit.BY_CONSTRUCTION: "#e7e1ef", audit.MISMATCH: "#fddbc7",
                             audit.NOT_REPRODUCIBLE: "#eeeeee", audit.NOT_COMPARED: "#f7f7f7"}}

# %%
table = clusters = fsn = None
if has_reported:
    reported = audit.load_reported_all(ctx.paths.raw / "reported.yaml")
    table = audit.audit(ctx)
    clusters = audit.cluster_comparison(ctx)
    fsn = audit.fsn_comparison(ctx)
    ctx.paths.processed.mkdir(parents=True, exist_ok=True)
    table.to_csv(ctx.paths.processed / "audit.csv", index=False)
    clusters.to_csv(out / "cluster_comparison.csv", index=False)
    (out / "fsn_comparison.csv").unlink(missing_ok=True)  # none left from a previous build
    if len(fsn):
        fsn.to_csv(out / "fsn_comparison.csv", index=False)
    show_markdown(f"Paper: {literal(reported['paper'])}")
    display(Markdown(audit.headline(table, clusters, fsn)))
    show_table(audit.status_counts(table), caption="Reported numbers by status")
else:
    display(Markdown("This dataset has no `reported.yaml`: there are no published numbers to audit."))

# %% [markdown]
# ## Every reported number

# %%
if table is not None and len(table):
    show_table(table, colours=STATUS_COLOURS)
elif table is not None:
    display(Markdown("`reported.yaml` lists no scalar numbers, only tables or maps (below)."))

# %% [markdown]
# ## Published clusters beside ours
# For each published cluster: our cluster holding its peak (or the nearest), the size ratio, the distance between
# peaks, the ALE at the peaks, and the label of the published peak in our atlas.

# %%
if clusters is not None and len(clusters):
    display(Markdown(
        f"Tolerances: a published cluster **matches** when one of ours covers the same region (its peak inside our "
        f"cluster, or within {reproduction.REGION_MM:g} mm of it: both analyses use the same 2 mm grid) and our "
        f"volume is within ±{100 * reproduction.SIZE_TOLERANCE:.0f}% of the published one (a border shift of less "
        f"than one voxel on clusters of 1,000–10,000 mm³). Peak distances and ALE ratios are measured, not judged: "
        f"a cluster with two near-equal local maxima can peak on either, and the map comparison below explains "
        f"the ALE ratio. Clusters below a table's size floor are located but not judged."))
    shown = reproduction.cluster_display(clusters)
    for tid, part in shown.groupby("table", sort=False):
        show_table(part.drop(columns=["table"]), caption=f"Table {tid}", colours=STATUS_COLOURS)
elif has_reported:
    display(Markdown("No published cluster table for this dataset."))

# %% [markdown]
# ## Published fail-safe N beside ours
# The ALE stage computes fail-safe N (Acar et al. 2018) at each published peak from the same refits as our own
# clusters' (`ale.fsn` in `dataset.yaml`), counted as the paper counted it. Both are means over random file
# drawers, so they are compared as two estimates: a two-sample z test of the means with their standard errors
# (the paper's from its 95% CI).

# %%
if fsn is not None and len(fsn):
    display(Markdown(
        f"Rule: **match** when |z| < {reproduction.FSN_Z:.2f} (two-sided 5%); whether our mean lies inside the "
        f"published 95% CI is shown in the reason but not used as the rule, because our mean has its own sampling "
        f"error (for identical procedures it falls outside their CI about one time in six)."))
    show_table(reproduction.fsn_display(fsn), caption="Fail-safe N at the published peaks",
               colours=STATUS_COLOURS)
elif has_reported:
    display(Markdown("No published fail-safe N for this dataset."))

# %% [markdown]
# ## Published map beside ours
# Voxel by voxel over the brain mask, in world space (a published map may be stored x-flipped).

# %%
maps = audit.map_comparisons(ctx) if has_reported else []
if not maps:
    display(Markdown("No published map for this dataset."))
for m in maps:
    if "stats" not in m:
        show_markdown(f"**{literal(m['id'])}**: not compared ({literal(m['reason'])}).")
        continue
    st = m["stats"]
    rows = pd.DataFrame([
        ("voxels compared", st["n_voxels"]), ("Pearson r", round(st["r"], 4)),
        ("slope (published on ours, through 0)", round(st["slope"], 4)),
        ("largest |ours − published|", round(st["max_abs_diff"], 5)),
        ("mean (ours − published)", f"{st['mean_diff']:.2e}"),
        ("ALE maximum: ours / published", f"{st['max_ours']:.4f} / {st['max_published']:.4f}"),
        ("where: ours / published (MNI)", f"{st['argmax_ours']} / {st['argmax_published']}"),
        ("ours most above the published map: difference, where (MNI)", f"{st['max_diff']:+.4f} at {st['argmax_diff']}"),
        ("ours most below the published map: difference, where (MNI)", f"{st['min_diff']:+.4f} at {st['argmin_diff']}"),
        ("ratio ours / published where published > 0.01: 5th, 50th, 95th percentile",
         f"{st['ratio_p05']:.3f}, {st['ratio_p50']:.3f}, {st['ratio_p95']:.3f}"),
    ], columns=["measure", "value"])
    if "emulated_stats" in m:
        em = m["emulated_stats"]
        rows = pd.concat([rows, pd.DataFrame([
            ("with NiMARE 0.0.9's focus placement: Pearson r", f"{em['r']:.9f}"),
            ("with NiMARE 0.0.9's focus placement: largest |difference|", f"{em['max_abs_diff']:.2e}"),
            ("with NiMARE 0.0.9's focus placement: ALE maximum ours / published",
             f"{em['max_ours']:.6f} / {em['max_published']:.6f}"),
        ], columns=["measure", "value"])], ignore_index=True)
    show_table(rows, caption=f"{m['what']} (model {m['model']}; file {m['file']})")
    if "emulated_stats" in m:
        display(Markdown(
            "The last rows rerun this project's engine with every focus placed on the voxel NiMARE 0.0.9 used "
            "(truncation on its x-flipped grid; `painmeta.reproduction.nimare009_placement`): if they agree to float "
            "precision, the map differences above come from focus placement alone, not from the method. "
            "The dataset's notes below say which placement is correct."))
    pd.DataFrame({k: [v] for k, v in st.items() if k not in ("x", "y")}).to_csv(out / f"map_{m['id']}.csv",
                                                                                  index=False)
    publish(reproduction.map_comparison_figure(m["ours"], m["published"], st,
                                               title=f"{ctx.config.name}: model {m['model']} vs the published map"),
            out / f"map_{m['id']}")

# %% [markdown]
# ## ALE models run here
# Per model: inputs, ALE range, minimum voxel p, significant clusters, and the largest supra-threshold cluster with its
# FWE p, which shows how far a null result is from significance.

# %%
overview = reproduction.model_overview(ctx.ale)
if len(overview):
    overview.to_csv(out / "models_overview.csv", index=False)
    show_table(overview)
else:
    display(Markdown("No ALE model ran for this dataset."))
if ctx.ale_models is not None and (ctx.ale_models["status"] != "run").any():
    skipped = ctx.ale_models.loc[ctx.ale_models["status"] != "run", ["model", "description", "status", "reason"]]
    show_table(skipped, caption="Models that did not run, with the ALE stage's reason")

# %% [markdown]
# ## Sensitivity models
# The dataset's declared sensitivity models (`extra.sensitivity` in `dataset.yaml`): a model rerun with one doubtful
# input changed, with the in-house engine and the same seed, beside the model as configured.

# %%
specs = (ctx.config.extra or {}).get("sensitivity") or []
if specs:
    sens = reproduction.run_sensitivities(ctx.ext, ctx.config, n_iters=200 if quick else None)
    for s in sens:
        show_markdown(f"**{literal(s.name)}** (model {literal(s.model)}): {literal(s.why)}")
    sens_table = reproduction.sensitivity_table(sens)
    sens_table.to_csv(out / "sensitivity.csv", index=False)
    show_table(sens_table)
else:
    display(Markdown("This dataset declares no sensitivity model."))

# %% [markdown]
# ## Internal inconsistencies of the paper
# Computed from the tables, not asserted: each row shows the arithmetic. A contradiction that can only be read in
# the paper (not computed) comes from an item's `inconsistency` in `reported.yaml`, and its evidence says so.

# %%
inc = audit.inconsistencies(ctx) if has_reported else pd.DataFrame()
if len(inc):
    inc.to_csv(ctx.paths.processed / "audit_inconsistencies.csv", index=False)
    show_table(inc)
else:
    display(Markdown("None found in the numbers this dataset records."))

# %% [markdown]
# ## What is missing, and the dataset's notes

# %%
if ctx.config.missing:
    show_markdown(ctx.config.missing)
notes = ctx.paths.raw / "NOTES.md"
if notes.is_file():
    show_markdown(notes.read_text(encoding="utf-8"))
