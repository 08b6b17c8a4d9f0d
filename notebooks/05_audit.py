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
# Every number the review reports (`reported.yaml`) beside the value recomputed here from `data/raw/` by code in `src/`,
# with a status — **match**, **mismatch**, or **not reproducible (inputs not public)** — and a one-line reason.
# For proportions and heterogeneity, the *engine check* runs the same pooling on the counts the review's own numbers imply:
# it separates "our statistics differ" (an engine problem) from "our inputs differ" (a data problem).
# Then the review's internal inconsistencies, each computed from the data. Logic: `painmeta.audit`.

# %% tags=["parameters"]
dataset = "cipn"
config_overrides = {}
quick = False

# %%
import pandas as pd
from IPython.display import Markdown, display

from painmeta import audit
from painmeta.display import show_table
from painmeta.notebooks import setup_notebook

setup_notebook(200)
ctx = audit.build_context(dataset, config_overrides or None)
has_reported = (ctx.paths.raw / "reported.yaml").is_file()

# %%
if has_reported:
    table = audit.audit(ctx)
    ctx.paths.processed.mkdir(parents=True, exist_ok=True)
    table.to_csv(ctx.paths.processed / "audit.csv", index=False)
    counts = audit.status_counts(table)
    display(counts)
    n_match = int(counts.set_index("status").loc["match", "n"])
    display(Markdown(f"**{n_match} of {len(table)}** reported numbers are reproduced from public data; "
                     f"the rest are listed below with the reason."))
else:
    table = None
    display(Markdown(f"Dataset `{dataset}` is not a published review: it has no `reported.yaml`, so there is nothing to audit."))

# %% [markdown]
# ## Every reported number

# %%
if table is not None:
    # painmeta.display escapes every cell (a Styler alone does not).
    show_table(table, colours={"status": {s: "#d9f0d3" if s == "match" else "#fddbc7" if s == "mismatch"
                                          else "#eeeeee" for s in table["status"].unique()}})

# %% [markdown]
# ## The review's internal inconsistencies
# Computed from the tables, not asserted: each row shows the arithmetic.

# %%
if table is not None:
    inc = audit.inconsistencies(ctx)
    inc.to_csv(ctx.paths.processed / "audit_inconsistencies.csv", index=False)
    show_table(inc, empty="No internal inconsistency found.")

# %% [markdown]
# ## What the missing inputs prevent
# Numbers marked *not reproducible* need inputs that are not public: the review's Tables 1–2, its ROI matrices
# (Figures 2–3), its risk-of-bias judgements (Figure 7), its screening counts (Figure 1), its supplement, and the
# coordinates of Liu 2022 and Smith 2021 (and the contrast assignment of Boland 2014's peaks). With those, the same
# pipeline would recompute every row above; the engine checks show that the statistics themselves already reproduce.
