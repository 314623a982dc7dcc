"""Time-series forecasting on real series (requirement rnn.4): sunspots and airline passengers.

Each series' tail is held out. The LSTM (quantile outputs, pinball loss), a seasonal-naive
forecast and a SARIMA model are all fitted in this run on the training part only, and all
forecast the tail one step ahead from a rolling origin. MAE, RMSE and MASE per model in a table
beside a forecast plot; the LSTM must beat seasonal-naive (MASE < 1 and a lower MAE). Whether it
beats SARIMA is reported, not asserted. A second LSTM, trained without the last n_cal training
steps, is calibrated on them (split-conformal quantile regression) and its 90% intervals must
cover the held-out tail at close to the nominal rate.
"""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from sklearn.metrics import mean_pinball_loss

from assessments.rnn._helpers import module_experiment, run_seed
from assessments.threads import single_thread
from implementations.architectures.rnn.figures import plot_forecast
from implementations.architectures.rnn.forecasting import (LSTMForecaster, SeriesTransform, conformal_margin,
                                                           coverage, drift_one_step, ets_one_step, fit_forecaster,
                                                           lstm_quantiles, mae, make_windows, mase, pinball_loss,
                                                           rmse, sarima_one_step, seasonal_drift_one_step,
                                                           seasonal_naive_one_step, to_levels)
from implementations.data.series import load_airline, load_sunspots
from implementations.viz.curves import plot_curves

pytestmark = pytest.mark.torch
LOADERS = {"sunspots": load_sunspots, "airline": load_airline}


def fit_lstm(values: np.ndarray, end: int, cfg: dict, seed: int):
    """Transform and LSTM fitted on values[:end] only."""
    transform = SeriesTransform(log=cfg["log"], lag=cfg["lag"]).fit(values[:end])
    X, y = make_windows(transform.forward(values[:end]), cfg["window"])
    torch.manual_seed(seed)
    model = LSTMForecaster(cfg["quantiles"], cfg["hidden_size"])
    history = fit_forecaster(model, X, y, cfg["epochs"], lr=cfg["lr"], batch_size=cfg["batch_size"], seed=seed)
    return transform, model, history


@pytest.fixture(scope="module", params=list(LOADERS))
def forecasts(request):
    with single_thread():
        return _forecasts(request)


def _forecasts(request) -> dict:
    name = request.param
    cfg = {**module_experiment(request, "forecast"), **module_experiment(request, f"forecast_{name}")}
    series = LOADERS[name]()
    y, start, m, seed = series.values, len(series) - cfg["n_test"], series.period, run_seed(request)
    actual, train = y[start:], y[:start]

    # Point forecasts: the LSTM sees the same training part as SARIMA.
    transform, model, history = fit_lstm(y, start, cfg, seed)
    qz, _ = lstm_quantiles(model, transform, y, start, cfg["window"])
    lstm = to_levels(transform, qz, y, start)
    sarima, sarima_band, _ = sarima_one_step(y, start, cfg["order"], cfg["seasonal_order"], log=cfg["arima_log"],
                                             trend=cfg["trend"], alpha=cfg["alpha"])
    ets, ets_band = ets_one_step(y, start, trend=cfg["ets_trend"] or None, seasonal=cfg["ets_seasonal"] or None,
                                 period=m, damped_trend=cfg["ets_damped"], log=cfg["arima_log"], alpha=cfg["alpha"])
    preds = {"LSTM (median)": lstm[:, model.median], "seasonal naive": seasonal_naive_one_step(y, start, m),
             "seasonal drift": seasonal_drift_one_step(y, start, m), "drift": drift_one_step(y, start),
             "ETS": ets, f"SARIMA{tuple(cfg['order'])}{tuple(cfg['seasonal_order'])}": sarima}
    metrics = {k: {"MAE": mae(actual, p), "RMSE": rmse(actual, p), "MASE": mase(actual, p, train, m)}
               for k, p in preds.items()}

    # Intervals: fit on values[:cal], calibrate on values[cal:start], evaluate on the tail.
    cal = start - cfg["n_cal"]
    c_transform, c_model, _ = fit_lstm(y, cal, cfg, seed)
    q_cal, z_cal = lstm_quantiles(c_model, c_transform, y[:start], cal, cfg["window"])
    margin = conformal_margin(q_cal[:, 0], q_cal[:, -1], z_cal, cfg["alpha"])
    q_tail, _ = lstm_quantiles(c_model, c_transform, y, start, cfg["window"])
    raw = to_levels(c_transform, q_tail, y, start)
    widen = np.zeros(q_tail.shape[1])
    widen[0], widen[-1] = -margin, margin
    band = to_levels(c_transform, q_tail + widen, y, start)[:, [0, -1]]
    return dict(name=name, cfg=cfg, series=series, start=start, actual=actual, preds=preds, metrics=metrics,
                history=history, band=band, raw_band=raw[:, [0, -1]], sarima_band=sarima_band, ets_band=ets_band,
                model=model, transform=transform)


