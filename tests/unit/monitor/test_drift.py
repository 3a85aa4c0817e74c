from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mlops.config.pipeline import Drift, Persistence
from mlops.monitor import drift

# --------------------------------------------------------------------------------------------
# KS
# --------------------------------------------------------------------------------------------


def _ks_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(20240601)
    cases: list[tuple[np.ndarray, np.ndarray]] = []
    for _ in range(60):  # continuous, different sizes, sometimes shifted or rescaled
        n, m = rng.integers(1, 3000, size=2)
        cases.append((rng.normal(size=n), rng.normal(rng.uniform(-1, 1), rng.uniform(0.5, 2), size=m)))
    for _ in range(60):  # discrete values: heavy ties within and across samples
        n, m = rng.integers(1, 2000, size=2)
        k = int(rng.integers(1, 12))
        cases.append((rng.integers(0, k, size=n).astype(float), rng.integers(0, k + 2, size=m).astype(float)))
    x = rng.normal(size=500)
    cases += [
        (x, x.copy()),  # identical samples
        (x, x[:250]),  # subsample
        (rng.uniform(0, 1, 400), rng.uniform(2, 3, 700)),  # disjoint, current above
        (rng.uniform(2, 3, 400), rng.uniform(0, 1, 700)),  # disjoint, current below
        (np.full(10, 3.0), np.full(20, 3.0)),  # constant, equal
        (np.full(10, 3.0), np.full(20, 4.0)),  # constant, different
        (np.array([1.0]), np.array([1.0])),
        (np.array([1.0]), np.array([2.0, 0.0])),
        (rng.normal(size=20_000), rng.normal(0.05, 1, size=200_000)),  # realistic sizes
    ]
    return cases


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # scipy itself, at n = m = 1
def test_ks_statistic_and_asymp_pvalue_match_scipy() -> None:
    for ref, cur in _ks_cases():
        ref_sorted = np.sort(ref)
        d, p = drift.ks_2samp_sorted(ref_sorted, cur)
        expected = stats.ks_2samp(ref, cur, method="asymp")
        assert abs(d - expected.statistic) <= 1e-9
        # Same counts over the same sizes, so in practice bit-for-bit.
        assert d == expected.statistic
        # Same call to scipy.stats.kstwo.sf at the same effective size.
        assert abs(p - expected.pvalue) <= 1e-12 or (math.isnan(p) and math.isnan(expected.pvalue))
        # method="auto" (exact for small samples) snaps d to a multiple of 1/lcm(n, m).
        assert abs(d - stats.ks_2samp(ref, cur).statistic) <= 1e-12


def test_ks_float32_current_and_nan_dropped() -> None:
    rng = np.random.default_rng(3)
    ref = np.sort(rng.normal(size=2000))
    cur = rng.normal(0.1, 1, size=5000).astype(np.float32)
    d, p = drift.ks_2samp_sorted(ref, cur)
    expected = stats.ks_2samp(ref, cur.astype(np.float64), method="asymp")
    assert d == expected.statistic and abs(p - expected.pvalue) <= 1e-12
    with_nan = np.concatenate([cur, np.full(100, np.nan, dtype=np.float32)])
    assert drift.ks_2samp_sorted(ref, with_nan) == (d, p)


def test_ks_rejects_unsorted_reference_and_handles_empty() -> None:
    with pytest.raises(ValueError, match="sorted"):
        drift.ks_2samp_sorted(np.array([2.0, 1.0]), np.array([1.0]))
    d, p = drift.ks_2samp_sorted(np.array([1.0, 2.0]), np.array([np.nan]))
    assert math.isnan(d) and math.isnan(p)


# --------------------------------------------------------------------------------------------
# PSI, chi-square, JS
# --------------------------------------------------------------------------------------------


