# Regenerate: Rscript tests/reference/metaprop_reference.R  (from the repo root; needs R >= 4.2 with
# metafor, lme4 and jsonlite, e.g. Debian: apt-get install r-base-core r-cran-metafor r-cran-lme4
# r-cran-jsonlite). Writes tests/reference/metaprop_reference.json, the fixture that
# tests/test_proportions.py compares painmeta.proportions against (R is not needed at test time).
#
# What it computes, per count table, exactly as R's meta::metaprop(sm = "PLOGIT", method = "GLMM")
# does internally (meta calls metafor, see meta's R/metaprop.R):
#   * per-row 95% Clopper-Pearson interval (binom.test);
#   * random effects: metafor::rma.glmm(measure = "PLO", method = "ML") -- a random-intercept
#     logistic GLMM fitted by lme4::glmer with nAGQ = 7 (metafor's default) -- estimate, SE, Wald CI,
#     tau^2, I^2, H^2, QE.Wld (Wald-type Q, df = k - 1) and QE.LRT with their p-values;
#   * common effect: rma.glmm(measure = "PLO", method = "EE") (meta passes "FE"; same model).
# The ML fit is run twice: with lme4's default optimiser control (what metaprop prints) and with
# tight optimiser tolerances ("tight"), which approximates the exact ML optimum more closely; both go
# in the fixture so that the Python engine (an exact optimiser) can be checked against either.
# The test for subgroup differences reproduces meta's subgroup(): Cochran's Q of the subgroups'
# random-effects logit estimates with their SEs (metagen(TE.random.w, seTE.random.w)$Q), df = G - 1.
# The R package meta itself is not in Debian bookworm, so it is not called here.