def test_lstm_forecast_against_simple_baselines(forecasts, evidence):
    """The LSTM against every baseline fitted in the same run: seasonal naive, the parameter-free
    seasonal drift y[t-m] + (y[t-1] - y[t-1-m]), drift, ETS and SARIMA. Asserted, per series in
    experiments/rnn.toml, is what was measured: the baselines the LSTM beats (lower MAE), and how
    far it may sit from the best of them (MAE ratio)."""
    f = forecasts
    cfg, name, metrics = f["cfg"], f["name"], f["metrics"]
    lstm = metrics["LSTM (median)"]
    baselines = {k: v for k, v in metrics.items() if k != "LSTM (median)"}
    best = min(baselines, key=lambda k: baselines[k]["MAE"])
    ratio = lstm["MAE"] / baselines[best]["MAE"]
    rows = [{"model": k, **v, "LSTM MAE / model MAE": lstm["MAE"] / v["MAE"]} for k, v in metrics.items()]
    evidence.table(f"{name}_held_out_errors", sorted(rows, key=lambda r: r["MAE"]))
    evidence.figure(f"{name}_forecast", plot_forecast(
        f["series"].index, f["series"].values[:f["start"]], f["actual"], f["preds"], band=tuple(f["band"].T),
        band_label="LSTM 90% interval (conformal)", title=f"{name}: one-step forecasts of the held-out tail"))
    evidence.figure(f"{name}_lstm_learning_curve", plot_curves(
        {"train pinball loss": f["history"].train_loss}, f"{name}: LSTM training loss", "epoch", "pinball loss",
        logy=True))
    evidence.metric(f"{name}_lstm_mase", lstm["MASE"], threshold=cfg["max_mase"], direction="lower", key=True)
    evidence.metric(f"{name}_lstm_mae_over_best_baseline", ratio, threshold=cfg["max_ratio_to_best_baseline"],
                    direction="lower")
    for k, v in baselines.items():
        evidence.metric(f"{name}_{k.split('(')[0].strip().replace(' ', '_').lower()}_mase", v["MASE"])
    beaten = [k for k in baselines if lstm["MAE"] < baselines[k]["MAE"]]
    evidence.text(f"{name}: last {cfg['n_test']} of {len(f['series'])} steps held out; one-step-ahead forecasts "
                  f"with parameters fitted on the training part only. MASE scales by the in-sample seasonal-naive "
                  f"MAE (period {f['series'].period}). The LSTM (window {cfg['window']}, hidden "
                  f"{cfg['hidden_size']}, log={cfg['log']}, difference lag {cfg['lag']}) beats "
                  f"{', '.join(beaten) or 'none of the baselines'}; the best baseline is {best} "
                  f"(LSTM MAE {ratio:.2f}x its MAE).")
    assert np.all(np.isfinite(f["preds"]["LSTM (median)"]))
    assert lstm["MASE"] < cfg["max_mase"], f"LSTM MASE {lstm['MASE']:.3f}"
    missed = [k for k in cfg["must_beat"] if not lstm["MAE"] < metrics[k]["MAE"]]
    assert not missed, f"the LSTM does not beat {missed} on {name}: " + str({k: metrics[k]['MAE'] for k in metrics})
    assert ratio <= cfg["max_ratio_to_best_baseline"], f"LSTM MAE {ratio:.2f}x the best baseline ({best})"
    assert f["history"].train_loss[-1] < 0.5 * f["history"].train_loss[0]


