"""Drift statistics against a reference profile, and the pure drift verdict.

Pure numpy at import time: scipy (p-values) and pandas (category matching) are imported lazily
inside the functions that need them. No Airflow import.

The monitor never reloads training data: it compares a day's columns with a *reference profile*
saved next to the model at training time. The profile is built only by this module
(``profile_feature_numeric``, ``profile_feature_categorical``, ``build_profile``) so that the writer
and the reader cannot disagree on its format.

Profile format (JSON-serialisable: lists, ints, floats, strings; no NaN, no infinity)
-----------------------------------------------------------------------------------
::

    {
      "format": "mlops.drift/v1",
      "features": {
        "<numeric feature>": {
          "kind": "numeric",
          "inner_edges": [e_1, ..., e_k],   # sorted, unique, finite; k may be 0
          "counts": [c_0, ..., c_k, c_missing],   # k + 2 ints
          "sample": [s_1, ..., s_n],        # sorted finite floats, seeded draw without replacement
          "n": int                          # rows profiled (missing included)
        },
        "<categorical feature>": {
          "kind": "categorical",
          "categories": ["a", "b", ...],    # the known categories, in order
          "counts": [c_a, c_b, ..., c_unseen, c_missing],   # len(categories) + 2 ints
          "n": int
        }
      },
      "prediction": <numeric entry for the champion's scores on reference data> | null
    }

Numeric bins are ``(-inf, e_1], (e_1, e_2], ..., (e_k, +inf]`` plus a trailing *missing* (NaN)
bin. JSON has no infinity, so the profile stores only the inner edges; ``quantile_edges`` returns
the full edges with the ``-inf``/``+inf`` ends, and ``bin_counts`` takes those full edges.
``±inf`` values fall into the outer bins; the KS sample and the KS test use finite values only.

Statistics
----------
``compute_drift`` returns ``{"n_rows", "features", "prediction", "missing_features"}`` where each
numeric feature (and the prediction) has ``{"psi", "ks", "ks_pvalue"}`` and each categorical
feature ``{"psi", "chi2", "chi2_pvalue", "js"}``; an undefined value (no current values) is
``None``. ``decide`` turns that, the thresholds and the history of earlier days into a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

PROFILE_FORMAT = "mlops.drift/v1"
DEFAULT_BINS = 10
DEFAULT_SAMPLE_SIZE = 20_000


# --------------------------------------------------------------------------------------------
# binning
# --------------------------------------------------------------------------------------------


def quantile_edges(values: np.ndarray, n_bins: int = DEFAULT_BINS) -> np.ndarray:
    """Equal-frequency bin edges: ``[-inf, unique interior quantiles..., +inf]``.

    Edges are data values (``method="inverted_cdf"``); NaN and ±inf are ignored when placing them.
    Tied quantiles collapse into one edge, so a discrete column gets fewer bins; a constant column gets ``[-inf, c, +inf]`` (everything in the
    first bin, an empty second bin) and an empty or all-NaN column ``[-inf, +inf]`` (one bin).
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0 or n_bins == 1:
        return np.array([-np.inf, np.inf])
    # inverted_cdf picks actual data values (smallest x with F(x) >= q): with right-closed bins
    # that is exactly equal-frequency, and discrete columns get one bin per value instead of
    # interpolated edges such as 0.4 or 0.99999999 between two integers.
    inner = np.unique(np.quantile(v, np.arange(1, n_bins) / n_bins, method="inverted_cdf"))
    return np.concatenate(([-np.inf], inner, [np.inf]))


def _inner(edges: np.ndarray | Sequence[float]) -> np.ndarray:
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2:
        raise ValueError("edges need at least two values (use quantile_edges)")
    if np.isnan(e).any() or (e.size > 2 and np.any(np.diff(e) <= 0)):
        raise ValueError("edges must be strictly increasing and not NaN")
    return e[1:-1]


def bin_counts(values: np.ndarray, edges: np.ndarray | Sequence[float]) -> np.ndarray:
    """Counts per bin ``(-inf, e_1], ..., (e_k, +inf]`` plus a trailing missing (NaN) bin.

    ``edges`` are full edges as returned by ``quantile_edges``; the outer bins are open-ended
    whatever the outer edge values are. Returns ``len(edges) - 1 + 1`` int64 counts.
    """
    inner = _inner(edges)
    v = np.asarray(values)
    if v.dtype.kind not in "fiub":
        v = np.asarray(v, dtype=np.float64)
    # Searching against [inner..., +inf] with side="left" maps x <= e_j to bin j, +inf to the last
    # value bin, and NaN (sorted after +inf by numpy's documented order) to the missing bin.
    idx = np.searchsorted(np.append(inner, np.inf), v.ravel(), side="left")
    return np.bincount(idx, minlength=inner.size + 2).astype(np.int64)


