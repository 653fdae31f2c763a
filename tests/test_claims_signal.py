"""The lecture's claims about initialisation (lecture-notes.md, first half) as regression tests.

Each test measures fresh networks built by :mod:`testbed.nn` and compares them with :mod:`testbed.theory.signal`
within a bound derived from the sample size: ``Z_BOUND`` standard errors, the standard error being either
exact (the Hanin-Rolnick second moment for He/LeCun ReLU nets; ``2/n`` for a layer's variance map with Gaussian
weights; ``p(1-p)/n`` for a fraction over n exchangeable units) or estimated from independent nets.
"""

import math

import numpy as np
import pytest

import testbed.theory.signal as theory
from testbed import init as initialisers
from testbed import nn

#: Standard errors allowed (two-sided normal tail 7e-6 per check; every seed is fixed).
Z_BOUND = 4.5
#: The claim "through 50+ layers".
DEEP = 52
#: Width of the deep ReLU nets and their batch.
DEEP_WIDTH = 128
DEEP_BATCH = 8
#: Independent deep nets per initialiser.
DEEP_NETS = 2
#: Width and batch of the tanh nets.
TANH_WIDTH = 128
TANH_BATCH = 16
TANH_DEPTH = 20


def unit_norm_inputs(batch, width, seed):
    """Gaussian inputs rescaled so that every row has M_0 = |x|^2 / n = 1 exactly."""
    x = np.random.default_rng(seed).standard_normal((batch, width))
    return x / np.sqrt(np.mean(x * x, axis=1, keepdims=True))


def relative_error(measured, predicted):
    return abs(measured / predicted - 1.0)


# ---------------------------------------------------------------------------------------------------------------
# He keeps ReLU variance through 50+ layers; LeCun halves it per layer


@pytest.mark.parametrize("init,factor", [("he_normal", 1.0), ("lecun_normal", 0.5)])
def test_relu_variance_he_keeps_lecun_halves(init, factor):
    widths = [DEEP_WIDTH] * (DEEP + 1)
    x = unit_norm_inputs(DEEP_BATCH, DEEP_WIDTH, seed=1)
    net = nn.MLP(widths, "relu")
    second_moments = []
    for k in range(DEEP_NETS):
        net.initialize(init, seed=100 + k)
        # M_l = |x^(l)|^2 / n_l averaged over the batch, with M_0 = 1 for every input
        second_moments.append(np.concatenate([[1.0], net.forward(x, keep=False).post_meansq]))
    m = np.array(second_moments)
    predicted = theory.expected_variances(init, "relu", widths).post_meansq
    np.testing.assert_allclose(predicted, factor ** np.arange(1, DEEP + 1), rtol=1e-12)
    # Each layer multiplies M by a factor F_l with E[F_l | earlier layers] = n Var[W] / 2 (1 for He, 1/2 for
    # LeCun) and relative variance 5/n (Hanin & Rolnick 2018), so the mean of the DEEP x DEEP_NETS factors has a
    # relative standard error of at most sqrt(5 / n / (DEEP DEEP_NETS)) (the factors are martingale differences).
    factors = m[:, 1:] / m[:, :-1]
    bound = Z_BOUND * math.sqrt(theory.HANIN_ROLNICK_CONSTANT / DEEP_WIDTH / factors.size)
    assert relative_error(factors.mean(), factor) < bound
    # end to end: Var[M_L / M_0] = prod_l (1 + 5/n_l) - 1 for one input (the batch average only shrinks it)
    end_bound = Z_BOUND * math.sqrt(theory.hanin_rolnick_fluctuation(widths) / DEEP_NETS)
    assert relative_error(m[:, -1].mean(), predicted[-1]) < end_bound
    # the two claims apart: after 52 layers He is O(1), LeCun has lost a factor 2^52 ~ 4e15
    assert m[:, -1].mean() > 1e-3 if factor == 1.0 else m[:, -1].mean() < 1e-12


# ---------------------------------------------------------------------------------------------------------------
# tanh: LeCun/Glorot stay near the linear regime; too small vanishes; too large saturates


