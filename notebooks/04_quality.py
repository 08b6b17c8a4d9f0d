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
# the source made but did not publish, and **inferred** judgements (the `evidence` column: read from a blanket
# sentence, not a per-study rating) as a pale, hatched level of their own. The PRISMA 2020 flow comes from
# `prisma.yaml`; unknown counts are shown as unknown and the arithmetic is checked (flagged, never corrected).
# Both parts are optional: a dataset without them says so in one line. Logic: `painmeta.quality`, `painmeta.prisma`.

# %% tags=["parameters"]
dataset = "cipn"
config_overrides = {}
quick = False

# %%
from painmeta import prisma, quality
from painmeta.display import literal, show_markdown, show_table
from painmeta.notebooks import setup_notebook
from painmeta.config import load_config
from painmeta.extraction import extract
from painmeta.plotting import publish

setup_notebook()
config, paths = load_config(dataset, config_overrides or None)
out = paths.stage("quality")
rob_file = paths.raw / "robins_i.csv"
prisma_file = paths.raw / "prisma.yaml"

# %% [markdown]
# ## ROBINS-I

# %%
if rob_file.is_file():
    rob = quality.load_robins_i(rob_file)
    show_table(quality.judgement_table(rob))
    n_inferred = int(quality.inferred_mask(rob).to_numpy().sum())
    if n_inferred:
        show_markdown(f"**{n_inferred} judgement(s) are inferred**, not per-study ratings: they restate a blanket "
                      "sentence of the source (see each row's note in `robins_i.csv`) and are drawn pale and hatched, "
                      "as their own level. Read them as the source's general statement, not as a verified rating of "
                      "each study.")
    fig = quality.traffic_light_plot(rob, title=f"ROBINS-I: {config.name}")
    publish(fig, out / "robins_traffic_light")
    fig_cb = quality.traffic_light_plot(rob, colour_blind=True, title=f"ROBINS-I (colour-blind palette): {config.name}")
    publish(fig_cb, out / "robins_traffic_light_colourblind")
else:
    rob = None
    show_markdown(f"No `robins_i.csv` in dataset {literal(dataset)}: risk of bias is not part of it.")

# %%
if rob is not None:
    show_markdown("Summary bars: share of studies per judgement and domain, unweighted and weighted by the number "
                  "of patients.")
    show_table(quality.summary_table(rob, by_evidence=True).loc[
                   :, lambda t: t.columns[(t > 0).any()]].rename(index=quality.DOMAIN_NAMES),
               formats={c: "{:.0f}%" for c in [*quality.JUDGEMENTS, *(f"{j}_inferred" for j in quality.JUDGEMENTS)]},
               headers={**{j: quality.JUDGEMENT_LABELS[j] for j in quality.JUDGEMENTS},
                        **{f"{j}_inferred": f"{quality.JUDGEMENT_LABELS[j]} (inferred)" for j in quality.JUDGEMENTS},
                        "domain": "Domain"})
    publish(quality.summary_plot(rob, title="ROBINS-I summary (unweighted)"), out / "robins_summary")
    ext, _, _ = extract(dataset, config_overrides or None)
    weights = ext.studies.set_index("study_id")["n_patients"].dropna().astype(float)
    missing_w = sorted(set(rob["study_id"]) - set(weights.index))
    if missing_w:
        show_markdown("Studies without a sample size get no weight in the weighted bars: "
                      + ", ".join(literal(s) for s in missing_w))
    weights = weights.reindex(sorted(set(rob["study_id"]))).fillna(0.0)
    publish(quality.summary_plot(rob, weighted=True, weights=weights, weight_label="patients",
                                     title="ROBINS-I summary (weighted by patients)"), out / "robins_summary_weighted")

# %% [markdown]
# ## PRISMA 2020 flow

# %%
if prisma_file.is_file():
    flow = prisma.load_prisma(prisma_file)
    checks = prisma.check_arithmetic(flow)
    show_table(checks, columns=["check", "relation", "status", "detail"], colours={"status": {"flag": "#fddbc7"}})
    fig = prisma.flow_diagram(flow, checks)
    publish(fig, out / "prisma_flow")
    flagged = checks[checks["status"] == "flag"]
    if len(flagged):
        show_markdown("**Arithmetic flags** (shown, not corrected):\n\n" +
                      "\n".join(f"- {literal(r.description)}: {literal(r.relation)}" for r in flagged.itertuples()))
else:
    show_markdown(f"No `prisma.yaml` in dataset {literal(dataset)}: it has no PRISMA flow to draw.")
