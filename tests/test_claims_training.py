"""The lecture's initialisation claims during real training on MNIST-1D (testbed.scenarios.training's studies).

Each test trains small nets through testbed.train with fixed seeds and compares with the claim's prediction:
exact claims (symmetry, a shut-down signal) exactly, statistical ones (He against Glorot) with a confidence bound
over seeds.
"""

import math

import numpy as np
import pytest
from scipy import stats

from testbed import data, nn, optim, train
from testbed.scenarios import training

#: Two-sided confidence of the seed-based bounds.
CONFIDENCE = 0.95
#: Share of the last steps whose mean is a run's final loss (minibatch noise averages out).
FINAL_SHARE = 0.1


@pytest.fixture(scope="module")
def mnist1d():
    return data.load("mnist1d", dtype=np.float32)


def relu_net(dataset, depth, width, init, seed, bias=0.0):
    widths = (dataset.features,) + (width,) * (depth - 1) + (dataset.classes,)
    net = nn.MLP(widths, "relu", bias=True, output="linear", dtype=np.float32).initialize(init, seed=seed)
    for l in range(1, depth):
        net.biases(l)[...] = bias
    return net


def final_loss(history):
    losses = history.train_loss
    return float(np.mean(losses[-max(1, int(FINAL_SHARE * losses.size)) :]))


def mean_and_halfwidth(values):
    """Mean and the half-width of its Student-t confidence interval at CONFIDENCE."""
    values = np.asarray(values)
    t = stats.t.ppf(0.5 + CONFIDENCE / 2, values.size - 1)
    return values.mean(), t * values.std(ddof=1) / math.sqrt(values.size)


#: He et al. 2015's depth with plain SGD (reference.md section 6: torch gives 1.25 against 2.27 at 1,500 steps).
DEEP = 30
WIDTH = 64
SEEDS = 3
STEPS = 400
LR = 0.01


def test_a_30_layer_relu_net_trains_with_he_and_stalls_with_glorot(mnist1d):
    """Glorot's variance 1/fan_in at equal widths halves a ReLU signal per layer (2^-29 at the top): the logits
    are ~constant, the loss stays at chance, ln 10. He's keeps it and trains: its final loss lies below Glorot's
    by more than both confidence half-widths over the seeds."""
    nets = [
        relu_net(mnist1d, DEEP, WIDTH, init, seed) for init in ("he_normal", "glorot_normal") for seed in range(SEEDS)
    ]
    histories = train.fit_many(
        nets, mnist1d, optim.SGD(lr=LR), steps=STEPS, batch=128, seeds=list(range(SEEDS)) * 2, progress=False
    )
    he = [final_loss(h) for h in histories[:SEEDS]]
    glorot = [final_loss(h) for h in histories[SEEDS:]]
    he_mean, he_half = mean_and_halfwidth(he)
    glorot_mean, glorot_half = mean_and_halfwidth(glorot)
    chance = math.log(mnist1d.classes)
    assert he_mean + he_half < glorot_mean - glorot_half
    # stalled: no seed moved off the chance level by more than the spread of a chance-level minibatch loss
    assert all(abs(g - chance) < 0.05 for g in glorot), glorot
    assert all(h.diverged_at is None for h in histories)


def test_zero_and_constant_starts_keep_every_hidden_unit_identical(mnist1d):
    """Identical units get identical inputs and identical gradients, so no step can make them differ: one
    distinct unit per hidden layer after training, exactly; a random start keeps all of them distinct."""
    width, depth = 16, 4
    for name, (init, params) in training.SYMMETRY_STARTS.items():
        widths = (mnist1d.features,) + (width,) * (depth - 1) + (mnist1d.classes,)
        net = nn.MLP(widths, "tanh", bias=True, output="linear").initialize(init, seed=1, **params)
        train.fit(net, mnist1d, optim.SGD(lr=0.1), steps=60, batch=64, progress=False, record_layers=False)
        counts = [training.distinct_units(net, l) for l in range(1, depth)]
        assert counts == ([width] * (depth - 1) if name == "random" else [1] * (depth - 1)), (name, counts)


def test_a_dead_relu_layer_shuts_the_signal_down_for_good(mnist1d):
    """Hidden biases of -3 switch a whole layer off on every training input: no gradient reaches the layers
    below it (their parameters stay bit for bit), the logits are a constant, and the loss cannot go below the
    best constant prediction, the entropy of the class frequencies."""
    depth = 6
    net = relu_net(mnist1d, depth, 32, "he_normal", seed=2, bias=-3.0)
    dead = [training.dead_on(net, mnist1d.x_train, l).all() for l in range(1, depth)]
    shutdown = dead.index(True) + 1
    before = net.params.copy()
    history = train.fit(net, mnist1d, optim.Adam(lr=1e-3), steps=100, batch=128, progress=False, record_layers=False)
    start, _ = net._offsets[shutdown - 1]
    np.testing.assert_array_equal(net.params[:start], before[:start])
    frequencies = np.bincount(mnist1d.y_train, minlength=mnist1d.classes) / mnist1d.y_train.size
    entropy = float(-np.sum(frequencies * np.log(frequencies)))
    assert np.all(history.train_eval_loss >= entropy - 1e-6)
    assert training.dead_on(net, mnist1d.x_train, shutdown).all()


def test_sigmoid_top_hidden_layer_saturates_at_zero_early(mnist1d):
    """Glorot & Bengio 2010 (figure 2): with the standard initialisation U[-1/sqrt(n), 1/sqrt(n)] the top hidden
    sigmoid layer is driven towards 0 (the saturated side) within the first steps while the layers below stay
    near the sigmoid's centre value 1/2."""
    depth, width = 5, 100
    saturated_mean, centred_mean = 0.15, 0.4  # 1/2 is a sigmoid unit at its centre; 0 is saturated
    for seed in (0, 1):
        widths = (mnist1d.features,) + (width,) * (depth - 1) + (mnist1d.classes,)
        net = nn.MLP(widths, "sigmoid", bias=True, output="linear", dtype=np.float32)
        net.initialize("lecun_uniform", seed=seed)
        for l in range(1, depth + 1):
            net.weights(l)[...] /= math.sqrt(3.0)
        history = train.fit(
            net, mnist1d, optim.SGD(lr=1.0), steps=150, batch=32, seed=seed, eval_every=50, progress=False
        )
        top = history.post_mean[-1, depth - 2]
        assert top < saturated_mean, history.post_mean
        assert np.all(history.post_mean[-1, : depth - 2] > centred_mean), history.post_mean


def test_adaptive_optimizers_beat_plain_sgd_on_the_same_net(mnist1d):
    """At the usual rates (SGD 0.01, Adam 1e-3) Adam's per-component steps train the 8-layer net faster: its
    final loss lies below SGD's by more than the confidence half-width of the minibatch losses' means."""
    finals = {}
    for name in ("sgd", "adam"):
        rule, hyper = training.OPTIMIZER_SETTINGS[name]
        net = relu_net(mnist1d, 8, WIDTH, "he_normal", seed=0)
        history = train.fit(
            net, mnist1d, optim.make(rule, **hyper), steps=200, batch=128, progress=False, record_layers=False
        )
        finals[name] = mean_and_halfwidth(history.train_loss[-max(2, int(FINAL_SHARE * 200)) :])
    (adam, adam_half), (sgd, sgd_half) = finals["adam"], finals["sgd"]
    assert adam + adam_half < sgd - sgd_half, finals
