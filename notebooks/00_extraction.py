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

from painmeta import extraction, tables
from painmeta.display import literal, show_markdown, show_table
from painmeta.notebooks import setup_notebook
from painmeta.plotting import foci_glass_brain, foci_glass_brain_caption, publish

setup_notebook()
ext, config, paths = extraction.extract(dataset, config_overrides or None)
written = extraction.write_outputs(ext, config, paths)
fig_dir = paths.stage("extraction")
show_markdown(f"**{literal(config.title)}**\n\n{literal(config.description)}")

# %% [markdown]
# ## Table 1 · Study characteristics
# One row per publication, rebuilt from `studies.csv`; every row carries its source.

# %%
show_table(tables.table1_characteristics(ext.studies), empty="No study in this dataset.")

# %% [markdown]
# ## Table 2 · Imaging details
# Modality, scanner, analysis, seeds, contrasts and public foci per publication.

# %%
show_table(tables.table2_imaging(ext.studies, ext.experiments), empty="No study in this dataset.")

# %% [markdown]
# ## Experiments (study–contrast pairs)
# Direction codes: `patients>controls` / `patients<controls` (between-group), `positive_association` /
# `negative_association` (correlation with symptoms). *Evidence* says whether the contrast was verified in a
# source or inferred/unverified (with the reason). *In ALE* says whether it can enter ALE, and *ALE note* why not.

# %%
cols = ["experiment_id", "study_id", "contrast", "contrast_type", "direction", "modality", "seed_region", "n_ale",
        "n_foci", "n_findings", "evidence", "evidence_note", "in_ale", "ale_note"]
show_table(ext.experiments, columns=cols, empty="No experiment in this dataset.")

# %% [markdown]
# ## Foci
# MNI coordinates used downstream, beside the coordinates as reported and the transform applied.

# %%
cols = ["focus_id", "experiment_id", "x", "y", "z", "space_reported", "x_reported", "y_reported", "z_reported",
        "transform", "label", "hemisphere", "stat_type", "stat_value", "evidence"]
# Up to 1,000 peaks on the page (a database dataset has tens of thousands); the note names the file with all of them.
show_table(ext.foci, columns=cols, empty="No focus in this dataset.", max_rows=1000,
           full_table=f"data/processed/{dataset}/foci_mni.csv")

# %% [markdown]
# ## Coordinate QA
# Every peak is looked up in NiMARE's MNI152 2 mm mask and in the AAL, Harvard-Oxford and Talairach Brodmann atlases
# that ship inside installed wheels. Flags inform; they never change a coordinate.
# Checks: `outside_brain` (error, more than 10 mm outside the mask), `outside_mask_edge` (warning, within 10 mm),
# `hemisphere_sign` (reported side disagrees with the sign of x), `label_far_from_atlas` (the reported label's atlas
# region lies more than 10 mm away: warning; more than 25 mm: error), `brodmann_far_from_atlas` (warning).

# %%
if len(ext.qa_flags):
    summary = ext.qa_flags.groupby(["check", "severity"]).size().rename("n").reset_index()
    show_table(summary, headers={"n": "Flags (n)"})
    show_table(ext.qa_flags, columns=["focus_id", "check", "severity", "message"], max_rows=1000,
               full_table=f"data/processed/{dataset}/qa_flags.csv")
elif len(ext.foci):
    show_markdown("No QA flag: every peak lies in the brain mask and agrees with its reported side and label.")
else:
    show_markdown("No peak to check: this dataset has no coordinates.")

# %% [markdown]
# The atlas lookup of every peak (also in `qa_lookup.csv`):

# %%
show_table(ext.qa_lookup, empty="No peak was looked up.", max_rows=1000,
           full_table=f"data/processed/{dataset}/qa_lookup.csv")

# %% [markdown]
# ## Foci on a glass brain
# Every focus in MNI space, QA errors as black crosses. A dataset with thousands of foci is drawn as a smoothed
# density instead of one marker per focus; the caption under the figure says which.

# %%
if len(ext.foci):
    errors = set(ext.qa_flags.loc[ext.qa_flags["severity"] == "error", "focus_id"]) if len(ext.qa_flags) else set()
    colour_by = "experiment_id" if ext.foci["experiment_id"].nunique() <= 8 else "study_id"
    # Thousands of foci are drawn as a smoothed density, not as markers; the caption says which it is.
    fig = foci_glass_brain(ext.foci, errors, title=f"{dataset}: public foci (MNI)", colour_by=colour_by)
    publish(fig, fig_dir / "foci_glass_brain")
    show_markdown(literal(foci_glass_brain_caption(ext.foci, errors, colour_by=colour_by)))
else:
    show_markdown("No coordinates in this dataset, so there is no glass brain.")

# %% [markdown]
# ## Accounting and exclusions
# Every raw row is either in a processed table or in the exclusion log, with its reason.

# %%
show_table(ext.accounting())
show_table(ext.exclusions, empty="No row was excluded.")

# %% [markdown]
# ## What is missing
# What could not be extracted, per study. Gaps stay gaps: nothing is filled in by guessing.

# %%
if config.missing.strip():
    show_markdown(config.missing)
missing = tables.missing_record(ext.studies, ext.experiments)
show_table(missing, empty="No study in this dataset.")
n_exp = len(ext.experiments)
n_with = int((ext.experiments["n_foci"] > 0).sum())
show_markdown(
    f"Of {n_exp} contrasts, **{n_with}** have coordinates ({len(ext.foci)} foci); "
    f"**{int((ext.experiments['evidence'] != 'verified').sum())}** are inferred or unverified; "
    f"**{int((~ext.studies['identified']).sum())}** stud(ies) could not be identified."
)

# %% [markdown]
# ## Files written

# %%
root = paths.processed.parent.parent.parent
show_table(pd.DataFrame({"file": [str(p.relative_to(root)) if p.is_relative_to(root) else str(p)
                                  for p in written.values()]}))
