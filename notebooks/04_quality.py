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
# # Stage 4 · Risk of bias (ROBINS-I) and PRISMA 2020 flow
#
# ROBINS-I judgements from `data/raw/<dataset>/robins_i.csv`, drawn in robvis's conventions (domain names,
# colours, symbols; colour-blind palette alongside), with **not extracted** as its own grey level for judgements
# the review made but did not publish. The PRISMA 2020 flow comes from `prisma.yaml`; unknown counts are shown as
# unknown and the arithmetic is checked (flagged, never corrected). Logic: `painmeta.quality`, `painmeta.prisma`.

# %% tags=["parameters"]
dataset = "cipn"
config_overrides = {}
quick = False

# %%
import pandas as pd
from IPython.display import Markdown, display

from painmeta import prisma, quality
from painmeta.notebooks import setup_notebook
from painmeta.config import load_config
from painmeta.extraction import extract
from painmeta.plotting import publish

setup_notebook(160)
config, paths = load_config(dataset, config_overrides or None)
out = paths.stage("quality")
rob_file = paths.raw / "robins_i.csv"
prisma_file = paths.raw / "prisma.yaml"

# %% [markdown]
# ## ROBINS-I

# %%
if rob_file.is_file():
    rob = quality.load_robins_i(rob_file)
    display(quality.wide_table(rob))
    fig = quality.traffic_light_plot(rob, title=f"ROBINS-I: {config.name}")
    publish(fig, out / "robins_traffic_light")
    fig_cb = quality.traffic_light_plot(rob, colour_blind=True, title=f"ROBINS-I (colour-blind palette): {config.name}")
    publish(fig_cb, out / "robins_traffic_light_colourblind")
else:
    rob = None
    display(Markdown(f"No `robins_i.csv` for dataset `{dataset}`: risk of bias was not assessed for it."))

# %% [markdown]
# Summary bars: share of studies per judgement and domain, unweighted and weighted by the number of patients.

# %%
if rob is not None:
    display(quality.summary_table(rob))
    publish(quality.summary_plot(rob, title="ROBINS-I summary (unweighted)"), out / "robins_summary")
    ext, _, _ = extract(dataset)
    weights = ext.studies.set_index("study_id")["n_patients"].dropna().astype(float)
    missing_w = sorted(set(rob["study_id"]) - set(weights.index))
    if missing_w:
        display(Markdown("Studies without a sample size get no weight in the weighted bars: " + ", ".join(missing_w)))
    weights = weights.reindex(sorted(set(rob["study_id"]))).fillna(0.0)
    publish(quality.summary_plot(rob, weighted=True, weights=weights, weight_label="patients",
                                     title="ROBINS-I summary (weighted by patients)"), out / "robins_summary_weighted")

# %% [markdown]
# ## PRISMA 2020 flow

# %%
if prisma_file.is_file():
    flow = prisma.load_prisma(prisma_file)
    checks = prisma.check_arithmetic(flow)
    display(checks[["check", "relation", "status", "detail"]])
    fig = prisma.flow_diagram(flow, checks)
    publish(fig, out / "prisma_flow")
    flagged = checks[checks["status"] == "flag"]
    if len(flagged):
        display(Markdown("**Arithmetic flags** (shown, not corrected):\n\n" +
                         "\n".join(f"- {r.description}: {r.relation}" for r in flagged.itertuples())))
else:
    display(Markdown(f"No `prisma.yaml` for dataset `{dataset}`: it is not a systematic-review dataset."))
