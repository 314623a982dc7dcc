"""Every initialisation scheme draws from torch.nn.init's distribution (requirement mlp.4).

Shapes are non-square (fan_in != fan_out), dense and conv-shaped, so a fan_in/fan_out mix-up, a
wrong receptive field, a wrong gain or a normal/uniform swap changes the std or the bound. Our
draws and torch's, pooled over `repeats` draws each, must agree in std and in the tail (the
99th percentile of |w|: 0.99 x a uniform's bound, 2.58 std of a normal) within the tolerances of
experiments/fundamentals.toml.
calculate_gain must equal torch's exactly for every nonlinearity torch names.
"""
import math

import numpy as np
import pytest

from implementations.fundamentals import init

torch = pytest.importorskip("torch", reason="the torch reference is not installed in this environment")
pytestmark = pytest.mark.torch
SHAPES = [(400, 60), (60, 400), (48, 16, 3, 3), (16, 48, 5, 3)]
GAINS = [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None),
         ("leaky_relu", 0.2), ("selu", None), ("conv2d", None), ("conv_transpose1d", None)]


def stats(draw, repeats: int) -> tuple[float, float]:
    """(std, 99th percentile of |w|) of `repeats` draws pooled. The percentile is 0.99 x the bound
    of a uniform and 2.58 std of a normal, so it tells the two apart at equal std."""
    w = np.concatenate([np.asarray(draw(), dtype=np.float64).ravel() for _ in range(repeats)])
    return float(w.std()), float(np.quantile(np.abs(w), 0.99))


def torch_draw(fn, shape, **kw):
    def draw():
        t = torch.empty(shape, dtype=torch.float64)
        fn(t, **kw)
        return t.numpy()
    return draw


def cases():
    """(label, our draw(rng), torch's draw()) for every scheme, fan mode and gain."""
    out = []
    for shape in SHAPES:
        for nl, param in GAINS[:7]:
            gain = torch.nn.init.calculate_gain(nl, param)
            ours_gain = init.calculate_gain(nl, param)
            out.append((f"xavier_uniform {shape} gain({nl},{param})",
                        lambda rng, s=shape, g=ours_gain: init.xavier_uniform(s, rng, gain=g),
                        torch_draw(torch.nn.init.xavier_uniform_, shape, gain=gain)))
            out.append((f"xavier_normal {shape} gain({nl},{param})",
                        lambda rng, s=shape, g=ours_gain: init.xavier_normal(s, rng, gain=g),
                        torch_draw(torch.nn.init.xavier_normal_, shape, gain=gain)))
        for mode in ("fan_in", "fan_out"):
            for nl, a in (("relu", 0.0), ("leaky_relu", 0.0), ("leaky_relu", 0.2), ("tanh", 0.0), ("linear", 0.0)):
                for name in ("kaiming_uniform", "kaiming_normal"):
                    out.append((f"{name} {shape} {mode} {nl} a={a}",
                                lambda rng, s=shape, f=getattr(init, name), m=mode, n=nl, a=a:
                                f(s, rng, a=a, mode=m, nonlinearity=n),
                                torch_draw(getattr(torch.nn.init, f"{name}_"), shape, a=a, mode=mode, nonlinearity=nl)))
        # nn.Linear / nn.Conv2d's default: kaiming_uniform(a=sqrt(5)), what `initialize` calls torch_default
        out.append((f"torch_default {shape}", lambda rng, s=shape: init.initialize("torch_default", s, rng),
                    torch_draw(torch.nn.init.kaiming_uniform_, shape, a=math.sqrt(5))))
        # the names the MLP uses: `initialize(scheme, shape, nonlinearity=...)` picks the gain itself
        for scheme, fn in (("xavier_normal", torch.nn.init.xavier_normal_), ("kaiming_uniform", None)):
            for nl in ("tanh", "relu"):
                ref = (torch_draw(fn, shape, gain=torch.nn.init.calculate_gain(nl)) if fn else
                       torch_draw(torch.nn.init.kaiming_uniform_, shape, nonlinearity=nl))
                out.append((f"initialize({scheme}, {nl}) {shape}",
                            lambda rng, s=shape, sc=scheme, n=nl: init.initialize(sc, s, rng, nonlinearity=n), ref))
    return out


def test_every_scheme_matches_torch_nn_init(evidence, experiment):
    cfg = experiment("init_parity")
    torch.manual_seed(0)
    rows, worst_std, worst_bound = [], 0.0, 0.0
    for i, (label, ours, theirs) in enumerate(cases()):
        rng = np.random.default_rng(i)
        s_ours, m_ours = stats(lambda: ours(rng), cfg["repeats"])
        s_ref, m_ref = stats(theirs, cfg["repeats"])
        std_err, bound_err = abs(s_ours / s_ref - 1), abs(m_ours / m_ref - 1)
        worst_std, worst_bound = max(worst_std, std_err), max(worst_bound, bound_err)
        rows.append({"case": label, "std ours": s_ours, "std torch": s_ref, "q99 |w| ours": m_ours,
                     "q99 |w| torch": m_ref, "std rel err": std_err, "q99 rel err": bound_err})
    evidence.table("init_vs_torch", rows)
    evidence.metric("cases", len(rows))
    evidence.metric("worst_std_rel_error", worst_std, threshold=cfg["max_std_rel_error"], direction="lower", key=True)
    evidence.metric("worst_q99_abs_rel_error", worst_bound, threshold=cfg["max_q99_rel_error"], direction="lower")
    bad = [r["case"] for r in rows
           if r["std rel err"] > cfg["max_std_rel_error"] or r["q99 rel err"] > cfg["max_q99_rel_error"]]
    assert not bad, f"{len(bad)} of {len(rows)} cases differ from torch.nn.init: {bad[:8]}"


def test_the_comparison_sees_a_fan_mix_up_and_a_wrong_gain(experiment):
    """Negative controls: fan_out instead of fan_in, and gain 1 instead of tanh's 5/3, are caught."""
    cfg = experiment("init_parity")
    rng = np.random.default_rng(0)
    for ours, theirs in (
            (lambda: init.kaiming_normal((400, 60), rng, mode="fan_out"),
             torch_draw(torch.nn.init.kaiming_normal_, (400, 60), mode="fan_in")),
            (lambda: init.xavier_uniform((60, 400), rng, gain=1.0),
             torch_draw(torch.nn.init.xavier_uniform_, (60, 400), gain=5 / 3))):
        ratio = stats(ours, cfg["repeats"])[0] / stats(theirs, cfg["repeats"])[0]
        assert abs(ratio - 1) > 10 * cfg["max_std_rel_error"]


@pytest.mark.parametrize("nonlinearity, param", GAINS + [("leaky_relu", 0.0)])
def test_calculate_gain_matches_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == torch.nn.init.calculate_gain(nonlinearity, param)


def test_bad_mode_and_nonlinearity_raise():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="fan_in"):
        init.kaiming_normal((3, 4), rng, mode="fan_avg")
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        init.calculate_gain("softplus")
    with pytest.raises(ValueError, match="at least 2 dims"):
        init.xavier_uniform((5,), rng)