def test_psi_hand_computed() -> None:
    # ref [0.5, 0.5] vs cur [0.25, 0.75]:
    # (0.25 - 0.5) * ln(0.25 / 0.5) + (0.75 - 0.5) * ln(0.75 / 0.5)
    # = 0.25 * 0.693147 + 0.25 * 0.405465 = 0.173287 + 0.101366 = 0.274653
    assert drift.psi([50, 50], [25, 75]) == pytest.approx(0.274653, abs=1e-6)
    # counts, not proportions: scale does not matter
    assert drift.psi([1, 1], [1000, 3000]) == pytest.approx(0.274653, abs=1e-6)
    # ref [0.2, 0.3, 0.5] vs cur [0.3, 0.3, 0.4]:
    # 0.1 * ln(1.5) + 0 + (-0.1) * ln(0.8) = 0.040547 + 0.022314 = 0.062861
    assert drift.psi([2, 3, 5], [3, 3, 4]) == pytest.approx(0.062861, abs=1e-6)


def test_psi_identical_symmetric_and_eps() -> None:
    assert drift.psi([10, 20, 30, 0], [1, 2, 3, 0]) == 0.0
    rng = np.random.default_rng(5)
    for _ in range(20):
        a, b = rng.integers(0, 100, size=(2, 8))
        a[0], b[0] = a[0] + 1, b[0] + 1
        assert drift.psi(a, b) == pytest.approx(drift.psi(b, a), rel=1e-12)
    # an empty reference bin: ref [0.5, 0.5, 0] vs cur [0.5, 0.4, 0.1], eps = 1e-4
    # 0 + (0.4 - 0.5) * ln(0.8) + (0.1 - 1e-4) * ln(0.1 / 1e-4)
    # = 0.022314 + 0.0999 * 6.907755 = 0.022314 + 0.690085 = 0.712399
    assert drift.psi([5, 5, 0], [5, 4, 1]) == pytest.approx(0.712399, abs=1e-6)
    assert drift.psi([5, 5, 0], [5, 4, 1], eps=1e-2) == pytest.approx(
        0.1 * math.log(1.25) + 0.09 * math.log(10), abs=1e-12
    )
    assert math.isnan(drift.psi([0, 0], [1, 2]))
    with pytest.raises(ValueError):
        drift.psi([1, 2], [1, 2, 3])


def test_chi_square_matches_contingency() -> None:
    rng = np.random.default_rng(11)
    for _ in range(20):
        ref = rng.integers(1, 500, size=6)
        cur = rng.integers(1, 100, size=6)
        stat, p = drift.chi_square(ref, cur)
        expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
        assert stat == pytest.approx(expected.statistic, rel=1e-12)
        assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    # a bin empty in both is dropped; a bin empty only in the reference (unseen) is kept
    stat, p = drift.chi_square([100, 50, 0, 0], [40, 20, 5, 0])
    expected = stats.chi2_contingency([[100, 50, 0], [40, 20, 5]], correction=False)
    assert stat == pytest.approx(expected.statistic) and p == pytest.approx(expected.pvalue)
    assert drift.chi_square([10, 0], [5, 0]) == (0.0, 1.0)


def test_jensen_shannon_bounds_and_scipy() -> None:
    assert drift.jensen_shannon([1, 2, 3], [2, 4, 6]) == 0.0
    assert drift.jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)
    rng = np.random.default_rng(13)
    for _ in range(20):
        a, b = rng.integers(0, 50, size=(2, 5)) + np.array([1, 0, 0, 0, 0])
        js = drift.jensen_shannon(a, b)
        assert 0.0 <= js <= 1.0
        assert js == pytest.approx(jensenshannon(a, b, base=2) ** 2, abs=1e-12)


# --------------------------------------------------------------------------------------------
# binning and categories
# --------------------------------------------------------------------------------------------


def test_quantile_edges_and_bin_counts() -> None:
    rng = np.random.default_rng(17)
    x = rng.normal(size=100_000)
    edges = drift.quantile_edges(x, 10)
    assert edges[0] == -np.inf and edges[-1] == np.inf and edges.size == 11
    counts = drift.bin_counts(x, edges)
    assert counts.size == 11 and counts[-1] == 0 and np.all(counts[:-1] == 10_000)
    # right-closed bins, +-inf in the outer bins, NaN in the trailing missing bin
    e = np.array([-np.inf, 0.0, 1.0, np.inf])
    v = np.array([-np.inf, -1, 0, 0.5, 1, 2, np.inf, np.nan, np.nan])
    assert drift.bin_counts(v, e).tolist() == [3, 2, 2, 2]
    assert drift.bin_counts(v.astype(np.float32), e).tolist() == [3, 2, 2, 2]
    assert drift.bin_counts(np.array([0, 1, 5]), e).tolist() == [1, 1, 1, 0]


