"""Meta-analysis of single proportions, as R's ``meta::metaprop`` does it by default.

``meta::metaprop(event, n)`` with its defaults (``sm = "PLOGIT"``, ``method = "GLMM"``,
``method.ci = "CP"``) computes, and this module reproduces:

* per row: the proportion and its exact Clopper--Pearson interval (``binom.test``);
* common effect: the intercept-only logistic regression (``metafor::rma.glmm(measure = "PLO",
  method = "EE")``, i.e. ``glm(cbind(x, n - x) ~ 1, binomial)``) with a Wald interval on the logit
  scale, back-transformed;
* random effects: the random-intercept logistic GLMM ``logit(p_i) = beta + u_i``,
  ``u_i ~ N(0, tau^2)``, fitted by maximum likelihood with 7-point adaptive Gauss--Hermite
  quadrature (``rma.glmm(measure = "PLO", method = "ML")`` -> ``lme4::glmer(nAGQ = 7)``); Wald
  interval on the logit scale, back-transformed;
* heterogeneity as metafor reports it for ``rma.glmm``: the Wald-type Q (``QE.Wld``, df = k - 1)
  and the likelihood-ratio Q (``QE.LRT``), both from the saturated logistic model, their
  chi-square p-values, tau^2 (ML), and I^2 / H^2 from tau^2 and metafor's "typical" within-row
  variance.

No continuity correction enters the GLMM or the GLMs (rows with 0 or n events are used as they
are); metafor only uses the 0.5 correction to compute the typical within-row variance behind
I^2, and so do we.

Why not a library: statsmodels has no maximum-likelihood binomial GLMM with adaptive
Gauss--Hermite quadrature (its ``BinomialBayesMixedGLM`` is a variational/Laplace Bayesian fit),
so the likelihood is integrated here with our own AGQ, in the same way as lme4 (quadrature
centred at each row's conditional mode, scaled by the curvature there), and maximised with
:mod:`scipy.optimize`.

The reference values (R 4.2 / metafor / lme4) are in ``tests/reference/metaprop_reference.json``,
produced by ``tests/reference/metaprop_reference.R``.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas is imported lazily by the stage helpers
    import pandas as pd

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special, stats

from painmeta.errors import InputError

__all__ = [
    "N_AGQ",
    "RowResult",
    "PooledEstimate",
    "Heterogeneity",
    "MetapropResult",
    "SubgroupTest",
    "MetapropSubgroups",
    "metaprop",
    "metaprop_subgroups",
    "clopper_pearson",
    "glmm_loglik",
    "register_cli",
    "NOTHING_TO_POOL",
    "nothing_to_pool",
]

#: Number of adaptive Gauss-Hermite nodes (metafor's ``nAGQ`` default for ``rma.glmm``).
N_AGQ = 7

# R's glm.control() defaults, used by metafor for the common-effect and saturated models.
_GLM_EPSILON = 1e-8
_GLM_MAXIT = 25
# R's binomial link clamps (src/library/stats/src/family.c).
_THRESH = 30.0
_DBL_EPS = float(np.finfo(float).eps)
_INVEPS = 1.0 / _DBL_EPS
# Step of lme4's finite-difference Hessian (lme4:::deriv12, delta = 1e-4), mimicked so that the
# standard error of the pooled logit carries the same (tiny, ~1e-8) truncation error as lme4's.
_HESS_DELTA = 1e-4
# Upper end of the search for tau (logit scale). tau = 30 means between-row odds ratios of e^60;
# an optimum there means tau^2 diverges (rows at 0 and at n with nothing in between).
_TAU_MAX = 30.0


# --------------------------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowResult:
    """One row (category / study) of the table.

    Attributes
    ----------
    label : str
    events, total : int
    proportion : float
        ``events / total``.
    lower, upper : float
        Clopper--Pearson interval at the result's level.
    weight_common, weight_random : float
        Approximate inverse-variance weights in percent (see :func:`metaprop`, Notes): meta
        prints no weights for a GLMM, these are shown for orientation only.
    """

    label: str
    events: int
    total: int
    proportion: float
    lower: float
    upper: float
    weight_common: float
    weight_random: float


@dataclass(frozen=True)
class PooledEstimate:
    """A pooled proportion with its Wald interval (computed on the logit scale).

    Attributes
    ----------
    proportion, lower, upper : float
        Back-transformed estimate and interval.
    logit, se : float
        Estimate and standard error on the logit scale (``-inf``/``inf`` and ``nan`` for a
        degenerate table where every row has 0, or every row n, events).
    z, p : float
        Wald test of logit = 0 (proportion 0.5), as metafor reports.
    """

    proportion: float
    lower: float
    upper: float
    logit: float
    se: float
    z: float
    p: float


@dataclass(frozen=True)
class Heterogeneity:
    """Between-row heterogeneity, as ``rma.glmm`` reports it.

    Attributes
    ----------
    tau2, tau : float
        ML estimate of the between-row variance of the logits, and its square root.
    I2 : float
        I^2 in percent: ``100 tau2 / (tau2 + vt)`` with metafor's typical within-row variance
        ``vt``.
    H2 : float
        ``tau2 / vt + 1``.
    vt : float
        Typical within-row variance (Higgins--Thompson), from the logit variances with 0.5
        added to rows with 0 or n events (metafor's ``escalc`` default).
    Q, df, p : float, int, float
        Wald-type test of homogeneity from the saturated model (``QE.Wld``), df = k - 1.
    Q_lrt, p_lrt : float
        Likelihood-ratio test of homogeneity (``QE.LRT``), same df.
    """

    tau2: float
    tau: float
    I2: float
    H2: float
    vt: float
    Q: float
    df: int
    p: float
    Q_lrt: float
    p_lrt: float


@dataclass(frozen=True)
class MetapropResult:
    """Result of :func:`metaprop`.

    Attributes
    ----------
    rows : tuple of RowResult
    common : PooledEstimate
        Common-effect (fixed-effect) logistic model.
    random : PooledEstimate
        Random-intercept logistic GLMM (ML, AGQ).
    heterogeneity : Heterogeneity
    level : float
        Confidence level of every interval.
    loglik : float
        Maximised log-likelihood of the GLMM (AGQ, with binomial coefficients; as metafor's
        ``logLik``).
    degenerate : str or None
        ``"all_zero"`` or ``"all_events"`` when every row has 0 (or n) events, ``"separated"``
        when every row has 0 or n events and both occur: no finite ML estimate exists (see
        :func:`metaprop`, Notes).
    notes : tuple of str
        Plain-language remarks (boundary estimates, degenerate tables).
    """

    rows: tuple[RowResult, ...]
    common: PooledEstimate
    random: PooledEstimate
    heterogeneity: Heterogeneity
    level: float
    loglik: float
    degenerate: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def k(self) -> int:
        """Number of rows."""
        return len(self.rows)

    @property
    def events(self) -> int:
        """Total events."""
        return sum(r.events for r in self.rows)

    @property
    def total(self) -> int:
        """Total observations."""
        return sum(r.total for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON: random-effects summary at the top level, then the rest."""
        het = self.heterogeneity
        return {
            "k": self.k,
            "events": self.events,
            "total": self.total,
            "level": self.level,
            "pooled": self.random.proportion,
            "lower": self.random.lower,
            "upper": self.random.upper,
            "tau2": het.tau2,
            "tau": het.tau,
            "I2": het.I2,
            "H2": het.H2,
            "Q": het.Q,
            "df": het.df,
            "Q_p": het.p,
            "Q_lrt": het.Q_lrt,
            "Q_lrt_p": het.p_lrt,
            "random": asdict(self.random),
            "common": asdict(self.common),
            "loglik": self.loglik,
            "rows": [asdict(r) for r in self.rows],
            "degenerate": self.degenerate,
            "notes": list(self.notes),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """Strict JSON (non-finite numbers, which only degenerate tables produce, become null)."""
        return json.dumps(_finite_or_none(self.to_dict()), indent=indent)

    def to_frame(self):  # -> pandas.DataFrame (pandas imported lazily: optional for the engine)
        """Per-row table (label, events, total, proportion, lower, upper, weights)."""
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.rows])