def _category_key(value: Any) -> str:
    # The configured categories are strings: a value matches by its text, and an integral float
    # (an int column read with nulls becomes float) by the int's text, so 1.0 matches "1".
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def category_counts(values: Any, categories: Sequence[str]) -> np.ndarray:
    """Counts per known category, then one bin for unseen categories, then one for missing.

    Missing is whatever ``pandas.isna`` says (None, NaN, NaT, pd.NA). Values of any dtype (ints,
    floats, bools, mixed object arrays) are matched by their text (``_category_key``), since the
    configured categories are strings: ``[1, 2.0, None]`` counts as ``"1"``, ``"2"``, missing.
    """
    import pandas as pd  # lazy: hash-based matching, much faster than np.unique on objects

    arr = (
        values
        if isinstance(values, pd.Series | pd.Categorical | pd.Index)
        else np.asarray(values, dtype=object)
    )
    # Factorising first means the text of each distinct value is built once, not once per row.
    codes, uniques = pd.factorize(pd.Series(np.asarray(arr, dtype=object)), use_na_sentinel=True)
    keys = pd.Index([_category_key(u) for u in uniques], dtype=object)
    lookup = np.append(pd.Index([str(c) for c in categories], dtype=object).get_indexer(keys), -2)
    mapped = lookup[codes]  # -2: missing (factorize's NA code -1 indexes the appended -2), -1: unseen
    known = np.bincount(mapped[mapped >= 0], minlength=len(categories))
    n_missing = int((codes < 0).sum())
    n_unseen = int((mapped == -1).sum())
    return np.concatenate((known, [n_unseen, n_missing])).astype(np.int64)


# --------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------


def _check_pair(ref_counts: Any, cur_counts: Any) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(ref_counts, dtype=np.float64)
    c = np.asarray(cur_counts, dtype=np.float64)
    if r.shape != c.shape or r.ndim != 1:
        raise ValueError(f"count arrays must be 1-D and of equal length, got {r.shape} and {c.shape}")
    if (r < 0).any() or (c < 0).any():
        raise ValueError("counts must be non-negative")
    return r, c


def psi(ref_counts: Any, cur_counts: Any, eps: float = 1e-4) -> float:
    """Population stability index ``sum((c - r) * ln(c / r))`` over bin proportions.

    ``r`` and ``c`` are the reference and current proportions (counts / total). Proportions below
    ``eps`` are raised to ``eps`` (no renormalisation), so a bin empty on one side contributes
    ``(p - eps) * ln(p / eps)`` instead of infinity and a bin empty on both sides contributes 0.
    The index is symmetric in its two arguments and 0 for identical proportions. Returns NaN when
    either side has no counts at all.
    """
    r, c = _check_pair(ref_counts, cur_counts)
    rt, ct = r.sum(), c.sum()
    if rt == 0 or ct == 0:
        return math.nan
    rp = np.maximum(r / rt, eps)
    cp = np.maximum(c / ct, eps)
    return float(np.sum((cp - rp) * np.log(cp / rp)))


def psi_bias(ref_counts: Any, cur_counts: Any) -> float:
    """The PSI expected with no shift at all, from sampling noise: ``(k - 1) * (1/n + 1/m)``.

    ``k`` is the number of bins that hold a value on either side, ``n`` and ``m`` the two totals.
    PSI is a symmetrised KL divergence, and ``n * m / (n + m) * PSI`` is asymptotically
    chi-square with ``k - 1`` degrees of freedom under no shift: its mean is this value. A
    categorical with 1000 uniform levels at 10,000 rows a side has a bias of 0.2, the default
    threshold. NaN when a side has no counts.
    """
    r, c = _check_pair(ref_counts, cur_counts)
    n, m = r.sum(), c.sum()
    if n == 0 or m == 0:
        return math.nan
    k = int(((r + c) > 0).sum())
    return float(max(k - 1, 0) * (1 / n + 1 / m))