def test_constant_empty_and_discrete_columns() -> None:
    const = np.full(1000, 7.0)
    edges = drift.quantile_edges(const)
    assert edges.tolist() == [-np.inf, 7.0, np.inf]
    assert drift.bin_counts(const, edges).tolist() == [1000, 0, 0]
    assert drift.quantile_edges(np.array([np.nan, np.nan])).tolist() == [-np.inf, np.inf]
    assert drift.bin_counts(np.array([np.nan, 1.0]), [-np.inf, np.inf]).tolist() == [1, 1]
    # 60% zeros, 30% ones, 10% twos: edges on the values, one bin per value, no empty bin
    disc = np.repeat([0.0, 1.0, 2.0], [600, 300, 100])
    edges = drift.quantile_edges(disc)
    assert edges.tolist() == [-np.inf, 0.0, 1.0, np.inf]
    assert drift.bin_counts(disc, edges).tolist() == [600, 300, 100, 0]
    # and the profile / drift path works on a constant column
    entry = drift.profile_feature_numeric(const, sample_size=100, seed=1)
    assert entry["inner_edges"] == [7.0] and entry["counts"] == [1000, 0, 0]
    out = drift.feature_drift(entry, np.full(50, 7.0))
    assert out == {"psi": 0.0, "psi_bias": 0.0, "per_bin": 50.0, "ks": 0.0, "ks_pvalue": 1.0}
    assert drift.feature_drift(entry, np.full(50, 8.0))["ks"] == 1.0


def test_category_counts_unseen_and_missing() -> None:
    values = np.array(["a", "b", "a", "zz", None, np.nan, "c", "yy"], dtype=object)
    assert drift.category_counts(values, ["a", "b", "c"]).tolist() == [2, 1, 1, 2, 2]
    assert drift.category_counts(np.array(["b", "b"]), ["a", "b"]).tolist() == [0, 2, 0, 0]
    assert drift.category_counts(np.array([1, 2, 3]), ["1", "2"]).tolist() == [1, 1, 1, 0]
    entry = drift.profile_feature_categorical(values, ["a", "b", "c"])
    assert entry == {"kind": "categorical", "categories": ["a", "b", "c"], "counts": [2, 1, 1, 2, 2], "n": 8}


def test_sorted_path_counts_equal_bin_counts() -> None:
    rng = np.random.default_rng(19)
    ref = rng.poisson(3, size=5000).astype(float)
    cur = np.concatenate([rng.poisson(3.5, size=3000).astype(float), [np.nan] * 30, [np.inf, -np.inf]])
    entry = drift.profile_feature_numeric(ref, n_bins=10, sample_size=1000, seed=0)
    edges = np.concatenate([[-np.inf], entry["inner_edges"], [np.inf]])
    assert entry["counts"] == drift.bin_counts(ref, edges).tolist()
    out = drift.feature_drift(entry, cur)
    assert out["psi"] == pytest.approx(drift.psi(entry["counts"], drift.bin_counts(cur, edges)), rel=1e-12)
    finite = cur[np.isfinite(cur)]
    assert out["ks"] == stats.ks_2samp(entry["sample"], finite, method="asymp").statistic


def test_profile_is_json_and_seeded() -> None:
    rng = np.random.default_rng(23)
    x = rng.normal(size=30_000)
    x[:10] = np.nan
    x[10] = np.inf
    a = drift.profile_feature_numeric(x, n_bins=10, sample_size=5000, seed=7)
    b = drift.profile_feature_numeric(x, n_bins=10, sample_size=5000, seed=7)
    assert a == b
    assert len(a["sample"]) == 5000 and a["sample"] == sorted(a["sample"])
    assert a["counts"][-1] == 10 and sum(a["counts"]) == a["n"] == 30_000
    json.loads(json.dumps(a, allow_nan=False))


# --------------------------------------------------------------------------------------------
# compute_drift + decide on synthetic days
# --------------------------------------------------------------------------------------------