def test_conformal_intervals_cover_the_held_out_tail(forecasts, evidence):
    """Coverage is judged against the binomial spread of n held-out points (two-sided 95% bound
    around the nominal level); width against the baselines' own 90% intervals (SARIMA and ETS,
    fitted on the same training part), not against the data's range."""
    from scipy.stats import binom

    f = forecasts
    cfg, name, actual = f["cfg"], f["name"], f["actual"]
    nominal, n = 1 - cfg["alpha"], len(actual)
    lo, hi = binom.ppf(0.025, n, nominal) / n, binom.ppf(0.975, n, nominal) / n
    bands = {"LSTM quantiles, conformal": f["band"], "LSTM quantiles, raw": f["raw_band"],
             "SARIMA 90%": f["sarima_band"], "ETS 90%": f["ets_band"]}
    rows = [{"interval": k, "coverage": coverage(actual, *b.T), "mean width": float(np.mean(b[:, 1] - b[:, 0]))}
            for k, b in bands.items()]
    cov, width = rows[0]["coverage"], rows[0]["mean width"]
    width_ratio = width / rows[2]["mean width"]
    evidence.metric(f"{name}_lstm_interval_coverage", cov, unit=f"nominal {nominal:.2f}", key=True,
                    threshold=lo, direction="higher")
    evidence.metric(f"{name}_coverage_binomial_bound_low", lo)
    evidence.metric(f"{name}_lstm_width_over_sarima_width", width_ratio, threshold=cfg["max_width_ratio"],
                    direction="lower")
    evidence.table(f"{name}_interval_coverage", rows)
    assert np.all(f["band"][:, 0] <= f["band"][:, 1])
    assert lo <= cov <= hi, f"coverage {cov:.3f} outside the binomial bound [{lo:.3f}, {hi:.3f}] of {nominal}"
    assert width_ratio <= cfg["max_width_ratio"], f"LSTM interval {width_ratio:.2f}x as wide as SARIMA's"
    assert width_ratio >= cfg["min_width_ratio"], f"LSTM interval {width_ratio:.2f}x SARIMA's: suspiciously narrow"


def test_forecasts_use_only_the_past(forecasts):
    """No look-ahead: changing a held-out value y[t] leaves every forecast of y[..t] unchanged
    (LSTM, SARIMA and seasonal-naive) and changes the LSTM's forecast of y[t + 1]."""
    f = forecasts
    cfg, y, start = f["cfg"], f["series"].values, f["start"]
    t = start + 5
    bumped = y.copy()
    bumped[t] *= 1.5
    k = t - start  # forecasts 0..k are of y[start..t]

    def lstm(values):
        with single_thread():
            return to_levels(f["transform"], lstm_quantiles(f["model"], f["transform"], values, start,
                                                            cfg["window"])[0], values, start)

    def sarima(values):
        return sarima_one_step(values, start, cfg["order"], cfg["seasonal_order"], log=cfg["arima_log"],
                               trend=cfg["trend"])[0]

    for fn in (lstm, sarima, lambda v: seasonal_naive_one_step(v, start, f["series"].period)):
        a, b = fn(y), fn(bumped)
        np.testing.assert_array_equal(a[: k + 1], b[: k + 1])
    assert np.abs(lstm(y)[k + 1] - lstm(bumped)[k + 1]).max() > 0


@settings(max_examples=30, deadline=None, derandomize=True)
@given(values=st.lists(st.floats(0.5, 1e3), min_size=6, max_size=30), log=st.booleans(), lag=st.integers(0, 3))
def test_series_transform_round_trip(values, log, lag):
    """inverse_next(forward(y)[k], base = y[k]) recovers y[k + lag]: the model's scale is invertible.
    A series that is constant after log/differencing cannot be standardised: fit must say so."""
    y = np.asarray(values)
    tf = SeriesTransform(log=log, lag=lag)
    base = np.log(y) if log else y
    z_raw = base[lag:] - base[:-lag] if lag else base
    if np.std(z_raw) <= 1e-12 * max(1.0, abs(np.mean(z_raw))):
        with pytest.raises(ValueError, match="constant"):
            tf.fit(y)
        return
    tf.fit(y)
    z = tf.forward(y)
    back = tf.inverse_next(z, y[: len(z)] if lag else None)
    np.testing.assert_allclose(back, y[lag:], rtol=1e-9)