@dataclass(frozen=True)
class SubgroupTest:
    """Test for subgroup differences (meta's ``Q.b``): Cochran's Q of the subgroup estimates.

    Attributes
    ----------
    Q, df, p : float, int, float
    included : tuple of str
        Subgroups that contribute (degenerate subgroups have no finite estimate; in R their
        huge standard error makes their contribution vanish, here it is exactly zero).
    """

    Q: float
    df: int
    p: float
    included: tuple[str, ...]


@dataclass(frozen=True)
class MetapropSubgroups:
    """Result of :func:`metaprop_subgroups`.

    Attributes
    ----------
    groups : dict of str to MetapropResult
        One complete analysis per subgroup, in the order given.
    test_random, test_common : SubgroupTest
        Test for subgroup differences under the random-effects and common-effect models.
    notes : tuple of str
    """

    groups: dict[str, MetapropResult]
    test_random: SubgroupTest
    test_common: SubgroupTest
    notes: tuple[str, ...] = field(default=())

    def to_json(self, indent: int | None = 2) -> str:
        """Strict JSON (non-finite numbers become null)."""
        return json.dumps(_finite_or_none(self.to_dict()), indent=indent)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {
            "groups": {name: res.to_dict() for name, res in self.groups.items()},
            "test_random": asdict(self.test_random),
            "test_common": asdict(self.test_common),
            "notes": list(self.notes),
        }


def _finite_or_none(obj: Any) -> Any:
    """Replace NaN and infinities by None, recursively (JSON has no such numbers)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj


# --------------------------------------------------------------------------------------------
# Small numerical pieces
# --------------------------------------------------------------------------------------------


def clopper_pearson(
    events: ArrayLike, totals: ArrayLike, level: float = 0.95
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Exact (Clopper--Pearson) interval per row, as R's ``binom.test``.

    Parameters
    ----------
    events, totals : array-like of int
    level : float
        Two-sided confidence level.

    Returns
    -------
    lower, upper : ndarray
    """
    x = np.asarray(events, dtype=float)
    n = np.asarray(totals, dtype=float)
    alpha = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        lower = np.where(x == 0, 0.0, stats.beta.ppf(alpha, x, n - x + 1))
        upper = np.where(x == n, 1.0, stats.beta.ppf(1.0 - alpha, x + 1, n - x))
    return lower, upper


def _expit(eta: NDArray[np.float64]) -> NDArray[np.float64]:
    return special.expit(eta)


def _r_linkinv(eta: NDArray[np.float64]) -> NDArray[np.float64]:
    """R's ``binomial()$linkinv`` with its clamping at |eta| > 30."""
    inner = np.exp(np.clip(eta, -_THRESH, _THRESH))
    tmp = np.where(eta < -_THRESH, _DBL_EPS, np.where(eta > _THRESH, _INVEPS, inner))
    return tmp / (1.0 + tmp)


def _r_mu_eta(eta: NDArray[np.float64]) -> NDArray[np.float64]:
    """R's ``binomial()$mu.eta`` (derivative of the inverse link) with its clamping."""
    e = np.exp(np.clip(eta, -_THRESH, _THRESH))
    val = e / (1.0 + e) ** 2
    return np.where((eta > _THRESH) | (eta < -_THRESH), _DBL_EPS, val)


