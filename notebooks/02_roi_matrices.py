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
# # Stage 2 · ROI synthesis: networks, matrices and counts
#
# Every region-level finding (`findings.csv`) is mapped into the dataset's predefined networks (`networks` in
# `dataset.yaml`) by an explicit, versioned lookup table (`roi_lookup`), cross-checked against an atlas where the
# finding has a coordinate. Two matrices follow: one row per contrast ("experiment level", direction and modality kept)
# and one row per publication (contrasts merged, "study level"). Seed regions of seed-based designs are recorded but never
# counted as targets. Contrasts without a public region-level finding are listed as *not assessable*, never counted as
# "no involvement". The counts at the end are what the proportion meta-analysis (stage 3) pools.
#
# All logic lives in `painmeta.roi`; this notebook only shows results.

# %% tags=["parameters"]
# Papermill parameters (the Makefile passes DATASET); everything else comes from data/raw/<dataset>/dataset.yaml
dataset = "cipn"
config_overrides = {}
quick = False  # unused here (no Monte Carlo in this stage); accepted so that every stage takes the same parameters

# %%
import pandas as pd

from painmeta import extraction, roi
from painmeta.display import literal, show_markdown, show_table
from painmeta.notebooks import setup_notebook
from painmeta.paths import project_root
from painmeta.plotting import publish

setup_notebook()


def show(df, empty="Nothing to show.", **kwargs):
    """Display a table for people (painmeta.display), or a sentence when it is empty."""
    show_table(df, empty=empty, **kwargs)


# Extraction is cheap and file-free: recompute it here rather than depend on stage 0's files.
ext, config, paths = extraction.extract(dataset, config_overrides or None)
result = roi.synthesise(ext, config)
implied = roi.implied_review_counts(dataset)
# Tables now; the two figures are drawn (and saved as PNG, SVG and PDF) where they are shown below.
written = roi.write_outputs(result, config, paths, figures=False, implied=implied)
fig_dir = paths.stage("roi")
has_findings = len(result.findings) > 0
show_markdown(f"**{literal(config.title)}**\n\n"
              f"{len(ext.findings)} region-level finding(s) in {ext.experiments['experiment_id'].nunique()} contrast(s) "
              f"of {len(ext.studies)} stud(ies); lookup {literal(config.roi_lookup)} version "
              f"**{literal(result.lookup.label)}**.")
if not has_findings:
    show_markdown(
        "**This dataset has no region-level findings**, so there is nothing to map into networks: both matrices are "
        "empty and every contrast is listed below as not assessable, with the reason. (Peak coordinates alone are "
        "not region-level findings; they enter the ALE stage.)")

# %% [markdown]
# ## The lookup: reported region → network (versioned rules)
#
# The networks are the dataset's (`networks` in `dataset.yaml`); each rule of the lookup table says which reported
# region names belong to which network, and why (its `rationale`). Rules are tried in `order`; the **first match
# wins**. `none` is a decision (the structure lies outside the networks), not a gap; a region that no rule matches is
# reported as `unmapped`. Every rule's `examples` must be caught by that rule and no earlier one, which is checked whenever the
# table is loaded. `alternative` gives the network under another defensible reading (used in the sensitivity
# analysis below).

# %%
show(result.lookup.table())

# %% [markdown]
# For the atlas cross-check, each AAL label is tied to one of these rules (`data/lookups/aal_network_v1.csv`), so the
# atlas and the lookup share the same category decisions:

# %%
aal = roi.load_atlas_lookup(project_root() / roi.AAL_LOOKUP, result.lookup)
aal_summary = (aal.reset_index().groupby(["network", "region_rule_id"])["aal_label"]
               .agg(lambda s: ", ".join(s)).rename("AAL labels").reset_index())
show(aal_summary)

# %% [markdown]
# ## Mapped findings
#
# One row per finding: the rule that decided (`rule_id`), the network, and its `role` — `target` (counts),
# `outside` (network `none`), `seed` (the experiment's seed region: never a target) or `unmapped` (no rule; add one).
# `matrix_direction` is the finding's direction as the matrices code it (`roi.direction_map` in `dataset.yaml`).

# %%
cols = ["finding_id", "experiment_id", "region", "hemisphere", "direction", "matrix_direction", "rule_id", "network",
        "role", "seed_region", "focus_id", "evidence", "findings_line", "source"]
show(result.findings[cols], "No region-level finding in this dataset.")
if has_findings:
    roles = result.findings["role"].value_counts().rename_axis("role").rename("findings").reset_index()
    show(roles)
if len(result.unmapped):
    show_markdown("**Regions no rule covers** (they do not count until a rule is added to the lookup):")
    show(result.unmapped[["finding_id", "region", "source"]])

# %% [markdown]
# ## Atlas cross-check
#
# Where a finding links to a peak, the peak's AAL label gives a second opinion. `agree`: same network at the peak;
# `near`: the lookup's network lies within `roi.atlas_distance_mm` of the peak; `disagree`: farther;
# `no_atlas_label`: unlabelled voxel (AAL has no brainstem or white matter) and the network is not within the tolerance;
# `no_coordinate`: no linked peak. Disagreements are listed with the extraction stage's coordinate QA flags; they are
# not resolved silently: **the lookup decides**.