CATS = {"c0": ["red", "green", "blue"], "c1": ["a", "b", "c", "d", "e"], "c2": ["x", "y"]}


def _draw(rng: np.random.Generator, n: int, shift: float = 0.0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """8 features (5 numeric incl. discrete and NaN, 3 categorical) and the model's scores."""
    x0 = rng.normal(shift, 1.0, n)
    x1 = rng.lognormal(0.0, 0.7, n)
    x2 = rng.exponential(2.0, n).astype(np.float32)
    x3 = rng.poisson(3.0, n).astype(np.int64)
    x4 = rng.uniform(-1, 1, n)
    x4[rng.random(n) < 0.02] = np.nan
    c0 = rng.choice(CATS["c0"], n, p=[0.5, 0.3, 0.2]).astype(object)
    c1 = rng.choice(CATS["c1"], n, p=[0.4, 0.3, 0.15, 0.1, 0.05]).astype(object)
    c2 = rng.choice(CATS["c2"], n, p=[0.9, 0.1]).astype(object)
    c2[rng.random(n) < 0.01] = None
    logit = 0.8 * x0 - 0.5 * np.log(x1) + 0.2 * x3 - 1.0 + 0.6 * (c0 == "red")
    scores = 1.0 / (1.0 + np.exp(-logit))
    cols = {"x0": x0, "x1": x1, "x2": x2, "x3": x3, "x4": x4, "c0": c0, "c1": c1, "c2": c2}
    return cols, scores


@pytest.fixture(scope="module")
def profile() -> dict:
    cols, scores = _draw(np.random.default_rng(1000), 50_000)
    numeric = {k: v for k, v in cols.items() if k.startswith("x")}
    categorical = {k: (cols[k], CATS[k]) for k in CATS}
    prof = drift.build_profile(numeric, categorical, scores, n_bins=10, sample_size=10_000, seed=42)
    # the profile survives a strict JSON round trip, and that is what the monitor reads
    return json.loads(json.dumps(prof, allow_nan=False))


def test_no_false_alarm_over_60_days(profile: dict) -> None:
    rng = np.random.default_rng(2000)
    with_ks = drift.Thresholds(ks_threshold=0.1)
    history: list[bool] = []
    worst = {"psi": 0.0, "pred_psi": 0.0, "ks": 0.0}
    for _ in range(60):
        cols, scores = _draw(rng, 10_000)
        st = drift.compute_drift(profile, cols, scores)
        assert set(st["features"]) == set(cols) and st["missing_features"] == []
        verdict = drift.decide(st, Drift(), history)
        assert verdict["day_drift"] is False and verdict["status"] == "no_drift", verdict
        assert drift.decide(st, with_ks, history)["day_drift"] is False
        history.append(verdict["day_drift"])
        worst["psi"] = max(worst["psi"], *(f["psi"] for f in st["features"].values()))
        worst["pred_psi"] = max(worst["pred_psi"], st["prediction"]["psi"])
        worst["ks"] = max(worst["ks"], *(f.get("ks", 0.0) for f in st["features"].values()))
    # far from the thresholds, not just below them
    assert worst["psi"] < 0.02 and worst["pred_psi"] < 0.02 and worst["ks"] < 0.05, worst


def test_half_sd_shift_is_detected(profile: dict) -> None:
    rng = np.random.default_rng(3000)
    for _ in range(10):
        cols, scores = _draw(rng, 10_000, shift=0.5)
        st = drift.compute_drift(profile, cols, scores)
        verdict = drift.decide(st, Drift(), [])
        assert verdict["day_drift"] is True
        hits = [r for r in verdict["reasons"] if r["feature"] == "x0" and r["statistic"] == "psi"]
        assert hits and hits[0]["value"] >= 0.2 and hits[0]["threshold"] == 0.2
        # only the shifted feature (and the prediction it drives) are blamed
        assert {r["feature"] for r in verdict["reasons"]} <= {"x0", None}
        assert st["features"]["x0"]["ks"] > 0.15
        # the optional KS criterion catches it too
        ks_verdict = drift.decide(st, drift.Thresholds(ks_threshold=0.1), [])
        assert any(r["statistic"] == "ks" and r["feature"] == "x0" for r in ks_verdict["reasons"])


def test_compute_drift_threads_equal_serial(profile: dict) -> None:
    cols, scores = _draw(np.random.default_rng(4000), 5_000, shift=0.2)
    assert drift.compute_drift(profile, cols, scores, n_jobs=2) == drift.compute_drift(profile, cols, scores)
    st = drift.compute_drift(profile, {k: v for k, v in cols.items() if k != "x1"}, None)
    assert st["missing_features"] == ["x1"] and st["prediction"] is None
    json.dumps(st, allow_nan=False)
    with pytest.raises(ValueError, match="length"):
        drift.compute_drift(profile, {"x0": cols["x0"], "x1": cols["x1"][:10]})


# --------------------------------------------------------------------------------------------
# decide: persistence, thresholds, rows
# --------------------------------------------------------------------------------------------


def _stats(psi: float = 0.01, pred_psi: float = 0.01, n_rows: int = 10_000) -> dict:
    return {
        "n_rows": n_rows,
        "features": {"f": {"psi": psi, "ks": 0.01, "ks_pvalue": 0.9}},
        "prediction": {"psi": pred_psi, "ks": 0.01, "ks_pvalue": 0.9},
        "missing_features": [],
    }


def test_persistence_two_of_three() -> None:
    odd, calm = _stats(psi=0.5), _stats()
    first = drift.decide(odd, None, [False, False])
    assert first["day_drift"] and not first["drift"] and first["status"] == "unconfirmed"
    # a single odd day followed by calm days never becomes a verdict
    history: list[bool] = []
    for day in [calm, odd, calm, calm, calm, odd, calm, calm]:
        v = drift.decide(day, None, history)
        assert v["drift"] is False
        history.append(v["day_drift"])
    # two of the last three (today included) are
    v = drift.decide(odd, None, [False, True, False])
    assert v["drift"] is True and v["status"] == "drift" and v["drifted_days"] == 2
    assert drift.decide(odd, None, [True])["drift"] is True
    # older history outside the window does not count
    assert drift.decide(odd, None, [True, False, False])["drift"] is False
    # window 1, required 1: every drifting day is a verdict
    assert drift.decide(odd, drift.Thresholds(window=1, required=1), [])["drift"] is True
    with pytest.raises(ValueError):
        drift.Thresholds(window=2, required=3)


def test_thresholds_and_reasons() -> None:
    v = drift.decide(_stats(pred_psi=0.12), None, [True])
    assert v["drift"] and v["reasons"] == [
        {"scope": "prediction", "feature": None, "statistic": "psi", "value": 0.12, "threshold": 0.1}
    ]
    assert not drift.decide(_stats(psi=0.19, pred_psi=0.09), None, [True])["day_drift"]
    assert drift.decide(_stats(psi=0.2), None, [])["reasons"][0]["feature"] == "f"  # >= is inclusive
    perf = drift.decide(_stats(), None, [], metrics={"auc": 0.80, "reference_auc": 0.84})
    assert perf["day_drift"] and perf["reasons"][0]["statistic"] == "auc_drop"
    assert perf["reasons"][0]["value"] == pytest.approx(0.04)
    assert not drift.decide(_stats(), None, [], metrics={"auc_drop": 0.02})["day_drift"]
    # the pipeline's pydantic config is accepted as is
    cfg = Drift(psi_threshold=0.3, min_rows=100, persistence=Persistence(window=2, required=1))
    th = drift.Thresholds.of(cfg)
    assert (th.psi_threshold, th.min_rows, th.window, th.required) == (0.3, 100, 2, 1)
    assert drift.decide(_stats(psi=0.25), cfg, [])["day_drift"] is False
    assert drift.decide(_stats(psi=0.35), cfg, [])["drift"] is True


def test_insufficient_rows_is_no_verdict() -> None:
    v = drift.decide(_stats(psi=5.0, n_rows=499), None, [True, True])
    assert v["status"] == "insufficient_rows" and v["drift"] is False and v["day_drift"] is False
    assert v["reasons"] == [] and v["min_rows"] == 500
    assert drift.decide(_stats(psi=5.0, n_rows=500), None, [True])["drift"] is True