def test_series_transform_rejects_a_constant_series():
    for tf, y in ((SeriesTransform(), np.full(8, 3.0)), (SeriesTransform(lag=1), np.arange(1.0, 9.0)),
                  (SeriesTransform(log=True, lag=1), 2.0 ** np.arange(8))):
        with pytest.raises(ValueError, match="constant"):
            tf.fit(y)


def test_forecaster_quantiles_never_cross():
    torch.manual_seed(0)
    model = LSTMForecaster([0.05, 0.25, 0.5, 0.75, 0.95], hidden_size=4)
    q = model(torch.randn(64, 10) * 5)
    assert q.shape == (64, 5) and torch.all(q[:, 1:] >= q[:, :-1])


@settings(max_examples=30, deadline=None, derandomize=True)
@given(taus=st.lists(st.floats(0.01, 0.99), min_size=1, max_size=4), n=st.integers(1, 20),
       seed=st.integers(0, 2**16))
def test_pinball_loss_matches_sklearn(taus, n, seed):
    """Our torch pinball loss, per quantile, equals sklearn's mean_pinball_loss in float64."""
    rng = np.random.default_rng(seed)
    y, pred = rng.normal(size=n), rng.normal(size=(n, len(taus)))
    per_q = pinball_loss(torch.from_numpy(pred), torch.from_numpy(y), taus, reduction="none").mean(0)
    ref = [mean_pinball_loss(y, pred[:, j], alpha=t) for j, t in enumerate(taus)]
    assert np.max(np.abs(per_q.numpy() - ref)) <= 1e-12


@settings(max_examples=30, deadline=None, derandomize=True)
@given(taus=st.lists(st.floats(0.01, 0.99), min_size=1, max_size=4), n=st.integers(1, 20),
       seed=st.integers(0, 2**16))
def test_pinball_loss_matches_the_numpy_fundamentals_loss(taus, n, seed):
    """Our torch pinball loss and its autograd gradient equal the fundamentals' NumPy PinballLoss
    forward/backward in float64, ties (y == q) included: both take the subgradient 1/2 - tau."""
    from implementations.fundamentals.quantile_loss import PinballLoss

    rng = np.random.default_rng(seed)
    y, pred = rng.normal(size=n), rng.normal(size=(n, len(taus)))
    ties = rng.random(pred.shape) < 0.2
    ties[0, 0] = True  # at least one prediction exactly on its target
    pred[ties] = np.broadcast_to(y[:, None], pred.shape)[ties]
    ref = PinballLoss(taus)
    value, grad = ref.forward(pred, y), ref.backward()
    p = torch.from_numpy(pred).requires_grad_()
    ours = pinball_loss(p, torch.from_numpy(y), taus)
    ours.backward()
    assert abs(ours.item() - value) <= 1e-12
    assert np.max(np.abs(p.grad.numpy() - grad)) <= 1e-12


@settings(max_examples=30, deadline=None, derandomize=True)
@given(tau=st.floats(0.05, 0.95), n=st.integers(5, 40), seed=st.integers(0, 2**16))
def test_pinball_loss_is_minimised_at_the_empirical_quantile(tau, n, seed):
    rng = np.random.default_rng(seed)
    y = torch.from_numpy(rng.standard_t(3, size=n))
    q = float(np.quantile(y.numpy(), tau, method="inverted_cdf"))
    best = pinball_loss(torch.full((n, 1), q, dtype=torch.float64), y, [tau])
    for c in np.linspace(float(y.min()) - 1, float(y.max()) + 1, 41):
        assert best <= pinball_loss(torch.full((n, 1), c, dtype=torch.float64), y, [tau]) + 1e-12


def test_bad_forecasting_inputs_raise():
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        pinball_loss(torch.zeros(3, 1), torch.zeros(3), [1.0])
    with pytest.raises(ValueError, match=r"expected input \(N, Q\)"):
        pinball_loss(torch.zeros(3, 2), torch.zeros(3), [0.5])
    with pytest.raises(ValueError, match="strictly positive"):
        SeriesTransform(log=True).fit(np.array([1.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="window"):
        make_windows(np.arange(5.0), 5)
    with pytest.raises(ValueError, match="include 0.5"):
        LSTMForecaster([0.1, 0.9])
    with pytest.raises(ValueError, match="too few"):
        conformal_margin(np.zeros(3), np.zeros(3), np.zeros(3), alpha=0.1)