suppressPackageStartupMessages({
  library(metafor)
  library(lme4)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
out_dir <- if (length(script)) dirname(normalizePath(script)) else "tests/reference"
out_file <- file.path(out_dir, "metaprop_reference.json")

cats <- c("DMN", "sensorimotor", "prefrontal", "brainstem", "cerebellum")

# name, description, synthetic?, events, totals, labels
tables <- list(
  list(name = "review_experiment", synthetic = FALSE,
       description = "Review experiment level: 9 of 30 cells (3,2,2,1,1 of 6 experiments)",
       events = c(3, 2, 2, 1, 1), totals = rep(6, 5), labels = cats),
  list(name = "review_study_implied", synthetic = FALSE,
       description = paste("Study level as implied by the review's pooled 0.60 and p = 0.8646:",
                           "9/15 with one category at 3/3 (see data/SOURCES.md)"),
       events = c(3, 2, 2, 1, 1), totals = rep(3, 5), labels = cats),
  list(name = "review_study_text", synthetic = FALSE,
       description = "Study level as the review's text gives it: 2/3, 2/3, 2/3, 1/3, 1/3 (8/15)",
       events = c(2, 2, 2, 1, 1), totals = rep(3, 5), labels = cats),
  list(name = "synthetic_dir_a_higher", synthetic = TRUE,
       description = "SYNTHETIC directional split A, CIPN > control: 6 of 30 cells (2,1,1,1,1)",
       events = c(2, 1, 1, 1, 1), totals = rep(6, 5), labels = cats),
  list(name = "synthetic_dir_a_lower", synthetic = TRUE,
       description = "SYNTHETIC directional split A, CIPN < control: 3 of 30 cells (1,1,1,0,0)",
       events = c(1, 1, 1, 0, 0), totals = rep(6, 5), labels = cats),
  list(name = "synthetic_dir_b_higher", synthetic = TRUE,
       description = "SYNTHETIC directional split B, CIPN > control: 6 of 30 cells (3,2,1,0,0)",
       events = c(3, 2, 1, 0, 0), totals = rep(6, 5), labels = cats),
  list(name = "synthetic_dir_b_lower", synthetic = TRUE,
       description = "SYNTHETIC directional split B, CIPN < control: 3 of 30 cells (0,0,1,1,1)",
       events = c(0, 0, 1, 1, 1), totals = rep(6, 5), labels = cats),
  list(name = "heterogeneous", synthetic = TRUE,
       description = "Strong heterogeneity (tau^2 > 0)",
       events = c(1, 9, 15, 3, 18), totals = c(20, 20, 20, 25, 22), labels = NULL),
  list(name = "moderate", synthetic = TRUE,
       description = "Moderate heterogeneity, unequal n",
       events = c(4, 7, 10, 12, 6, 9), totals = c(30, 25, 28, 30, 20, 40), labels = NULL),
  list(name = "zero_rows", synthetic = TRUE,
       description = "Two rows with zero events",
       events = c(0, 2, 5, 1, 0), totals = c(10, 12, 15, 8, 9), labels = NULL),
  list(name = "all_event_rows", synthetic = TRUE,
       description = "Two rows with all events (x = n)",
       events = c(10, 11, 7, 8, 9), totals = c(10, 12, 15, 8, 9), labels = NULL),
  list(name = "zero_and_all", synthetic = TRUE,
       description = "One zero row and one all-event row, heterogeneous",
       events = c(0, 3, 6, 12), totals = c(12, 10, 10, 12), labels = NULL),
  list(name = "two_rows", synthetic = TRUE,
       description = "Two rows only (k = 2)",
       events = c(2, 8), totals = c(10, 10), labels = NULL),
  list(name = "homogeneous_large", synthetic = TRUE,
       description = "Ten rows, near-homogeneous (tau^2 at or near 0)",
       events = c(12, 15, 9, 20, 14, 11, 17, 13, 10, 16),
       totals = c(40, 45, 35, 60, 42, 38, 50, 41, 33, 49), labels = NULL),
  list(name = "all_zero", synthetic = TRUE,
       description = "Degenerate: every row has zero events (no finite ML estimate)",
       events = c(0, 0, 0), totals = c(5, 6, 7), labels = NULL),
  list(name = "all_n", synthetic = TRUE,
       description = "Degenerate: every row has all events (no finite ML estimate)",
       events = c(5, 6, 7), totals = c(5, 6, 7), labels = NULL)
)

subgroup_sets <- list(
  list(name = "synthetic_dir_a", synthetic = TRUE,
       groups = c(`CIPN > control` = "synthetic_dir_a_higher",
                  `CIPN < control` = "synthetic_dir_a_lower")),
  list(name = "synthetic_dir_b", synthetic = TRUE,
       groups = c(`CIPN > control` = "synthetic_dir_b_higher",
                  `CIPN < control` = "synthetic_dir_b_lower")),
  list(name = "synthetic_het_vs_moderate", synthetic = TRUE,
       groups = c(heterogeneous = "heterogeneous", moderate = "moderate"))
)

# lme4's defaults stop the penalised IRLS for the conditional modes at a relative deviance change of
# tolPwrss = 1e-7, so its AGQ is centred at slightly inexact modes (visible when rows sit at x = n
# with a large tau^2), and stop Nelder-Mead at FtolAbs = 1e-5. "tight" removes both approximations.
tight <- list(glmerCtrl = list(optimizer = c("bobyqa", "bobyqa"), tolPwrss = 1e-12,
                               optCtrl = list(rhoend = 1e-10, maxfun = 1e5)))

num <- function(x) if (is.null(x) || length(x) == 0) NA_real_ else as.numeric(x)

glmm_summary <- function(fit) {
  list(b = num(fit$b), se = num(fit$se), ci_lb = num(fit$ci.lb), ci_ub = num(fit$ci.ub),
       pooled = plogis(num(fit$b)), lower = plogis(num(fit$ci.lb)), upper = plogis(num(fit$ci.ub)),
       tau2 = num(fit$tau2), tau = sqrt(num(fit$tau2)), I2 = num(fit$I2), H2 = num(fit$H2),
       vt = num(fit$vt),
       QE_wald = num(fit$QE.Wld), QEp_wald = num(fit$QEp.Wld),
       QE_lrt = num(fit$QE.LRT), QEp_lrt = num(fit$QEp.LRT), QE_df = num(fit$QE.df),
       logLik = num(fit$fit.stats["ll", "ML"]))
}

run_fit <- function(expr) {
  warns <- character(0)
  val <- withCallingHandlers(
    tryCatch(expr, error = function(e) structure(conditionMessage(e), class = "fit_error")),
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  if (inherits(val, "fit_error")) return(list(error = as.character(val), warnings = warns))
  out <- glmm_summary(val)
  out$warnings <- warns
  out
}

results <- list()
for (tb in tables) {
  x <- tb$events
  n <- tb$totals
  cp <- t(sapply(seq_along(x), function(i) binom.test(x[i], n[i], conf.level = 0.95)$conf.int))
  ml <- run_fit(rma.glmm(measure = "PLO", xi = x, ni = n, method = "ML"))
  ml_tight <- run_fit(rma.glmm(measure = "PLO", xi = x, ni = n, method = "ML", control = tight))
  ee <- run_fit(rma.glmm(measure = "PLO", xi = x, ni = n, method = "EE"))
  results[[tb$name]] <- list(
    name = tb$name, description = tb$description, synthetic = tb$synthetic,
    events = x, totals = n, labels = if (is.null(tb$labels)) NA else tb$labels,
    rows = list(proportion = x / n, lower = cp[, 1], upper = cp[, 2]),
    random = ml, random_tight = ml_tight, common = ee)
}

# meta's subgroup(): Q between = Cochran's Q of subgroup estimates (inverse-variance weights),
# computed here with metafor's rma(method = "EE"), which gives the same QE.
subgroups <- list()
for (sg in subgroup_sets) {
  te_r <- sapply(sg$groups, function(g) results[[g]]$random$b)
  se_r <- sapply(sg$groups, function(g) results[[g]]$random$se)
  te_rt <- sapply(sg$groups, function(g) results[[g]]$random_tight$b)
  se_rt <- sapply(sg$groups, function(g) results[[g]]$random_tight$se)
  te_c <- sapply(sg$groups, function(g) results[[g]]$common$b)
  se_c <- sapply(sg$groups, function(g) results[[g]]$common$se)
  qb <- function(te, se) {
    f <- rma(yi = te, sei = se, method = "EE")
    list(Q = num(f$QE), df = num(f$k - 1), p = num(f$QEp))
  }
  subgroups[[sg$name]] <- list(
    name = sg$name, synthetic = sg$synthetic, groups = as.list(sg$groups),
    random = qb(te_r, se_r), random_tight = qb(te_rt, se_rt), common = qb(te_c, se_c))
}

# lme4's AGQ deviance function itself at fixed (theta = tau, beta), for a direct check of the
# quadrature independent of any optimiser: devfun = -2 (logLik - logLik of the saturated model).
devfun_points <- list()
for (nm in c("heterogeneous", "zero_rows", "all_event_rows", "review_study_implied")) {
  x <- results[[nm]]$events
  n <- results[[nm]]$totals
  study <- factor(seq_along(x))
  dfun <- glmer(cbind(x, n - x) ~ 1 + (1 | study), family = binomial, nAGQ = 7, devFunOnly = TRUE,
                control = glmerControl(tolPwrss = 1e-12))
  pts <- list(c(0.5, -1), c(1, 0), c(2, 1), c(3, 2.5))
  devfun_points[[nm]] <- lapply(pts, function(p) list(tau = p[1], beta = p[2], deviance = dfun(p)))
}

si <- sessionInfo()
pkg_version <- function(p) as.character(packageVersion(p))
meta_info <- list(
  generated_by = "tests/reference/metaprop_reference.R",
  R_version = R.version.string,
  platform = si$platform,
  packages = list(metafor = pkg_version("metafor"), lme4 = pkg_version("lme4"),
                  Matrix = pkg_version("Matrix"), minqa = pkg_version("minqa"),
                  jsonlite = pkg_version("jsonlite")),
  blas = si$BLAS, lapack = si$LAPACK,
  settings = list(nAGQ = 7, measure = "PLO", random_method = "ML", common_method = "EE",
                  level = 95, default_glmer_control = "lme4 default (bobyqa then Nelder_Mead)",
                  tight_glmer_control = "bobyqa/bobyqa, rhoend = 1e-10, maxfun = 1e5, tolPwrss = 1e-12"),
  session_info = paste(capture.output(print(si)), collapse = "\n"))

out <- list(meta = meta_info, tables = results, subgroups = subgroups, devfun_points = devfun_points)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE), out_file)
cat("wrote", out_file, "\n")
