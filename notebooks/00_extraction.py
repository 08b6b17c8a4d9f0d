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
# # Stage 0 · Extraction tables
#
# Reads the dataset's raw tables (`data/raw/<dataset>/`), validates them, converts Talairach peaks to MNI,
# runs coordinate QA against the MNI152 mask and shipped atlases, and writes the processed tables, the
# exclusion log, Sleuth files and a NiMARE dataset to `data/processed/<dataset>/`.
# All logic lives in `painmeta.extraction`, `painmeta.coords` and `painmeta.tables`; this notebook only shows results.

# %% tags=["parameters"]
# Papermill parameters (the Makefile passes DATASET); everything else comes from data/raw/<dataset>/dataset.yaml
dataset = "cipn"
config_overrides = {}
quick = False  # unused here (no Monte Carlo in this stage); accepted so that every stage takes the same parameters

# %%
import pandas as pd
from IPython.display import Markdown, display

from painmeta import extraction, tables
from painmeta.notebooks import setup_notebook
from painmeta.plotting import foci_glass_brain, publish

setup_notebook()
ext, config, paths = extraction.extract(dataset, config_overrides or None)
written = extraction.write_outputs(ext, config, paths)
fig_dir = paths.stage("extraction")
display(Markdown(f"**{config.title}**\n\n{config.description}"))

# %% [markdown]
# ## Table 1 · Study characteristics
# One row per publication, rebuilt from `studies.csv`; every row carries its source.

# %%
display(tables.table1_characteristics(ext.studies))

# %% [markdown]
# ## Table 2 · Imaging details
# Modality, scanner, analysis, seeds, contrasts and public foci per publication.

# %%
display(tables.table2_imaging(ext.studies, ext.experiments))

# %% [markdown]
# ## Experiments (study–contrast pairs)
# Direction codes: `patients>controls` / `patients<controls` (between-group), `positive_association` /
# `negative_association` (correlation with symptoms). `evidence` says whether the contrast was verified in a
# source or inferred/unverified (with the reason). `in_ale` says whether it can enter ALE, and `ale_note` why not.

# %%
cols = ["experiment_id", "study_id", "contrast_type", "direction", "modality", "seed_region", "n_ale",
        "n_foci", "n_findings", "evidence", "evidence_note", "in_ale", "ale_note"]
display(ext.experiments[cols])

# %% [markdown]
# ## Foci
# MNI coordinates used downstream, beside the coordinates as reported and the transform applied.

# %%
cols = ["focus_id", "experiment_id", "x", "y", "z", "space_reported", "x_reported", "y_reported", "z_reported",
        "transform", "label", "hemisphere", "stat_type", "stat_value", "evidence"]
display(ext.foci[cols] if len(ext.foci) <= 60 else ext.foci[cols].head(60))
if len(ext.foci) > 60:
    display(Markdown(f"(first 60 of {len(ext.foci)} foci shown; all are in `foci_mni.csv`)"))

# %% [markdown]
# ## Coordinate QA
# Every peak is looked up in NiMARE's MNI152 2 mm mask and in the AAL, Harvard-Oxford and Talairach Brodmann atlases
# that ship inside installed wheels. Flags inform; they never change a coordinate.
# Checks: `outside_brain` (error, > 10 mm outside the mask), `outside_mask_edge` (warning, within 10 mm),
# `hemisphere_sign` (reported side disagrees with the sign of x), `label_far_from_atlas` (reported label's atlas region
# > 10 mm away: warning; > 25 mm: error), `brodmann_far_from_atlas` (warning).

# %%
if len(ext.qa_flags):
    summary = ext.qa_flags.groupby(["check", "severity"]).size().rename("n").reset_index()
    display(summary)
    display(ext.qa_flags[["focus_id", "check", "severity", "message"]])
else:
    display(Markdown("No QA flag: every peak lies in the brain mask and agrees with its reported side and label."))
display(ext.qa_lookup if len(ext.qa_lookup) <= 60 else ext.qa_lookup.head(60))

# %%
if len(ext.foci):
    errors = set(ext.qa_flags.loc[ext.qa_flags["severity"] == "error", "focus_id"]) if len(ext.qa_flags) else set()
    colour_by = "experiment_id" if ext.foci["experiment_id"].nunique() <= 8 else "study_id"
    fig = foci_glass_brain(ext.foci, errors, title=f"{dataset}: public foci (MNI)", colour_by=colour_by)
    publish(fig, fig_dir / "foci_glass_brain")
else:
    display(Markdown("No public coordinates in this dataset."))

# %% [markdown]
# ## Accounting and exclusions
# Every raw row is either in a processed table or in the exclusion log, with its reason.

# %%
display(ext.accounting())
display(ext.exclusions if len(ext.exclusions) else Markdown("No row was excluded."))

# %% [markdown]
# ## What is missing from the public record
# What could not be extracted, per study. Gaps stay gaps: nothing is filled in by guessing.

# %%
missing = tables.missing_record(ext.studies, ext.experiments)
display(missing)
n_exp = len(ext.experiments)
n_with = int((ext.experiments["n_foci"] > 0).sum())
display(Markdown(
    f"Of {n_exp} contrasts, **{n_with}** have public coordinates ({len(ext.foci)} foci); "
    f"**{int((ext.experiments['evidence'] != 'verified').sum())}** are inferred or unverified; "
    f"**{int((~ext.studies['identified']).sum())}** stud(ies) could not be identified."
))

# %% [markdown]
# ## Files written

# %%
display(pd.DataFrame({'file': [str(p.relative_to(paths.processed.parent.parent.parent)) for p in written.values()]}))