def _binom_dev(y: NDArray[np.float64], mu: NDArray[np.float64], wt: NDArray[np.float64]) -> float:
    """Binomial deviance as R's ``binomial()$dev.resids`` summed."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(y > 0, y * np.log(y / mu), 0.0)
        b = np.where(1 - y > 0, (1 - y) * np.log((1 - y) / (1 - mu)), 0.0)
    return float(np.sum(2.0 * wt * (a + b)))


def _binom_logpmf(x: NDArray[np.float64], n: NDArray[np.float64], mu: NDArray[np.float64]) -> float:
    return float(np.sum(stats.binom.logpmf(x, n, mu)))


@dataclass(frozen=True)
class _GlmFit:
    eta: NDArray[np.float64]  # final linear predictor per row
    weight: NDArray[np.float64]  # IRLS working weights of the last WLS step (R's fit$weights)
    loglik: float
    converged: bool


def _glm_irls(x: NDArray[np.float64], n: NDArray[np.float64], saturated: bool) -> _GlmFit:
    """Logistic GLM by R's ``glm.fit`` iteration, for the two designs metafor fits.

    ``saturated=False`` is the intercept-only model (metafor's common-effect ``rma.glmm``);
    ``saturated=True`` gives every row its own logit (metafor's model for ``QE.Wld``/``QE.LRT``).
    Mimicking R's iteration (start values, convergence rule on the deviance, weights taken from
    the last weighted least-squares step) matters for rows with 0 or n events, whose logits
    diverge: R stops after a finite number of steps and its Wald statistic depends on where it
    stopped. For the saturated design the WLS step reduces to a per-row Newton step, because the
    design spans every row (IRLS is invariant to a reparametrisation of the same column space).
    """
    y = np.where(n > 0, x / n, 0.0)
    mu = (n * y + 0.5) / (n + 1.0)  # binomial()$initialize
    eta = np.log(mu / (1.0 - mu))
    mu = _r_linkinv(eta)
    devold = _binom_dev(y, mu, n)
    converged = False
    w2 = n * _r_mu_eta(eta) ** 2 / (mu * (1.0 - mu))
    for _ in range(_GLM_MAXIT):
        mu_eta = _r_mu_eta(eta)
        z = eta + (y - mu) / mu_eta
        w2 = n * mu_eta**2 / (mu * (1.0 - mu))
        if saturated:
            eta = z
        else:
            eta = np.full_like(eta, np.sum(w2 * z) / np.sum(w2))
        mu = _r_linkinv(eta)
        dev = _binom_dev(y, mu, n)
        if abs(dev - devold) / (abs(dev) + 0.1) < _GLM_EPSILON:
            converged = True
            break
        devold = dev
    return _GlmFit(eta=eta, weight=w2, loglik=_binom_logpmf(x, n, mu), converged=converged)


# Probabilists' Gauss-Hermite rule: nodes z_j and weights w_j with sum_j w_j f(z_j) ~ E f(Z),
# Z ~ N(0, 1); the same rule as lme4's GHrule(7).
_GH_Z, _GH_W = np.polynomial.hermite_e.hermegauss(N_AGQ)
_GH_LOGW = np.log(_GH_W / np.sqrt(2.0 * np.pi))


def _conditional_modes(
    beta: float,
    tau: float,
    x: NDArray[np.float64],
    n: NDArray[np.float64],
    u0: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """Mode of ``h(u) = x (beta + tau u) - n log(1 + e^(beta + tau u)) - u^2/2`` per row.

    ``h`` is strictly concave (h'' <= -1), its root of ``h'`` lies in ``[tau (x - n), tau x]``
    (for tau >= 0; mirrored for tau < 0), so a Newton iteration safeguarded by bisection on that
    bracket always converges, from any start ``u0`` (a warm start only saves iterations).
    """
    lo = np.minimum(tau * (x - n), tau * x)
    hi = np.maximum(tau * (x - n), tau * x)
    if u0 is None:
        u0 = tau * (x - n * _expit(np.full_like(x, beta)))
    u = np.clip(u0, lo, hi)
    for _ in range(200):
        mu = _expit(beta + tau * u)
        g = tau * (x - n * mu) - u  # h'(u), decreasing in u
        lo = np.where(g > 0, u, lo)
        hi = np.where(g < 0, u, hi)
        hess = tau * tau * n * mu * (1.0 - mu) + 1.0  # -h''(u) >= 1
        new = u + g / hess
        # Accept the Newton step only strictly inside the bracket, otherwise bisect: far from the
        # mode (|tau| large, rows near 0 or n) plain Newton can jump between the two ends.
        outside = (new <= lo) | (new >= hi)
        new = np.where(outside & (hi > lo), 0.5 * (lo + hi), new)
        if np.all(np.abs(new - u) <= 1e-13 * (1.0 + np.abs(u))):
            return new
        u = new
    # Not reached in practice (the bracket halves whenever Newton is rejected); kept as a
    # guarantee: solve each row's h'(u) = 0 by Brent's root finder on its bracket.
    out = np.empty_like(u)
    for i in range(u.size):
        a = min(tau * (x[i] - n[i]), tau * x[i])
        b = max(tau * (x[i] - n[i]), tau * x[i])
        if a == b:
            out[i] = a
            continue
        out[i] = optimize.brentq(lambda v: tau * (x[i] - n[i] * _expit(beta + tau * v)) - v, a, b, xtol=1e-14)
    return out


def _row_logliks(
    beta: float,
    tau: float,
    x: NDArray[np.float64],
    n: NDArray[np.float64],
    warm: dict[str, NDArray[np.float64]] | None = None,
) -> NDArray[np.float64]:
    """Per-row marginal log-likelihood (without binomial coefficients) by adaptive GH quadrature.

    ``L_i = int Bin(x_i | expit(beta + tau u)) phi(u) du``; with ``u = u_hat + s z`` (``u_hat`` the
    mode, ``s = 1 / sqrt(-h''(u_hat))``) this is ``s E[g(u_hat + s Z) / phi(Z)]`` for
    ``Z ~ N(0, 1)``, evaluated with the 7-point rule -- lme4's AGQ (it uses the same centring and
    scaling, from its penalised IRLS at the conditional modes). ``warm`` (a dict) carries the last
    modes between calls as a warm start for the next.
    """
    if tau == 0.0:
        eta = np.full_like(x, beta)
        return x * eta - n * np.logaddexp(0.0, eta)
    u_hat = _conditional_modes(beta, tau, x, n, None if warm is None else warm.get("u"))
    if warm is not None:
        warm["u"] = u_hat
    mu = _expit(beta + tau * u_hat)
    s = 1.0 / np.sqrt(tau * tau * n * mu * (1.0 - mu) + 1.0)
    u = u_hat[:, None] + s[:, None] * _GH_Z[None, :]
    eta = beta + tau * u
    log_g = x[:, None] * eta - n[:, None] * np.logaddexp(0.0, eta) - 0.5 * u * u - 0.5 * np.log(2.0 * np.pi)
    log_terms = log_g + 0.5 * _GH_Z[None, :] ** 2 + 0.5 * np.log(2.0 * np.pi) + _GH_LOGW[None, :]
    return np.log(s) + special.logsumexp(log_terms, axis=1)


def _log_binom_coef(x: NDArray[np.float64], n: NDArray[np.float64]) -> float:
    return float(np.sum(special.gammaln(n + 1) - special.gammaln(x + 1) - special.gammaln(n - x + 1)))


def glmm_loglik(beta: float, tau: float, events: ArrayLike, totals: ArrayLike) -> float:
    """Marginal log-likelihood of the random-intercept logistic model (7-point AGQ).

    Parameters
    ----------
    beta : float
        Mean logit.
    tau : float
        Between-row standard deviation of the logits (the sign is irrelevant).
    events, totals : array-like of int

    Returns
    -------
    float
        ``sum_i log int Bin(x_i | n_i, expit(beta + tau u)) phi(u) du``, binomial coefficients
        included.
    """
    x = np.asarray(events, dtype=float)
    n = np.asarray(totals, dtype=float)
    return float(np.sum(_row_logliks(float(beta), float(tau), x, n))) + _log_binom_coef(x, n)


# --------------------------------------------------------------------------------------------
# The ML fit
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _MLFit:
    beta: float
    tau: float
    se: float
    loglik: float  # without binomial coefficients
    at_upper: bool


def _profile_beta(
    tau: float,
    x: NDArray[np.float64],
    n: NDArray[np.float64],
    start: float,
    warm: dict[str, NDArray[np.float64]],
) -> tuple[float, float]:
    """Maximise the AGQ log-likelihood over beta for fixed tau; returns (beta, loglik).

    The exact marginal likelihood is log-concave in beta (an integral of a log-concave
    function, Prekopa), so Brent's search from a bracket around ``start`` finds the maximum;
    ``xtol`` 1e-10 (relative) puts beta far inside the 1e-4 agreement asked of the engine.
    """

    def negll(b: float) -> float:
        return -float(np.sum(_row_logliks(b, tau, x, n, warm)))

    width = 0.5 + tau
    res = optimize.minimize_scalar(
        negll, bracket=(start - width, start + width), method="brent", options={"xtol": 1e-10}
    )
    return float(res.x), -float(res.fun)


def _fit_ml(x: NDArray[np.float64], n: NDArray[np.float64], beta_start: float) -> _MLFit:
    """ML estimate of (beta, tau) and the standard error of beta.

    tau is profiled out of beta: a coarse search over [0, _TAU_MAX] (so that Brent does not
    settle in a local optimum), then Brent's bounded method on the bracket around the best grid
    point. tau = 0 is kept exactly when the profile likelihood is not higher inside the domain
    (the boundary estimate lme4 returns, theta = 0).
    """
    warm: dict[str, NDArray[np.float64]] = {}
    cache: dict[float, tuple[float, float]] = {}

    def prof(tau: float) -> tuple[float, float]:
        key = float(tau)
        if key not in cache:
            start = cache[min(cache, key=lambda t: abs(t - key))][0] if cache else beta_start
            cache[key] = _profile_beta(key, x, n, start, warm)
        return cache[key]

    grid = np.concatenate([[0.0], np.geomspace(0.05, _TAU_MAX, 18)])
    values = np.array([prof(t)[1] for t in grid])
    i = int(np.argmax(values))
    lo = grid[max(i - 1, 0)]
    hi = grid[min(i + 1, len(grid) - 1)]
    res = optimize.minimize_scalar(
        lambda t: -prof(t)[1], bounds=(lo, hi), method="bounded", options={"xatol": 1e-9}
    )
    tau_hat, ll_hat = float(res.x), -float(res.fun)
    # The profile is flat near tau = 0 (it changes with tau^2), so Brent can stop at tau ~ 1e-9
    # with a log-likelihood gain at rounding level; such a gain (< 1e-12 relative) is no evidence
    # against the boundary, which is then reported exactly (lme4 returns theta = 0 there).
    if prof(0.0)[1] >= ll_hat - 1e-12 * max(1.0, abs(ll_hat)):
        tau_hat, ll_hat = 0.0, prof(0.0)[1]
    beta_hat = prof(tau_hat)[0]
    at_upper = tau_hat >= grid[-2]

    se = _se_beta(beta_hat, tau_hat, x, n)
    return _MLFit(beta=beta_hat, tau=tau_hat, se=se, loglik=ll_hat, at_upper=at_upper)


def _se_beta(beta: float, tau: float, x: NDArray[np.float64], n: NDArray[np.float64]) -> float:
    """Standard error of beta as lme4's ``vcov`` gives it for a GLMM.

    lme4 inverts the finite-difference Hessian of the deviance in (theta = tau, beta) and takes
    the beta block, so the uncertainty in tau is propagated. At tau = 0 the deviance is even in
    tau, the cross term vanishes and the beta block is just the inverse curvature in beta (also
    what lme4 falls back to if the tau curvature is zero).
    """

    def dev(t: float, b: float) -> float:
        return -2.0 * float(np.sum(_row_logliks(b, abs(t), x, n)))

    d = _HESS_DELTA
    f0 = dev(tau, beta)
    h_bb = (dev(tau, beta + d) - 2 * f0 + dev(tau, beta - d)) / d**2
    h_tt = (dev(tau + d, beta) - 2 * f0 + dev(tau - d, beta)) / d**2
    h_tb = (
        dev(tau + d, beta + d) - dev(tau + d, beta - d) - dev(tau - d, beta + d) + dev(tau - d, beta - d)
    ) / (4 * d**2)
    if tau == 0.0 or h_tt <= 0.0:
        var = 2.0 / h_bb
    else:
        hess = np.array([[h_tt, h_tb], [h_tb, h_bb]])
        var = 2.0 * float(np.linalg.inv(hess)[1, 1])
        if not var > 0.0:
            var = 2.0 / h_bb
    return math.sqrt(var)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _validate(
    events: ArrayLike, totals: ArrayLike, labels: Sequence[str] | None, level: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], list[str]]:
    try:
        x_raw = np.asarray(events, dtype=float).ravel()
        n_raw = np.asarray(totals, dtype=float).ravel()
    except (TypeError, ValueError) as exc:
        raise InputError(f"events and totals must be numbers ({exc}).") from exc
    if x_raw.size != n_raw.size:
        raise InputError(f"events has {x_raw.size} values but totals has {n_raw.size}; give one per row.")
    if x_raw.size < 2:
        raise InputError(f"need at least two rows to pool, got {x_raw.size}.")
    if not (np.all(np.isfinite(x_raw)) and np.all(np.isfinite(n_raw))):
        raise InputError("events and totals must be finite numbers (no NaN or infinity).")
    if np.any(x_raw != np.round(x_raw)) or np.any(n_raw != np.round(n_raw)):
        raise InputError("events and totals must be whole numbers (counts).")
    if np.any(n_raw <= 0):
        bad = [int(i) + 1 for i in np.flatnonzero(n_raw <= 0)]
        raise InputError(f"every total must be at least 1; rows {bad} are not.")
    if np.any(x_raw < 0) or np.any(x_raw > n_raw):
        bad = [int(i) + 1 for i in np.flatnonzero((x_raw < 0) | (x_raw > n_raw))]
        raise InputError(f"events must lie between 0 and the row total; rows {bad} do not.")
    if not (0.0 < level < 1.0):
        raise InputError(f"level must be between 0 and 1 (e.g. 0.95), got {level}.")
    if labels is None:
        labs = [str(i + 1) for i in range(x_raw.size)]
    else:
        labs = [str(s) for s in labels]
        if len(labs) != x_raw.size:
            raise InputError(f"{len(labs)} labels for {x_raw.size} rows; give one label per row.")
    return x_raw, n_raw, labs


def _wald(beta: float, se: float, level: float) -> PooledEstimate:
    zcrit = float(stats.norm.ppf(0.5 + level / 2.0))
    lb, ub = beta - zcrit * se, beta + zcrit * se
    z = beta / se
    return PooledEstimate(
        proportion=float(_expit(beta)),
        lower=float(_expit(lb)),
        upper=float(_expit(ub)),
        logit=beta,
        se=se,
        z=z,
        p=float(2.0 * stats.norm.sf(abs(z))),
    )


def _typical_variance(x: NDArray[np.float64], n: NDArray[np.float64]) -> tuple[NDArray[np.float64], float]:
    """Within-row logit variances (0.5 added to 0/n rows, metafor's ``escalc`` default) and vt."""
    add = np.where((x == 0) | (x == n), 0.5, 0.0)
    vi = 1.0 / (x + add) + 1.0 / (n - x + add)
    w = 1.0 / vi
    k = x.size
    vt = (k - 1) * np.sum(w) / (np.sum(w) ** 2 - np.sum(w**2))
    return vi, float(vt)


def metaprop(
    events: ArrayLike,
    totals: ArrayLike,
    labels: Sequence[str] | None = None,
    level: float = 0.95,
) -> MetapropResult:
    """Meta-analysis of single proportions with R ``meta::metaprop``'s default model.

    Parameters
    ----------
    events : array-like of int
        Events per row (e.g. experiments implicating a category).
    totals : array-like of int
        Observations per row (e.g. all experiments).
    labels : sequence of str, optional
        Row labels (default "1", "2", ...).
    level : float
        Confidence level for every interval (meta's ``level`` and ``level.ma``).

    Returns
    -------
    MetapropResult

    Raises
    ------
    InputError
        Fewer than two rows, non-integer or negative counts, events above totals, totals of 0,
        mismatched lengths, or a level outside (0, 1).

    Notes
    -----
    * Random effects: ML fit of the random-intercept logistic GLMM with 7-point adaptive
      Gauss--Hermite quadrature; Wald CI ``beta +/- z se`` back-transformed; ``se`` from the
      inverse Hessian of the deviance in (tau, beta), as lme4. tau^2 may be exactly 0 (boundary).
    * Common effect and heterogeneity tests follow R's ``glm`` iteration (see ``_glm_irls``).
    * Weights: meta shows no weights for a GLMM (``w.common``/``w.random`` are NA). The rows'
      ``weight_common``/``weight_random`` are the inverse-variance weights of the logit
      approximation, ``1 / v_i`` and ``1 / (v_i + tau^2)`` with ``v_i`` as for I^2, normalised to
      100%; they indicate each row's influence but are not the GLMM's weights.
    * Degenerate tables (every row 0 events, or every row n events): the likelihood has no
      maximum (the pooled logit runs to -inf/+inf). R's ``rma.glmm(method = "ML")`` stops with
      "Cannot fit ML model" and meta falls back to the common-effect ``glm``, whose estimate
      (logit about -25) and standard error (about 5e4) give the interval 0 to 1. Here both
      pooled estimates are the boundary value 0 (or 1) with the exact Clopper--Pearson interval
      of the summed counts (what the common-effect binomial model gives exactly), tau^2 = 0,
      Q = Q_lrt = 0 (all rows identical on the boundary), p = 1, and ``degenerate`` is set.
    * Separated tables (every row at 0 or at n, both present): the common effect is finite, but
      the GLMM likelihood rises without bound in tau^2; the random-effects estimate is NaN,
      tau^2 = inf and ``degenerate = "separated"``.
    """
    x, n, labs = _validate(events, totals, labels, level)
    k = x.size
    lower, upper = clopper_pearson(x, n, level)
    vi, vt = _typical_variance(x, n)
    notes: list[str] = []

    def rows_with(tau2: float) -> tuple[RowResult, ...]:
        wc = 1.0 / vi
        wr = 1.0 / (vi + tau2)
        wc, wr = 100 * wc / wc.sum(), 100 * wr / wr.sum()
        return tuple(
            RowResult(labs[i], int(x[i]), int(n[i]), float(x[i] / n[i]), float(lower[i]), float(upper[i]),
                      float(wc[i]), float(wr[i]))
            for i in range(k)
        )

    degenerate = "all_zero" if np.all(x == 0) else "all_events" if np.all(x == n) else None
    if degenerate is not None:
        tot_x, tot_n = x.sum(), n.sum()
        lo, up = clopper_pearson([tot_x], [tot_n], level)
        p0 = 0.0 if degenerate == "all_zero" else 1.0
        logit = -math.inf if degenerate == "all_zero" else math.inf
        est = PooledEstimate(p0, float(lo[0]), float(up[0]), logit, math.nan, math.nan, math.nan)
        het = Heterogeneity(0.0, 0.0, 0.0, 1.0, vt, 0.0, k - 1, 1.0, 0.0, 1.0)
        word = "zero" if degenerate == "all_zero" else "all"
        notes.append(
            f"Every row has {word} events: the ML estimate lies on the boundary (pooled "
            f"proportion {p0:g}); the interval is the exact Clopper-Pearson interval of the summed "
            f"counts {int(tot_x)}/{int(tot_n)}. R's rma.glmm cannot fit this table."
        )
        return MetapropResult(rows_with(0.0), est, est, het, level, _binom_logpmf(x, n, np.full(k, p0)),
                              degenerate, tuple(notes))

    # Common effect and the saturated model, by R's glm iteration (metafor's ll.FE / ll.QE).
    fe = _glm_irls(x, n, saturated=False)
    sat = _glm_irls(x, n, saturated=True)
    beta_fe = float(fe.eta[0])
    common = _wald(beta_fe, math.sqrt(1.0 / float(np.sum(fe.weight))), level)
    if not (fe.converged and sat.converged):
        notes.append("A logistic GLM (common-effect or saturated model) did not converge in 25 iterations, "
                     "as R's glm would warn; the common-effect estimate or Q may be inaccurate.")

    # Wald statistic of the saturated model's row logits against their common value. metafor
    # inverts the covariance of the k - 1 contrasts with the last row; this closed form is the
    # same quantity without that (for rows with 0 or n events ill-conditioned) inversion, so R's
    # value can differ in the 7th significant digit there.
    w = sat.weight
    eta_bar = float(np.sum(w * sat.eta) / np.sum(w))
    q_wald = max(float(np.sum(w * (sat.eta - eta_bar) ** 2)), 0.0)
    q_lrt = max(-2.0 * (fe.loglik - sat.loglik), 0.0)
    df = k - 1

    if np.all((x == 0) | (x == n)):
        # Rows at 0 and rows at n, nothing in between: the GLMM likelihood keeps rising as
        # tau -> infinity, so there is no ML estimate (R returns an arbitrary huge tau^2).
        nan = math.nan
        het = Heterogeneity(math.inf, math.inf, 100.0, math.inf, vt, q_wald, df, float(stats.chi2.sf(q_wald, df)),
                            q_lrt, float(stats.chi2.sf(q_lrt, df)))
        notes.append(
            "Every row has either 0 or all events: the random-effects likelihood increases without bound as "
            "tau^2 grows, so no random-effects estimate exists (R's rma.glmm reports an arbitrary huge tau^2). "
            "Only the common-effect estimate is given."
        )
        return MetapropResult(rows_with(0.0), common, PooledEstimate(nan, nan, nan, nan, nan, nan, nan), het,
                              level, nan, "separated", tuple(notes))

    ml = _fit_ml(x, n, beta_fe)
    tau2 = ml.tau**2
    random = _wald(ml.beta, ml.se, level)
    het = Heterogeneity(
        tau2=tau2,
        tau=ml.tau,
        I2=100.0 * tau2 / (vt + tau2),
        H2=tau2 / vt + 1.0,
        vt=vt,
        Q=q_wald,
        df=df,
        p=float(stats.chi2.sf(q_wald, df)),
        Q_lrt=q_lrt,
        p_lrt=float(stats.chi2.sf(q_lrt, df)),
    )
    if ml.tau == 0.0:
        notes.append("tau^2 is estimated at the boundary 0: the random-effects and common-effect models coincide.")
    if ml.at_upper:
        notes.append(
            "tau^2 did not converge (the likelihood keeps rising as tau^2 grows, typical when rows sit at 0 "
            "and at n with little in between); the random-effects result is unreliable."
        )
    if np.any((x == 0) | (x == n)):
        notes.append(
            "Rows with 0 or n events enter the GLMM without continuity correction; 0.5 is added only for the "
            "typical within-row variance behind I^2 and the approximate weights (metafor's convention)."
        )
    return MetapropResult(
        rows=rows_with(tau2),
        common=common,
        random=random,
        heterogeneity=het,
        level=level,
        loglik=ml.loglik + _log_binom_coef(x, n),
        degenerate=None,
        notes=tuple(notes),
    )


def _q_between(groups: Mapping[str, MetapropResult], which: str) -> SubgroupTest:
    """Cochran's Q of the subgroups' logit estimates with weights 1/se^2 (meta's Q.b).

    Subgroups without a finite estimate (degenerate tables) contribute nothing: in R their
    standard error is huge, so their weight, and their term, vanish. df stays G - 1 as in meta
    (``k - 1 - sum(k_w - 1)``), which counts every subgroup.
    """
    included = [
        g for g, r in groups.items()
        if math.isfinite(getattr(r, which).logit) and math.isfinite(getattr(r, which).se)
    ]
    est = np.array([getattr(groups[g], which).logit for g in included])
    se = np.array([getattr(groups[g], which).se for g in included])
    if est.size >= 2:
        w = 1.0 / se**2
        q = float(np.sum(w * (est - np.sum(w * est) / np.sum(w)) ** 2))
    else:
        q = 0.0
    df = len(groups) - 1
    return SubgroupTest(Q=q, df=df, p=float(stats.chi2.sf(q, df)), included=tuple(included))


def metaprop_subgroups(
    events_by_group: Mapping[str, ArrayLike],
    totals: ArrayLike | Mapping[str, ArrayLike],
    labels: Sequence[str] | None = None,
    level: float = 0.95,
) -> MetapropSubgroups:
    """Subgroup analysis (e.g. per direction of effect) and the test for subgroup differences.

    Parameters
    ----------
    events_by_group : mapping of str to array-like of int
        Events per row for each subgroup, e.g. ``{"CIPN > control": [...], "CIPN < control":
        [...]}``. Directional subgroups count direction-specific events over the same cells.
    totals : array-like of int, or mapping of str to array-like
        Row totals, shared by every subgroup (directional counts), or one array per subgroup.
    labels : sequence of str, optional
        Row labels, shared by the subgroups.
    level : float

    Returns
    -------
    MetapropSubgroups
        Each subgroup's :func:`metaprop` result and the tests for subgroup differences.

    Notes
    -----
    As meta's ``subgroup()`` without a common tau^2 (``tau.common = FALSE``, the default):
    ``Q_b = sum_g w_g (b_g - b_bar)^2`` with ``b_g`` the subgroup's pooled logit and
    ``w_g = 1/se_g^2``, df = G - 1 (random-effects ``Q.b.random``; same on the common-effect
    estimates for ``Q.b.common``). No overall pooled estimate across subgroups is given: with
    directional counts the same cells appear in every subgroup, so pooling them would count
    each cell's total twice.
    """
    if not isinstance(events_by_group, Mapping) or len(events_by_group) < 2:
        raise InputError("events_by_group must map at least two subgroup names to their events.")
    groups: dict[str, MetapropResult] = {}
    notes: list[str] = []
    for name, ev in events_by_group.items():
        if isinstance(totals, Mapping):
            if name not in totals:
                raise InputError(f"no totals given for subgroup '{name}'.")
            tot = totals[name]
        else:
            tot = totals
        try:
            groups[str(name)] = metaprop(ev, tot, labels=labels, level=level)
        except InputError as exc:
            raise InputError(f"subgroup '{name}': {exc}") from exc
    for name, res in groups.items():
        if res.degenerate is not None:
            notes.append(
                f"Subgroup '{name}' is degenerate ({res.degenerate}): where it has no finite estimate it adds "
                "nothing to Q between (in R its huge SE makes its weight vanish), so the test says nothing about it; df "
                "still counts it, as meta does."
            )
    return MetapropSubgroups(
        groups=groups,
        test_random=_q_between(groups, "random"),
        test_common=_q_between(groups, "common"),
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _parse_ints(text: str, what: str) -> list[int]:
    parts = [p.strip() for p in text.split(",") if p.strip() != ""]
    if not parts:
        raise InputError(f"--{what} is empty; give comma-separated counts such as 3,2,2,1,1.")
    out = []
    for p in parts:
        try:
            out.append(int(p))
        except ValueError as exc:
            raise InputError(f"--{what}: '{p}' is not a whole number.") from exc
    return out


def _fmt(v: float, spec: str = ".4f") -> str:
    return format(v, spec) if math.isfinite(v) else "n.e."


def _fmt_row_table(res: MetapropResult) -> str:
    """Readable table in metaprop's print layout (n.e. = not estimable)."""
    lvl = f"{100 * res.level:g}%-CI"
    width = max(14, *(len(r.label) for r in res.rows))
    lines = [f"{'':{width}}  {'events/total':>12}  {'proportion':>10}  {lvl:^18}  {'weight*':>7}"]
    for r in res.rows:
        lines.append(
            f"{r.label:{width}}  {f'{r.events}/{r.total}':>12}  {r.proportion:10.4f}  "
            f"[{r.lower:.4f}; {r.upper:.4f}]  {r.weight_random:6.1f}%"
        )
    c, rnd, h = res.common, res.random, res.heterogeneity
    lines += [
        "",
        f"{'Common effect':{width}}  {f'{res.events}/{res.total}':>12}  {_fmt(c.proportion):>10}  "
        f"[{_fmt(c.lower)}; {_fmt(c.upper)}]",
        f"{'Random effects':{width}}  {'':>12}  {_fmt(rnd.proportion):>10}  [{_fmt(rnd.lower)}; {_fmt(rnd.upper)}]",
        "",
        f"Heterogeneity: I^2 = {h.I2:.1f}%, tau^2 = {h.tau2:.4g}, tau = {h.tau:.4g}",
        f"Wald-type Q = {h.Q:.4f} (df = {h.df}), p = {h.p:.4f}",
        f"Likelihood-ratio Q = {h.Q_lrt:.4f} (df = {h.df}), p = {h.p_lrt:.4f}",
        "Random effects: logistic GLMM, ML, 7-point adaptive Gauss-Hermite; rows: Clopper-Pearson CIs.",
        "* approximate inverse-variance weights (random effects); meta prints none for a GLMM.",
    ]
    lines += [f"Note: {s}" for s in res.notes]
    return "\n".join(lines)


def _run_cli(args: argparse.Namespace) -> int:
    events = _parse_ints(args.events, "events")
    totals = _parse_ints(args.totals, "totals")
    labels = None
    if args.labels is not None:
        labels = [s.strip() for s in args.labels.split(",")]
    res = metaprop(events, totals, labels=labels, level=args.level)
    if args.json:
        print(res.to_json())
    else:
        print(_fmt_row_table(res))
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``metaprop`` command to the top-level parser.

    Example: ``python -m painmeta metaprop --events 3,2,2,1,1 --totals 6,6,6,6,6 --json``.
    """
    p = subparsers.add_parser(
        "metaprop",
        help="pool single proportions (meta::metaprop defaults: logistic GLMM, Clopper-Pearson rows)",
        description=(
            "Meta-analysis of single proportions as R's meta::metaprop does by default: random-intercept "
            "logistic GLMM by ML with 7-point adaptive Gauss-Hermite quadrature, Wald CI on the logit scale, "
            "Clopper-Pearson row intervals, Wald and likelihood-ratio tests of heterogeneity."
        ),
    )
    p.add_argument("--events", required=True, help="comma-separated events per row, e.g. 3,2,2,1,1")
    p.add_argument("--totals", required=True, help="comma-separated totals per row, e.g. 6,6,6,6,6")
    p.add_argument("--labels", default=None, help="comma-separated row labels")
    p.add_argument("--level", type=float, default=0.95, help="confidence level (default 0.95)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_run_cli)
    return p


# --------------------------------------------------------------------------- stage: pooling ROI counts


@dataclass(frozen=True)
class LevelAnalysis:
    """Proportion meta-analysis of one ROI matrix level (experiment or study).

    Attributes
    ----------
    level : str
        ``"experiment"`` or ``"study"``.
    overall : MetapropResult or None
        Networks pooled, events = entries implicating the network, n = entries in the matrix.
    subgroups : MetapropSubgroups or None
        Direction-specific events over the same n, with the test for subgroup differences.
    skipped : str
        Why nothing was pooled (empty when pooled).
    """

    level: str
    overall: MetapropResult | None
    subgroups: MetapropSubgroups | None
    skipped: str = ""

    def summary(self, labels: Mapping[str, str] | None = None) -> "pd.DataFrame":
        """One row per pooled estimate (overall and each direction) with CI and heterogeneity."""
        import pandas as pd

        rows = []
        parts: list[tuple[str, MetapropResult]] = []
        if self.overall is not None:
            parts.append(("overall", self.overall))
        if self.subgroups is not None:
            parts.extend(self.subgroups.groups.items())
        for name, res in parts:
            het = res.heterogeneity
            rows.append({
                "level": self.level, "subgroup": (labels or {}).get(name, name),
                "k": res.k, "events": res.events, "total": res.total,
                "pooled": res.random.proportion, "lower": res.random.lower, "upper": res.random.upper,
                "common": res.common.proportion, "tau2": het.tau2, "I2_percent": het.I2,
                "Q": het.Q, "df": het.df, "Q_p": het.p, "Q_lrt": het.Q_lrt, "Q_lrt_p": het.p_lrt,
                "note": res.degenerate or "",
            })
        return pd.DataFrame(rows)


def pool_roi_counts(counts: "pd.DataFrame", level: str, subgroups: Sequence[str] = ("patients>controls",
                                                                                     "patients<controls"),
                    ci_level: float = 0.95) -> LevelAnalysis:
    """Pool the ROI counts of one level as the review did (``meta::metaprop`` defaults).

    Parameters
    ----------
    counts : pandas.DataFrame
        Long counts from :func:`painmeta.roi.counts` (columns ``level``,
        ``subgroup``, ``network``, ``label``, ``order``, ``events``, ``n``).
    level : {"experiment", "study"}
    subgroups : sequence of str
        Direction codes pooled as subgroups (events of that direction over the same n).
    ci_level : float
        Confidence level.

    Returns
    -------
    LevelAnalysis
        ``skipped`` says why when the matrix is empty (e.g. no region-level findings).
    """
    sub = counts[counts["level"] == level].sort_values("order")
    overall = sub[sub["subgroup"] == "overall"]
    if overall.empty or int(overall["n"].max()) == 0:
        return LevelAnalysis(level, None, None, f"no {level} entered the ROI matrix (no region-level findings)")
    labels = overall["label"].tolist()
    res = metaprop(overall["events"].to_numpy(int), overall["n"].to_numpy(int), labels=labels, level=ci_level)
    by_group = {}
    for code in subgroups:
        g = sub[sub["subgroup"] == code]
        if len(g) == len(overall):
            by_group[code] = g["events"].to_numpy(int)
    sg = (metaprop_subgroups(by_group, overall["n"].to_numpy(int), labels=labels, level=ci_level)
          if by_group else None)
    return LevelAnalysis(level, res, sg)


def analyse_levels(counts: "pd.DataFrame", config: Any) -> dict[str, LevelAnalysis]:
    """Pool every level named in ``config.proportions.levels``.

    Parameters
    ----------
    counts : pandas.DataFrame
        Long ROI counts (:func:`painmeta.roi.counts` for both levels).
    config : DatasetConfig

    Returns
    -------
    dict of str to LevelAnalysis
    """
    pc = config.proportions
    return {lvl: pool_roi_counts(counts, lvl, pc.subgroups, pc.ci_level) for lvl in pc.levels}


#: The one line a page shows instead of empty tables and figures when no ROI matrix has an entry.
NOTHING_TO_POOL = "No region-level findings, so there is no proportion to pool."


def nothing_to_pool(counts: "pd.DataFrame") -> str | None:
    """The one line to show instead of 0/0 tables and empty forest plots, or None when something can be pooled.

    Parameters
    ----------
    counts : pandas.DataFrame
        Long ROI counts (:func:`painmeta.roi.counts`), columns ``level``, ``subgroup``, ``n``, ...

    Returns
    -------
    str or None
        :data:`NOTHING_TO_POOL` when no level has an entry (every ``n`` is 0, or there are no counts).
    """
    if counts is None or counts.empty or int(counts["n"].max()) == 0:
        return NOTHING_TO_POOL
    return None


def write_tables(analyses: Mapping[str, LevelAnalysis], folder: Path | str,
                 labels: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Write ``proportions_summary.csv`` and ``proportions_rows.csv`` (per network and subgroup).

    Parameters
    ----------
    analyses : mapping of level to LevelAnalysis
    folder : path-like
        Usually ``data/processed/<dataset>``.
    labels : mapping, optional
        Direction code -> display label for the ``subgroup`` column.

    Returns
    -------
    dict of str to Path
    """
    from pathlib import Path

    import pandas as pd

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    summaries, rows = [], []
    for level, la in analyses.items():
        if la.overall is None:
            summaries.append(pd.DataFrame([{"level": level, "subgroup": "overall", "note": la.skipped}]))
            continue
        summaries.append(la.summary(labels))
        parts = [("overall", la.overall)] + (list(la.subgroups.groups.items()) if la.subgroups else [])
        for name, res in parts:
            frame = res.to_frame()
            frame.insert(0, "subgroup", (labels or {}).get(name, name))
            frame.insert(0, "level", level)
            rows.append(frame)
    out = {"proportions_summary.csv": folder / "proportions_summary.csv",
           "proportions_rows.csv": folder / "proportions_rows.csv"}
    pd.concat(summaries, ignore_index=True).to_csv(out["proportions_summary.csv"], index=False)
    (pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()).to_csv(out["proportions_rows.csv"], index=False)
    return out