def tanh_nets(init, nets=2, depth=TANH_DEPTH, **params):
    widths = [TANH_WIDTH] * (depth + 1)
    x = unit_norm_inputs(TANH_BATCH, TANH_WIDTH, seed=2)
    net = nn.MLP(widths, "tanh")
    runs = []
    for k in range(nets):
        net.initialize(init, seed=200 + k, **params)
        runs.append(net.forward(x, keep=False))
    return widths, runs


def layer_map_ratio(stats, gains):
    """E[s^(l)^2] / (n_(l-1) v_l E[x^(l-1)^2]) for l >= 2: 1 in expectation over the weights of layer l."""
    return stats.pre_meansq[1:] / (gains[1:] * stats.post_meansq[:-1])


#: Relative variance of one layer's ratio above: w^T C w with Gaussian w has relative variance <= 2 per unit.
LAYER_MAP_RELATIVE_VARIANCE = 2.0


@pytest.mark.parametrize("init", ["lecun_normal", "glorot_normal"])
def test_tanh_lecun_and_glorot_stay_near_the_linear_regime(init):
    widths, runs = tanh_nets(init)
    predicted = theory.expected_variances(init, "tanh", widths)
    gains = predicted.weight_gain
    np.testing.assert_allclose(gains, 1.0)  # n Var[W] = 1: the linear-regime fixed point of Glorot & LeCun
    for stats in runs:
        ratio = layer_map_ratio(stats, gains)
        bound = Z_BOUND * math.sqrt(LAYER_MAP_RELATIVE_VARIANCE / TANH_WIDTH / ratio.size)
        assert abs(ratio.mean() - 1.0) < bound
        # the variance shrinks into the linear regime, where E[tanh(s)^2] / E[s^2] -> 1 (0.9: the claim's "near"),
        # as mean field predicts, and nothing saturates
        assert predicted.post_meansq[-1] / predicted.pre_var[-1] > 0.9
        assert stats.post_meansq[-1] / stats.pre_meansq[-1] > 0.9
        p = predicted.saturated_frac
        assert np.all(np.abs(stats.saturated_frac - p) <= Z_BOUND * np.sqrt(p * (1 - p) / TANH_WIDTH))
        assert np.all(stats.saturated_frac[2:] == 0.0)
    # the mean-field variance at the last layer (q^l ~ 3/(2 l) at the critical point sw2 = 1, sb2 = 0): each of the
    # TANH_DEPTH layer maps adds a relative variance <= 2/n, so log(q^L measured / predicted) has a standard
    # deviation of about sqrt(2 L / n) per net (delta method)
    log_errors = [math.log(stats.pre_meansq[-1] / predicted.pre_var[-1]) for stats in runs]
    sigma = math.sqrt(LAYER_MAP_RELATIVE_VARIANCE * TANH_DEPTH / TANH_WIDTH / len(runs))
    assert abs(np.mean(log_errors)) < Z_BOUND * sigma


def test_tanh_too_small_init_vanishes_geometrically():
    std = 0.01
    widths, runs = tanh_nets("normal", nets=1, std=std)
    gain = TANH_WIDTH * std**2  # 0.0256 per layer
    predicted = theory.expected_variances("normal", "tanh", widths, std=std)
    stats = runs[0]
    ratio = layer_map_ratio(stats, predicted.weight_gain)
    assert abs(ratio.mean() - 1.0) < Z_BOUND * math.sqrt(LAYER_MAP_RELATIVE_VARIANCE / TANH_WIDTH / ratio.size)
    # in the linear regime tanh(s) = s: every layer multiplies the variance by the gain n std^2
    per_layer = (stats.pre_meansq[-1] / stats.pre_meansq[0]) ** (1.0 / (TANH_DEPTH - 1))
    sigma_log = math.sqrt(LAYER_MAP_RELATIVE_VARIANCE / TANH_WIDTH / (TANH_DEPTH - 1))  # delta method
    assert abs(math.log(per_layer / gain)) < Z_BOUND * sigma_log
    assert stats.pre_meansq[-1] < 1e-25 and stats.underflow_layer is None