def expected_per_bin(ref_counts: Any, cur_counts: Any) -> float:
    """Rows per occupied bin on the smaller side: below ~5, a PSI (or chi-square) is mostly noise."""
    r, c = _check_pair(ref_counts, cur_counts)
    k = int(((r + c) > 0).sum())
    return float(min(r.sum(), c.sum()) / k) if k else 0.0


def _ks_pvalue(d: float, n1: int, n2: int) -> float:
    from scipy.stats import kstwo  # lazy: scipy.stats costs a few hundred ms to import

    # Exactly scipy.stats.ks_2samp(method="asymp", alternative="two-sided"): Kolmogorov's
    # two-sided distribution at the effective size round(m * n / (m + n)), clipped to [0, 1].
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = np.round(m * n / (m + n))
    if en < 1:  # only n = m = 1; scipy returns NaN here too (after a divide-by-zero warning)
        return math.nan
    return float(np.clip(kstwo.sf(d, en), 0.0, 1.0))


def _ks_both_sorted(r: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """KS on two sorted, finite float64 arrays; cost O(n log n + n log m) for n = len(r)."""
    n, m = r.size, s.size
    if n == 0 or m == 0:
        return math.nan, math.nan
    # F_ref only steps at reference values, and between two consecutive reference values F_cur is
    # monotone, so sup |F_ref - F_cur| is attained either at a reference value or just before one.
    # Evaluating both sides at the n reference values gives exactly the maximum that ks_2samp finds
    # over all n + m points (same integer counts over the same n, m), without touching s per point.
    s_lt = np.searchsorted(s, r, side="left")
    # #cur <= r_i differs from #cur < r_i only where cur holds r_i itself: search again just there
    # (continuous data: almost nowhere), saving half of the random probes into the large array.
    s_le = s_lt.copy()
    inside = s_lt < m
    tie = np.zeros(n, dtype=bool)
    tie[inside] = s[s_lt[inside]] == r[inside]
    if tie.any():
        s_le[tie] = np.searchsorted(s, r[tie], side="right")
    d_at = np.searchsorted(r, r, side="right") / n - s_le / m
    d_before = np.searchsorted(r, r, side="left") / n - s_lt / m
    d_max = max(0.0, float(d_at.max()), float(d_before.max()))
    d_min = max(0.0, -float(min(d_at.min(), d_before.min())))
    d = max(d_max, d_min)
    return d, _ks_pvalue(d, n, m)


def _check_sorted(ref_sorted: Any) -> np.ndarray:
    r = np.asarray(ref_sorted, dtype=np.float64).ravel()
    # O(n) check instead of a sort; also rejects NaN, which compares false.
    if r.size > 1 and not np.all(r[1:] >= r[:-1]):
        raise ValueError("reference sample must be sorted ascending and contain no NaN")
    return r


def _sorted_float(values: Any) -> np.ndarray:
    """Sorted float64 copy with NaN at the end; sorts in the native dtype first (cheaper)."""
    v = np.asarray(values)
    if v.dtype.kind not in "fiub":
        v = np.asarray(v, dtype=np.float64)
    s = np.sort(v.ravel())
    return s if s.dtype == np.float64 else s.astype(np.float64)


def _finite_part(s: np.ndarray) -> np.ndarray:
    # s is sorted as -inf, finite..., +inf, NaN...; searchsorted follows the same documented order.
    lo = int(np.searchsorted(s, -np.inf, side="right"))
    hi = int(np.searchsorted(s, np.inf, side="left"))
    return s[lo:hi]


def ks_2samp_sorted(ref_sorted: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """Two-sample two-sided Kolmogorov-Smirnov statistic and p-value, reference pre-sorted.

    ``ref_sorted`` must be sorted ascending (checked in O(n), never re-sorted); ``cur`` is sorted
    here once. NaN and ±inf are dropped from ``cur`` (scipy would propagate NaN). On finite data
    the statistic is bit-for-bit ``scipy.stats.ks_2samp(ref, cur).statistic`` and the p-value is
    ``scipy.stats.ks_2samp(ref, cur, method="asymp").pvalue``: the same call,
    ``scipy.stats.kstwo.sf(d, round(n*m/(n+m)))`` clipped to [0, 1] (the tests hold both to 1e-12).
    Note that ks_2samp's default method="auto" switches to an exact p-value when both samples have
    at most 10,000 values; for the sizes used here (n, m in the thousands and up) the asymptotic
    value is the relevant one. Returns ``(nan, nan)`` when either side is empty.
    """
    r = _check_sorted(ref_sorted)
    return _ks_both_sorted(_finite_part(r), _finite_part(_sorted_float(cur)))


def chi_square(ref_counts: Any, cur_counts: Any) -> tuple[float, float]:
    """Chi-square test of homogeneity on the 2 x k table (reference counts, current counts).

    This is ``scipy.stats.chi2_contingency([ref, cur], correction=False)`` with the columns that are
    empty on both sides dropped (they carry no information and would make the expected count 0).
    A bin empty only in the reference (an unseen category) keeps a positive expected count, so it
    is handled without smoothing. The two-sample test is used, not a goodness-of-fit test against
    reference proportions, because the reference counts are themselves a sample. Returns
    ``(0.0, 1.0)`` with fewer than two non-empty columns and ``(nan, nan)`` if a side is empty.
    """
    from scipy.special import chdtrc  # lazy; chdtrc is what scipy.stats.chi2.sf evaluates

    r, c = _check_pair(ref_counts, cur_counts)
    if r.sum() == 0 or c.sum() == 0:
        return math.nan, math.nan
    keep = (r + c) > 0
    table = np.vstack((r[keep], c[keep]))
    if table.shape[1] < 2:
        return 0.0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    stat = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    return stat, float(chdtrc(dof, stat))


def jensen_shannon(ref_counts: Any, cur_counts: Any) -> float:
    """Jensen-Shannon divergence in bits, in [0, 1] (0: identical, 1: disjoint support).

    This is the divergence, i.e. the square of ``scipy.spatial.distance.jensenshannon(p, q, base=2)``;
    it needs no smoothing since 0 * log 0 = 0. NaN when a side has no counts.
    """
    r, c = _check_pair(ref_counts, cur_counts)
    if r.sum() == 0 or c.sum() == 0:
        return math.nan
    p, q = r / r.sum(), c / c.sum()
    m = (p + q) / 2

    def _kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return float(np.clip((_kl(p) + _kl(q)) / 2, 0.0, 1.0))


# --------------------------------------------------------------------------------------------
# profile builders
# --------------------------------------------------------------------------------------------


def profile_feature_numeric(
    values: np.ndarray,
    n_bins: int = DEFAULT_BINS,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    seed: int = 0,
) -> dict[str, Any]:
    """Reference entry for a numeric column (format in the module docstring).

    Edges are equal-frequency over the finite values; the KS sample is a seeded draw without
    replacement of up to ``sample_size`` finite values (all of them when there are fewer), sorted.
    """
    v = np.asarray(values)
    if v.dtype.kind not in "fiub":
        v = np.asarray(v, dtype=np.float64)
    v = v.ravel()
    edges = quantile_edges(v, n_bins)
    finite = _finite_part(_sorted_float(v))
    if finite.size > sample_size:
        rng = np.random.default_rng(seed)
        finite = np.sort(rng.choice(finite, size=sample_size, replace=False))
    return {
        "kind": "numeric",
        "inner_edges": edges[1:-1].tolist(),
        "counts": bin_counts(v, edges).tolist(),
        "sample": finite.tolist(),
        "n": int(v.size),
    }


def profile_feature_categorical(values: Any, categories: Sequence[str]) -> dict[str, Any]:
    """Reference entry for a categorical column: counts per known category, unseen, missing."""
    counts = category_counts(values, categories)
    return {
        "kind": "categorical",
        "categories": [str(c) for c in categories],
        "counts": counts.tolist(),
        "n": int(counts.sum()),
    }


def build_profile(
    numeric: Mapping[str, np.ndarray],
    categorical: Mapping[str, tuple[Any, Sequence[str]]] | None = None,
    scores: np.ndarray | None = None,
    *,
    n_bins: int = DEFAULT_BINS,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    seed: int = 0,
) -> dict[str, Any]:
    """Whole profile: ``numeric`` maps name -> values, ``categorical`` name -> (values, categories).

    Each numeric column gets its own seed (``seed + position``) so adding a column later does not
    change the samples of the columns before it. ``scores`` are the champion's predictions on the
    reference data (stored as the numeric entry ``"prediction"``).
    """
    features: dict[str, Any] = {}
    for i, (name, values) in enumerate(numeric.items()):
        features[name] = profile_feature_numeric(values, n_bins, sample_size, seed + i)
    for name, (values, categories) in (categorical or {}).items():
        if name in features:
            raise ValueError(f"feature {name!r} is both numeric and categorical")
        features[name] = profile_feature_categorical(values, categories)
    prediction = None
    if scores is not None:
        prediction = profile_feature_numeric(scores, n_bins, sample_size, seed + len(numeric))
    return {"format": PROFILE_FORMAT, "features": features, "prediction": prediction}


# --------------------------------------------------------------------------------------------
# drift of one day against the profile
# --------------------------------------------------------------------------------------------


def _num(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def _numeric_drift(entry: Mapping[str, Any], values: Any) -> dict[str, float | None]:
    # One sort of the current column serves both the PSI counts and the KS statistic.
    s = _sorted_float(values)
    inner = np.asarray(entry["inner_edges"], dtype=np.float64)
    n_nan = 0 if s.size == 0 or not np.isnan(s[-1]) else s.size - int(np.searchsorted(s, np.inf, "right"))
    le = np.searchsorted(s, inner, side="right")  # values <= each inner edge (NaN never is)
    cur = np.diff(np.concatenate(([0], le, [s.size - n_nan])))
    cur = np.append(cur, n_nan)
    ref_counts = entry["counts"]
    if len(ref_counts) != cur.size:
        raise ValueError(f"profile has {len(ref_counts)} counts for {inner.size} inner edges")
    ks, p = _ks_both_sorted(_finite_part(_check_sorted(entry["sample"])), _finite_part(s))
    return {**_psi_stats(ref_counts, cur), "ks": _num(ks), "ks_pvalue": _num(p)}


def _psi_stats(ref: Any, cur: Any) -> dict[str, float | None]:
    return {
        "psi": _num(psi(ref, cur)),
        "psi_bias": _num(psi_bias(ref, cur)),
        "per_bin": _num(expected_per_bin(ref, cur)),
    }


def _categorical_drift(entry: Mapping[str, Any], values: Any) -> dict[str, float | None]:
    cur = category_counts(values, entry["categories"])
    ref = np.asarray(entry["counts"])
    chi2, p = chi_square(ref, cur)
    return {
        **_psi_stats(ref, cur),
        "chi2": _num(chi2),
        "chi2_pvalue": _num(p),
        "js": _num(jensen_shannon(ref, cur)),
    }


def feature_drift(entry: Mapping[str, Any], values: Any) -> dict[str, float | None]:
    """Statistics of one column against its profile entry.

    numeric: ``{"psi", "ks", "ks_pvalue"}``; categorical: ``{"psi", "chi2", "chi2_pvalue", "js"}``.
    """
    kind = entry.get("kind")
    if kind == "numeric":
        return _numeric_drift(entry, values)
    if kind == "categorical":
        return _categorical_drift(entry, values)
    raise ValueError(f"unknown profile entry kind {kind!r}")


def compute_drift(
    profile: Mapping[str, Any],
    current: Mapping[str, Any],
    current_scores: np.ndarray | None = None,
    *,
    n_jobs: int = 1,
) -> dict[str, Any]:
    """Drift statistics of a day's columns (and the champion's scores) against ``profile``.

    Returns ``{"n_rows": int, "features": {name: stats}, "prediction": stats | None,
    "missing_features": [names in the profile but absent from current]}``. Work is per column
    (one sorted copy of a column at a time), so memory beyond the input stays at a column or two.
    ``n_jobs > 1`` runs columns on that many threads (numpy's sort and search release the GIL);
    it only pays off when that many cores are actually free.
    """
    if profile.get("format") != PROFILE_FORMAT:
        raise ValueError(f"unsupported profile format {profile.get('format')!r}, want {PROFILE_FORMAT!r}")
    entries: dict[str, Any] = profile["features"]
    sizes = {name: len(current[name]) for name in entries if name in current}
    if current_scores is not None:
        sizes["(prediction scores)"] = len(current_scores)
    if len(set(sizes.values())) > 1:
        raise ValueError(f"current columns differ in length: {sizes}")
    # Key None stands for the prediction, so no feature name can collide with it.
    tasks: list[tuple[str | None, Callable[[], dict[str, float | None]]]] = [
        (name, lambda e=entry, v=current[name]: feature_drift(e, v))
        for name, entry in entries.items()
        if name in current
    ]
    pred_entry = profile.get("prediction")
    if current_scores is not None and pred_entry is not None:
        tasks.append((None, lambda: _numeric_drift(pred_entry, current_scores)))
    if n_jobs > 1 and len(tasks) > 1:
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            results = list(pool.map(lambda task: task[1](), tasks))
    else:
        results = [fn() for _, fn in tasks]
    out: dict[str | None, Any] = dict(zip((name for name, _ in tasks), results, strict=True))
    prediction = out.pop(None, None)
    return {
        "n_rows": next(iter(sizes.values()), 0),
        "features": out,
        "prediction": prediction,
        "missing_features": [name for name in entries if name not in current],
    }


# --------------------------------------------------------------------------------------------
# verdict
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds; field names follow ``mlops.config.pipeline.Drift`` (persistence flattened).

    ``ks_threshold`` is off by default: at the default PSI threshold a 0.5 sd mean shift of a
    normal feature is already caught (decile PSI = 0.238 in the population), and a KS effect-size
    rule at 0.1 would also fire for ~0.25 sd shifts, i.e. be a stricter policy than the configured
    PSI. When set, a feature also drifts if ``ks >= ks_threshold`` *and* ``ks_pvalue <= ks_alpha``
    (the p-value guard keeps small days, where KS is noisy, from firing on noise).

    ``psi_bias_correction`` compares ``psi - psi_bias`` (see ``psi_bias``) with the thresholds;
    a feature (or the prediction) with fewer than ``min_expected_per_bin`` rows per bin on the
    smaller side gets no PSI vote at all, and the verdict lists it under ``unreliable``.
    """

    psi_threshold: float = 0.2
    prediction_psi_threshold: float = 0.1
    auc_drop_threshold: float = 0.03
    min_rows: int = 500
    window: int = 3
    required: int = 2
    ks_threshold: float | None = None
    ks_alpha: float = 1e-3
    psi_bias_correction: bool = True
    min_expected_per_bin: float = 5.0

    def __post_init__(self) -> None:
        if not 1 <= self.required <= self.window:
            raise ValueError(f"need 1 <= required <= window, got {self.required} of {self.window}")

    @classmethod
    def of(cls, config: Any = None) -> Thresholds:
        """From ``None`` (defaults), a ``Thresholds``, or an object shaped like ``mlops.config.pipeline.Drift``."""
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        persistence = getattr(config, "persistence", None)
        d = cls()
        return cls(
            psi_threshold=getattr(config, "psi_threshold", d.psi_threshold),
            prediction_psi_threshold=getattr(config, "prediction_psi_threshold", d.prediction_psi_threshold),
            auc_drop_threshold=getattr(config, "auc_drop_threshold", d.auc_drop_threshold),
            min_rows=getattr(config, "min_rows", d.min_rows),
            window=getattr(persistence, "window", getattr(config, "window", d.window)),
            required=getattr(persistence, "required", getattr(config, "required", d.required)),
            ks_threshold=getattr(config, "ks_threshold", d.ks_threshold),
            ks_alpha=getattr(config, "ks_alpha", d.ks_alpha),
            psi_bias_correction=getattr(config, "psi_bias_correction", d.psi_bias_correction),
            min_expected_per_bin=getattr(config, "min_expected_per_bin", d.min_expected_per_bin),
        )


def judged_psi(s: Mapping[str, Any], th: Thresholds) -> float | None:
    """The PSI a verdict compares with its threshold: bias-corrected when asked, None without a vote.

    None when there is no PSI, or too few rows per bin for it to mean anything (``per_bin`` below
    ``min_expected_per_bin``). Statistics without ``psi_bias``/``per_bin`` (older reports) are
    taken as they are.
    """
    value = s.get("psi")
    if value is None:
        return None
    per_bin = s.get("per_bin")
    if per_bin is not None and per_bin < th.min_expected_per_bin:
        return None
    bias = s.get("psi_bias")
    if th.psi_bias_correction and bias is not None:
        return max(0.0, float(value) - float(bias))
    return float(value)


def _unreliable(s: Mapping[str, Any] | None, th: Thresholds) -> bool:
    return bool(s) and s.get("psi") is not None and judged_psi(s, th) is None


def _reason(scope: str, feature: str | None, statistic: str, value: float, threshold: float) -> dict:
    return {
        "scope": scope,
        "feature": feature,
        "statistic": statistic,
        "value": value,
        "threshold": threshold,
    }


def decide(
    stats: Mapping[str, Any],
    thresholds: Any = None,
    history: Sequence[bool | None] = (),
    metrics: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Drift verdict for one day, pure.

    A day drifts if any of: a feature's PSI (``judged_psi``: less its small-sample bias) >= ``psi_threshold``; (optionally) a numeric feature's
    KS >= ``ks_threshold`` with p-value <= ``ks_alpha``; the prediction PSI >=
    ``prediction_psi_threshold``; the AUC drop >= ``auc_drop_threshold`` when ``metrics`` gives
    labelled results (``{"auc", "reference_auc"}`` or ``{"auc_drop"}``), and the online AUC drop
    (``{"online_auc_drop"}``, served rows joined with later labels) likewise.

    Drift is *declared* only if at least ``required`` of the last ``window`` days, today included,
    drifted: ``history`` holds the earlier days' ``day_drift`` flags, oldest first (None counts as
    False). With fewer than ``min_rows`` rows there is no verdict: status ``"insufficient_rows"``,
    ``day_drift`` False (the value to record in history).

    Returns ``{"status", "drift", "day_drift", "n_rows", "drifted_days", "window", "required",
    "reasons"}``; status is ``"drift"`` (declared), ``"unconfirmed"`` (today drifted, persistence
    not met), ``"no_drift"`` or ``"insufficient_rows"``; each reason is ``{"scope": "feature" |
    "prediction" | "performance", "feature", "statistic", "value", "threshold"}``.
    """
    th = Thresholds.of(thresholds)
    n_rows = int(stats.get("n_rows", 0))
    # Earlier days inside the window: the last window - 1 entries of history.
    recent = [bool(h) for h in list(history)[-(th.window - 1) :]] if th.window > 1 else []
    verdict: dict[str, Any] = {
        "n_rows": n_rows,
        "window": th.window,
        "required": th.required,
        "reasons": [],
    }
    if n_rows < th.min_rows:
        return verdict | {
            "status": "insufficient_rows",
            "drift": False,
            "day_drift": False,
            "drifted_days": sum(recent),
            "min_rows": th.min_rows,
        }

    reasons: list[dict[str, Any]] = verdict["reasons"]
    unreliable = [name for name, s in stats.get("features", {}).items() if _unreliable(s, th)]
    for name, s in stats.get("features", {}).items():
        value = judged_psi(s, th)
        if value is not None and value >= th.psi_threshold:
            reasons.append(_reason("feature", name, "psi", value, th.psi_threshold))
        ks, p = s.get("ks"), s.get("ks_pvalue")
        # One value against one value has a KS statistic but no p-value: no evidence, no vote.
        ks_set = th.ks_threshold is not None and ks is not None and p is not None
        if ks_set and ks >= th.ks_threshold and p <= th.ks_alpha:
            reasons.append(_reason("feature", name, "ks", ks, th.ks_threshold))
    pred = stats.get("prediction")
    pred_value = judged_psi(pred, th) if pred else None
    if pred_value is not None and pred_value >= th.prediction_psi_threshold:
        reasons.append(_reason("prediction", None, "psi", pred_value, th.prediction_psi_threshold))
    if _unreliable(pred, th):
        unreliable.append("(prediction)")
    if unreliable:
        verdict["unreliable"] = unreliable
        verdict["unreliable_note"] = (
            f"fewer than drift.min_expected_per_bin={th.min_expected_per_bin:g} rows per bin: "
            f"no PSI verdict for {', '.join(unreliable)}"
        )
    if metrics:
        drop = metrics.get("auc_drop")
        if drop is None and "auc" in metrics:
            drop = float(metrics["reference_auc"]) - float(metrics["auc"])
        if drop is not None and float(drop) >= th.auc_drop_threshold:
            reasons.append(_reason("performance", None, "auc_drop", float(drop), th.auc_drop_threshold))
        # Served rows joined with later labels (``monitor.online``): counted like the batch drop.
        online = metrics.get("online_auc_drop")
        if online is not None and float(online) >= th.auc_drop_threshold:
            reasons.append(
                _reason("performance", None, "online_auc_drop", float(online), th.auc_drop_threshold)
            )

    day_drift = bool(reasons)
    drifted_days = sum(recent) + day_drift
    declared = drifted_days >= th.required
    status = "drift" if declared else "unconfirmed" if day_drift else "no_drift"
    return verdict | {
        "status": status,
        "drift": declared,
        "day_drift": day_drift,
        "drifted_days": drifted_days,
    }