# %%
if has_findings:
    show(result.findings["atlas_status"].value_counts().rename_axis("atlas_status").rename("findings").reset_index())
show(result.disagreements, "No disagreement between the lookup and the atlas"
     + ("" if has_findings and (result.findings["atlas_status"] != "no_coordinate").any()
        else " (no finding in this dataset is linked to a coordinate, so the atlas check has nothing to compare)."))

# %% [markdown]
# ## Experiment-level matrix
#
# Each contrast is its own row. ↑ = patients > controls (or a positive association with symptom severity), ↓ = the
# reverse, ↑↓ = both directions, ? = implicated but the source gives no direction, blank = not implicated.

# %%
show(result.experiment.display(), "The experiment-level matrix is empty.")
if result.experiment.n:  # an empty matrix is said in one line above, not drawn
    written.update({p.name: p for p in publish(roi.plot_matrix(result.experiment, config), fig_dir / "roi_matrix_experiment")})

# %% [markdown]
# ### Not assessable
#
# Contrasts (and studies) that are **not** rows of the matrices, with the reason. They are not counted as "no
# involvement": a contrast whose findings are not public says nothing about the networks.

# %%
show(result.not_assessable[["level", "id", "label", "status", "reason"]], "Every contrast and study is assessable.")

# %% [markdown]
# ## Study-level matrix
#
# The assessable contrasts of each publication merged into one row: a network is involved when any contrast implicates
# it; the arrows keep the directions seen (↑↓ when the study's contrasts point both ways).

# %%
show(result.study.display(), "The study-level matrix is empty.")
if result.study.n:  # an empty matrix is said in one line above, not drawn
    written.update({p.name: p for p in publish(roi.plot_matrix(result.study, config), fig_dir / "roi_matrix_study")})

# %% [markdown]
# ## Counts for the proportion meta-analysis
#
# Per network: events = rows implicating it, n = all rows of the matrix; directional subgroups count rows whose cell
# includes that direction (↑↓ counts in both) over the same n. Written to `roi_counts.csv` (long form) for stage 3.

# %%
if result.experiment.n or result.study.n:
    show(roi.counts_wide(result.counts))
else:
    show_markdown("*No counts: both matrices are empty (n = 0), so there is nothing to pool. `roi_counts.csv` still "
                  "lists every network with n = 0.*")

# %% [markdown]
# ## Every cell traced to its sources
#
# Each implicated cell with the findings, peaks, rules and sources behind it (all cells, including empty ones, are in
# `roi_cells.csv`).

# %%
cols = ["level", "entry_id", "network_label", "cell", "finding_ids", "rule_ids", "regions", "focus_ids",
        "findings_lines", "seed_findings_excluded", "sources"]
cells = result.cells
show(cells[cells["cell"] != roi.NONE][cols] if len(cells) else cells, "No implicated cell.")

# %% [markdown]
# ## Our counts beside the counts the reported numbers imply
#
# Only where the dataset has a `review_implied_counts.csv`. Such counts are **derived** from the reported proportions
# and intervals, not printed in the source; each row says how, and is re-checked here (`reproduces`).

# %%
if implied.empty:
    show_markdown(f"*No `review_implied_counts.csv` in dataset {literal(dataset)}: nothing to compare.*")
else:
    show(implied[["item_id", "level", "subgroup", "network", "events", "n", "basis", "reported_proportion",
                  "reported_ci_lower", "reported_ci_upper", "check_lower", "check_upper", "reproduces", "derivation"]])
    comparison = roi.compare_with_review(result, implied)
    show(comparison[["item_id", "level", "subgroup", "label", "ours", "review", "review_basis", "same_counts"]])
    show_markdown("### Where and why they differ\n\n"
                  + "\n".join(f"- {line}" for line in roi.explain_differences(result, comparison, implied)))

# %% [markdown]
# ## Sensitivity: the judgement calls
#
# Some rules are judgement calls: a rule may name an `alternative` network, another defensible reading of the same
# region (its `rationale` in the lookup says why). The rows below apply every rule's alternative, and also restrict the
# synthesis to between-group contrasts (the coding an ALE of group differences uses), to show how much each choice
# moves the counts. These are alternatives, not results.

# %%
if has_findings:
    lk = result.lookup
    scenarios = {
        f"lookup {lk.label}, all contrast types": (lk, None),
        f"lookup {lk.alternative().label}, all contrast types": (lk.alternative(), None),
        f"lookup {lk.label}, between-group only": (lk, {"contrast_types": ["between_group"]}),
        f"lookup {lk.alternative().label}, between-group only": (lk.alternative(), {"contrast_types": ["between_group"]}),
    }
    show(roi.sensitivity(ext, config, scenarios))
else:
    show_markdown("*No findings: no sensitivity analysis.*")

# %% [markdown]
# ## Files written

# %%
root = paths.processed.parent.parent.parent
show(pd.DataFrame({"file": [str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in written.values()]}))