def test_tanh_large_init_saturates_most_units():
    widths, runs = tanh_nets("normal", nets=1, depth=6, std=1.0)
    predicted = theory.expected_variances("normal", "tanh", widths, std=1.0)
    stats = runs[0]
    p = predicted.saturated_frac
    assert np.all(p > 0.75)
    # most |x| > 0.99, at every layer, as mean-field predicts; n units of a layer are exchangeable, so the
    # standard error of the fraction is at most sqrt(p (1 - p) / n)
    assert np.all(stats.saturated_frac > 0.5)
    assert np.all(np.abs(stats.saturated_frac - p) < Z_BOUND * np.sqrt(p * (1 - p) / TANH_WIDTH))


# ---------------------------------------------------------------------------------------------------------------
# W = 0 or constant: symmetry that gradient steps never break; W = 0 is a saddle with zero hidden gradients

SYMMETRY_WIDTHS = (6, 12, 12, 3)
SYMMETRY_BATCH = 16
SYMMETRY_STEPS = 25
SYMMETRY_LR = 0.1
#: Units that are identical in exact arithmetic may differ by the rounding of dot products that the kernels
#: order differently per unit: a few ulps of the values involved.
ROUNDING_RTOL = 64 * np.finfo(np.float64).eps


def train_mse(net, x, y, steps):
    losses = []
    for _ in range(steps):
        net.forward(x, keep=True)
        out = net.output
        losses.append(0.5 * float(np.sum((out - y) ** 2)))
        # dloss/ds^(L) for loss = 1/2 |tanh(s^(L)) - y|^2
        net.backward((out - y) * (1.0 - out * out))
        net.params -= SYMMETRY_LR * net.grads
    net.forward(x, keep=True)
    return losses


def unit_spread(matrix, axis):
    """Largest difference between the slices of ``matrix`` along ``axis`` (0: rows, 1: columns)."""
    return float(np.max(np.ptp(matrix, axis=axis)))


@pytest.mark.parametrize("init,params", [("constant", dict(value=0.3)), ("zeros", {})])
def test_constant_or_zero_weights_keep_units_identical_under_training(init, params):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((SYMMETRY_BATCH, SYMMETRY_WIDTHS[0]))
    y = 0.5 * rng.standard_normal((SYMMETRY_BATCH, SYMMETRY_WIDTHS[-1]))
    net = nn.MLP(SYMMETRY_WIDTHS, "tanh", bias=True).initialize(init, **params)
    losses = train_mse(net, x, y, SYMMETRY_STEPS)
    depth = len(SYMMETRY_WIDTHS) - 1
    scale = max(1.0, float(np.max(np.abs(net.params))))
    for l in range(1, depth):  # hidden layers
        # every unit of the layer computes the same function: identical incoming weights and activations
        assert unit_spread(net.weights(l), axis=0) <= ROUNDING_RTOL * scale
        assert unit_spread(net.post(l), axis=1) <= ROUNDING_RTOL * scale
        # and the next layer sees them through identical outgoing weights
        assert unit_spread(net.weights(l + 1), axis=1) <= ROUNDING_RTOL * scale
    if init == "zeros":
        # W = 0 is a critical point: every weight gradient is 0 (hidden x = tanh(0) = 0, hidden delta = W^T ... = 0),
        # so training only moves the output biases and the loss stalls
        for l in range(1, depth + 1):
            assert np.all(net.weight_grads(l) == 0.0)
        for l in range(1, depth + 1):
            assert np.all(net.weights(l) == 0.0)
    else:
        assert losses[-1] < losses[0]  # it trains, but only inside the symmetric subspace
    # a random start breaks the symmetry at once (the control)
    control = nn.MLP(SYMMETRY_WIDTHS, "tanh", bias=True).initialize("glorot_normal", seed=4)
    train_mse(control, x, y, 1)
    assert unit_spread(control.post(1), axis=1) > 0.1


def two_layer_loss(w1, w2, x, y):
    net = nn.MLP((x.shape[1], w1.shape[0], y.shape[1]), "tanh")
    net.weights(1)[...] = w1
    net.weights(2)[...] = w2
    net.forward(x, keep=False)
    return 0.5 * float(np.sum((net.output - y) ** 2))


def two_layer_loss_reference(w1, w2, x, y):
    return 0.5 * float(np.sum((np.tanh(np.tanh(x @ w1.T) @ w2.T) - y) ** 2))


