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
# # Stage 3 · Proportion meta-analysis of ROI involvement
#
# For each network, events = entries of the ROI matrix (experiments, or studies) implicating it and n = all entries.
# Pooling follows R's `meta::metaprop` defaults: Clopper–Pearson 95% CI per network; a random-intercept
# logistic GLMM fitted by maximum likelihood (7-point adaptive Gauss–Hermite quadrature) with a Wald CI on the logit scale;
# the common-effect logistic estimate; heterogeneity by the Wald-type Q (df = k − 1) with I² and τ², and the
# likelihood-ratio Q. Directional subgroups count events of one direction over the same n, with the test for subgroup
# differences. The engine (`painmeta.proportions`) is checked against R's metafor to 1e-4 (`tests/reference/`).

# %% tags=["parameters"]
dataset = "cipn"
config_overrides = {}
quick = False

# %%
import pandas as pd

from painmeta import extraction, forest, proportions, roi
from painmeta.display import literal, show_markdown, show_table
from painmeta.notebooks import setup_notebook
from painmeta.plotting import DIRECTION_COLOURS, publish

setup_notebook()
ext, config, paths = extraction.extract(dataset, config_overrides or None)
result = roi.synthesise(ext, config)
analyses = proportions.analyse_levels(result.counts, config)
labels = {code: config.direction_label(code) for code in config.proportions.subgroups}
written = proportions.write_tables(analyses, paths.processed, labels)
out = paths.stage("proportions")
colours = {labels[c]: DIRECTION_COLOURS[c] for c in labels}
# A dataset without region-level findings (a coordinate database, an ALE-only reproduction) has nothing to pool:
# one line says so instead of 0/0 tables and empty figures.
nothing = proportions.nothing_to_pool(result.counts)
SEE_ABOVE = "Nothing to pool (see the first section)."  # the reason is said once, at the top
# Proportions and their intervals in three decimals; other numbers as painmeta.display formats them.
P3 = {c: "{:.3f}" for c in ("pooled", "lower", "upper", "common", "proportion", "ci_lower", "ci_upper",
                            "reported_proportion", "reported_ci_lower", "reported_ci_upper")}
HEADERS = {"k": "Networks (k)", "total": "n", "pooled": "Pooled (random)", "common": "Common effect",
           "lower": "CI lower", "upper": "CI upper", "Q_lrt": "Q (LRT)", "Q_lrt_p": "p (Q LRT)"}

# %% [markdown]
# ## Counts entering the pooling
# From the ROI matrices of stage 2 (every count traces back to findings there).

# %%
if nothing:
    show_markdown(literal(nothing))
else:
    show_table(roi.counts_wide(result.counts), empty="No counts: the ROI matrices are empty.")

# %% [markdown]
# ## Pooled estimates

# %%
if nothing:
    show_markdown(SEE_ABOVE)
else:
    summary = pd.concat([a.summary(labels) if a.overall is not None else
                         pd.DataFrame([{"level": a.level, "note": a.skipped}]) for a in analyses.values()])
    show_table(summary, formats=P3, headers=HEADERS, empty="Nothing was pooled.")

# %% [markdown]
# ## Forest plots
# One per level: all networks (overall), then the directional subgroups with the test for subgroup differences.

# %%
if nothing:
    show_markdown(SEE_ABOVE)
for level, la in ({} if nothing else analyses).items():
    if la.overall is None:
        show_markdown(f"**{level} level:** not pooled: {literal(la.skipped)}.")
        continue
    unit = "experiments" if level == "experiment" else "studies"
    fig = forest.forest_plot(la.overall, title=f"{config.name}: {level}-level ROI involvement ({unit})",
                             label_header="Network")
    publish(fig, out / f"forest_{level}_overall")
    if la.subgroups is not None:
        renamed = proportions.MetapropSubgroups(
            groups={labels.get(k, k): v for k, v in la.subgroups.groups.items()},
            test_random=la.subgroups.test_random, test_common=la.subgroups.test_common, notes=la.subgroups.notes)
        fig = forest.forest_plot(renamed, title=f"{config.name}: {level} level by direction", label_header="Network",
                                 group_colours=colours)
        publish(fig, out / f"forest_{level}_direction")

# %% [markdown]
# ## Per-network rows

# %%
for level, la in analyses.items():
    if la.overall is not None:
        show_table(la.overall.to_frame(), formats=P3, headers=HEADERS, caption=f"{level.capitalize()} level")
if nothing:
    show_markdown(SEE_ABOVE)
elif all(la.overall is None for la in analyses.values()):
    show_markdown("No per-network rows: nothing was pooled (see above).")

# %% [markdown]
# ## The engine on the counts the reported numbers imply
# Where the source's inputs are known (the counts its reported proportions and intervals imply,
# `review_implied_counts.csv`), the same engine must reproduce its statistics. This separates *engine* agreement from
# *data* agreement.

# %%
implied_file = paths.raw / "review_implied_counts.csv"
if implied_file.is_file():
    implied = roi.implied_review_counts(dataset)
    rows = []
    for (level, subgroup), grp in implied[implied["network"] != "all"].groupby(["level", "subgroup"]):
        res = proportions.metaprop(grp["events"].astype(int), grp["n"].astype(int), labels=grp["network"].tolist())
        rows.append({"level": level, "subgroup": subgroup, "events": f"{int(grp['events'].sum())}/{int(grp['n'].sum())}",
                     "pooled": res.random.proportion, "lower": res.random.lower, "upper": res.random.upper,
                     "Q": res.heterogeneity.Q, "Q_p": res.heterogeneity.p, "I2_percent": res.heterogeneity.I2})
    show_table(pd.DataFrame(rows), formats=P3, headers=HEADERS)
    show_table(implied, columns=["item_id", "level", "subgroup", "network", "events", "n", "reported_proportion",
                                 "reported_ci_lower", "reported_ci_upper", "reproduces"], formats=P3)
    show_markdown("The comparison with every reported number is in the audit stage.")
else:
    show_markdown(f"Dataset {literal(dataset)} has no `review_implied_counts.csv`: nothing to compare with.")