def test_zero_weights_are_a_saddle():
    rng = np.random.default_rng(5)
    n0, hidden, out, batch = 5, 7, 2, 11
    x, y = rng.standard_normal((batch, n0)), rng.standard_normal((batch, out))
    a, b = rng.standard_normal((hidden, n0)), rng.standard_normal((out, hidden))
    zero = two_layer_loss(np.zeros((hidden, n0)), np.zeros((out, hidden)), x, y)
    assert zero == pytest.approx(0.5 * np.sum(y * y), rel=1e-15)
    t = 1e-3
    # loss(t a, +-t b) = loss(0) -+ t^2 sum_batch <y, b a x> + O(t^4): one direction goes down, the other up
    second_order = t * t * float(np.sum(y * (x @ a.T @ b.T)))
    changes = []
    for sign in (1.0, -1.0):
        loss = two_layer_loss(t * a, sign * t * b, x, y)
        assert loss == pytest.approx(two_layer_loss_reference(t * a, sign * t * b, x, y), rel=1e-13)
        changes.append(loss - zero)
    assert np.sign(changes[0]) == -np.sign(second_order) and np.sign(changes[1]) == np.sign(second_order)
    # the part odd in b is the quadratic term, up to a relative O(t^2)
    odd = 0.5 * (changes[0] - changes[1])
    assert odd == pytest.approx(-second_order, rel=100 * t * t)


# ---------------------------------------------------------------------------------------------------------------
# ReLU with too-negative weights: the signal shuts down


def test_negative_relu_weights_shut_the_signal_down():
    widths = [64] * 7
    x = np.random.default_rng(6).standard_normal((32, 64))
    net = nn.MLP(widths, "relu").initialize("he_normal", seed=7)
    healthy = net.forward(x, keep=True)
    predicted = theory.expected_variances("he_normal", "relu", widths, batch=32)
    # with He weights the dead fraction follows the equicorrelated-batch prediction (n exchangeable units)
    p = predicted.dead_frac
    assert np.all(np.abs(healthy.dead_frac - p) <= Z_BOUND * np.sqrt(p * (1 - p) / 64))
    for l in range(1, net.depth + 1):
        net.weights(l)[...] = -np.abs(net.weights(l))
    stats = net.forward(x, keep=True)
    # x^(1) >= 0 and W^(2) <= 0 give s^(2) <= 0: every unit from layer 2 on is dead, for every input
    assert np.all(stats.dead_frac[1:] == 1.0) and np.all(stats.post_meansq[1:] == 0.0)
    assert stats.dead_frac[0] < 1.0
    back = net.backward(np.random.default_rng(8).standard_normal((32, 64)))
    # no gradient reaches the layers below the shutdown
    for l in (1, 2):
        assert np.all(net.weight_grads(l) == 0.0)
    assert np.all(back.grad_meansq[:2] == 0.0)


# ---------------------------------------------------------------------------------------------------------------
# unequal widths: Glorot balances forward and backward, fan_in modes keep only the forward pass

FUNNEL = (32, 64, 128, 256, 512)
FUNNEL_INITS = {
    "fan_in": ("lecun_normal", {}),
    "fan_out": ("he_normal", dict(mode="fan_out", nonlinearity="linear")),
    "glorot": ("glorot_normal", {}),
}


def funnel_ratios(init, params):
    x = np.random.default_rng(9).standard_normal((64, FUNNEL[0]))
    net = nn.MLP(FUNNEL, "linear").initialize(init, seed=10, **params)
    forward = net.forward(x, keep=True)
    backward = net.backward(np.random.default_rng(11).standard_normal((64, FUNNEL[-1])))
    # forward from layer 1 to L, backward from L to 1 (both over the same L - 1 weight matrices W^(2..L))
    return (forward.pre_meansq[-1] / forward.pre_meansq[0], backward.grad_meansq[0] / backward.grad_meansq[-1])


def test_unequal_widths_glorot_balances_fan_in_keeps_forward_only():
    measured, predicted = {}, {}
    for mode, (init, params) in FUNNEL_INITS.items():
        measured[mode] = funnel_ratios(init, params)
        forward, backward = theory.linear_regime_variances(
            theory.weight_variances(init, FUNNEL, **params), FUNNEL, "linear"
        )
        predicted[mode] = (forward[-1] / forward[0], backward[0] / backward[-1])
        # each layer's variance map has relative variance <= 2 / (number of units averaged): the log of the
        # product over layers has standard deviation about sqrt(sum 2/n) (delta method)
        sigma_forward = math.sqrt(sum(2.0 / n for n in FUNNEL[2:]))
        sigma_backward = math.sqrt(sum(2.0 / n for n in FUNNEL[1:-1]))
        assert abs(math.log(measured[mode][0] / predicted[mode][0])) < Z_BOUND * sigma_forward
        assert abs(math.log(measured[mode][1] / predicted[mode][1])) < Z_BOUND * sigma_backward
    assert predicted["fan_in"][0] == pytest.approx(1.0) and predicted["fan_out"][1] == pytest.approx(1.0)
    assert predicted["fan_in"][1] == pytest.approx(FUNNEL[-1] / FUNNEL[1])  # 8: gradients grow toward the input
    # Glorot's compromise: its worse direction deviates less than the fan modes' bad direction
    glorot_worst = max(abs(math.log(r)) for r in measured["glorot"])
    assert glorot_worst < abs(math.log(measured["fan_in"][1]))
    assert glorot_worst < abs(math.log(measured["fan_out"][0]))


# ---------------------------------------------------------------------------------------------------------------
# the lecture's uniform bound sqrt(6 / (1 + d_in + d_out)) gives variance 2 / (1 + d_in + d_out)


@pytest.mark.parametrize("fan_in,fan_out", [(300, 100), (50, 400)])
def test_lecture_uniform_bound_variance(fan_in, fan_out):
    w = initialisers.initialize("glorot_uniform", fan_in, fan_out, seed=12, bias_input=True)
    variance = 2.0 / (1 + fan_in + fan_out)
    assert theory.lecture_uniform_variance(fan_in, fan_out) == pytest.approx(variance, rel=1e-14)
    assert initialisers.variance("glorot_uniform", fan_in, fan_out, bias_input=True) == pytest.approx(variance)
    assert np.max(np.abs(w)) <= math.sqrt(6.0 / (1 + fan_in + fan_out))
    # uniform on [-U, U]: Var[w^2] = 4/5 variance^2, so the sample mean of w^2 has this standard error
    standard_error = math.sqrt(0.8) * variance / math.sqrt(w.size)
    assert abs(np.mean(w * w) - variance) < Z_BOUND * standard_error


# ---------------------------------------------------------------------------------------------------------------
# tanh mean field: q*, chi1 and xi_c measured against Poole et al. 2016 / Schoenholz et al. 2017

MEAN_FIELD_WIDTH = 256
MEAN_FIELD_DEPTH = 24
MEAN_FIELD_NETS = 4
#: Layers (1-based, inclusive) over which q* and chi1 are read: past a few xi_q, before the output.
STEADY = (8, MEAN_FIELD_DEPTH)


@pytest.mark.parametrize("sigma_w2,sigma_b2", [(1.5, 0.2), (4.0, 0.2)])
def test_tanh_q_star_and_chi1_match_mean_field(sigma_w2, sigma_b2):
    field = theory.mean_field("tanh", sigma_w2, sigma_b2)
    q_values, chi_values = [], []
    for k in range(MEAN_FIELD_NETS):
        run = nn.propagate(
            "normal",
            "tanh",
            MEAN_FIELD_DEPTH,
            MEAN_FIELD_WIDTH,
            batch=32,
            seed=300 + k,
            bias_var=sigma_b2,
            std=math.sqrt(sigma_w2 / MEAN_FIELD_WIDTH),
        )
        first, last = STEADY
        q_values.append(np.mean(run.pre_meansq[first - 1 : last]))
        grads = run.grad_meansq
        chi_values.append((grads[first - 1] / grads[last - 1]) ** (1.0 / (last - first)))
    for values, predicted in ((q_values, field.q_star), (chi_values, field.chi1)):
        values = np.array(values)
        assert abs(values.mean() - predicted) < Z_BOUND * values.std(ddof=1) / math.sqrt(values.size)
    assert (np.mean(chi_values) < 1.0) == (field.chi1 < 1.0)


def test_tanh_correlation_depth_scale_matches_mean_field():
    sigma_w2, sigma_b2 = 1.5, 0.2  # ordered: c* = 1, xi_c = -1 / ln chi1 ~ 4.4 layers
    field = theory.mean_field("tanh", sigma_w2, sigma_b2)
    assert field.c_star == 1.0
    pairs, depth = 16, 30
    rng = np.random.default_rng(13)
    a = rng.standard_normal((pairs, MEAN_FIELD_WIDTH))
    b = 0.5 * a + math.sqrt(1 - 0.25) * rng.standard_normal((pairs, MEAN_FIELD_WIDTH))
    x = np.concatenate([a, b])
    net = nn.MLP([MEAN_FIELD_WIDTH] * (depth + 1), "tanh", bias=True)
    slopes = []
    for k in range(MEAN_FIELD_NETS):
        net.initialize("normal", seed=400 + k, bias_var=sigma_b2, std=math.sqrt(sigma_w2 / MEAN_FIELD_WIDTH))
        net.forward(x, keep=True)
        gap = []
        for l in range(1, depth + 1):
            s = net.pre(l)
            c = np.sum(s[:pairs] * s[pairs:], axis=1) / np.sqrt(
                np.sum(s[:pairs] ** 2, axis=1) * np.sum(s[pairs:] ** 2, axis=1)
            )
            gap.append(np.mean(1.0 - c))
        gap = np.array(gap)
        layers = np.arange(1, depth + 1)
        window = (layers >= 6) & (gap > 1e-9)  # past the first xi_c, above rounding
        slopes.append(np.polyfit(layers[window], np.log(gap[window]), 1)[0])
    slopes = np.array(slopes)
    # 1 - c_l ~ exp(-l / xi_c)
    assert abs(slopes.mean() + 1.0 / field.xi_c) < Z_BOUND * slopes.std(ddof=1) / math.sqrt(slopes.size)


# ---------------------------------------------------------------------------------------------------------------
# Hanin & Rolnick: the finite-width fluctuation grows with sum 1/n_l

#: Trials (independent nets) per architecture.
HR_TRIALS = 2500
#: (depth, width): the first two share sum 1/n = 0.2 at depths 4 and 8; the third has sum 1/n = 0.05 at depth 4.
HR_ARCHITECTURES = [(4, 20), (8, 40), (4, 80)]


def hanin_rolnick_moments(depth, width, trials):
    widths = [width] * (depth + 1)
    x = unit_norm_inputs(1, width, seed=14)  # M_0 = 1
    net = nn.MLP(widths, "relu")
    m = np.empty(trials)
    for t in range(trials):
        net.initialize("he_normal", seed=10_000 + t)
        m[t] = net.forward(x, keep=False).post_meansq[-1]  # M_d for the one input
    return m


def test_finite_width_fluctuation_grows_with_sum_of_reciprocal_widths():
    excess = {}
    for depth, width in HR_ARCHITECTURES:
        widths = [width] * (depth + 1)
        m = hanin_rolnick_moments(depth, width, HR_TRIALS)
        predicted = theory.hanin_rolnick_moment_ratio(widths)
        second = m * m
        assert abs(m.mean() - 1.0) < Z_BOUND * m.std(ddof=1) / math.sqrt(HR_TRIALS)  # E[M_d] = M_0
        assert abs(second.mean() - predicted) < Z_BOUND * second.std(ddof=1) / math.sqrt(HR_TRIALS)
        excess[(depth, width)] = (second.mean() - 1.0, second.std(ddof=1) / math.sqrt(HR_TRIALS))
    # equal sum 1/n at twice the depth: the same fluctuation; a quarter of the sum at the same depth: far less
    (a, se_a), (b, se_b), (c, se_c) = (excess[arch] for arch in HR_ARCHITECTURES)
    assert abs(a - b) < Z_BOUND * math.hypot(se_a, se_b)
    assert c + Z_BOUND * se_c < min(a, b)
