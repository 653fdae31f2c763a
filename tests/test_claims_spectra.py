"""Claims about dynamical isometry (Pennington, Schoenholz & Ganguli 2017), measured against free probability.

- ReLU cannot reach dynamical isometry: even at criticality with orthogonal weights, its best case, the variance
  of the squared singular values of the input-output Jacobian grows like L (2L with Gaussian weights).
- Orthogonal tanh nets at small q* on the critical line nearly can: the variance is 8 L q*^2 to leading order,
  and every singular value stays near 1, where Gaussian weights at the same q* spread them with variance ~ L.
"""

import math

import numpy as np

from testbed import spectra
from testbed.theory import spectra as theory

#: Independent nets (one input each), their width and the depths recorded along each net.
NETS = 16
WIDTH = 128
DEPTHS = (2, 4, 8)
TANH_DEPTHS = (4, 8, 16)
#: q* of the tanh nets (Pennington et al. 2017 use 1/64 among others).
SMALL_Q_STAR = 1.0 / 64.0
#: Standard errors allowed between a mean over NETS nets and its expectation.
Z_BOUND = 4.5
#: The finite-width allowance of tests/test_theory_spectra.py: FINITE_WIDTH_FACTOR L / n, relative.
FINITE_WIDTH_FACTOR = 2.0
#: A singular value within this factor of 1 counts as "near 1" (sigma in [1/2, 3/2]).
NEAR_ONE = 0.5


def _variances(init, activation, depth, depths, sigma_b2=0.0, input_var=1.0, **params):
    """Per recorded depth: the variance of the squared singular values over NETS nets, and all the values."""
    variances = {l: [] for l in depths}
    values = {l: [] for l in depths}
    for seed in range(NETS):
        run = spectra.jacobian_singular_values(
            init,
            activation,
            depth,
            WIDTH,
            input_var=input_var,
            bias_var=sigma_b2,
            seed=100 + seed,
            depths=depths,
            **params,
        )
        for l in depths:
            variances[l].append(spectra.Spectra.spectral_moments(run.at(l))[1][0])
            values[l].append(run.at(l)[0])
    return {l: np.array(v) for l, v in variances.items()}, {l: np.concatenate(v) for l, v in values.items()}


def _bound(sample, expected, depth):
    return Z_BOUND * sample.std(ddof=1) / math.sqrt(sample.size) + FINITE_WIDTH_FACTOR * depth / WIDTH * expected


def test_relu_cannot_reach_dynamical_isometry_variance_grows_like_depth():
    # theory: mu_1 = mu_2 = 1/2 at every q*, so the slope mu_2/mu_1^2 - 1 - s_1 is 1 (orthogonal) or 2 (Gaussian),
    # whatever sigma_w^2 and sigma_b^2
    for weights, slope in (("orthogonal", 1.0), ("gaussian", 2.0)):
        for sigma_w2 in (1.0, 2.0, 3.0):
            assert np.allclose(theory.jacobian_moments("relu", 5, sigma_w2, weights=weights).spread, slope)
    # measured at criticality (sigma_w^2 = 2) with orthogonal weights, ReLU's best case
    variances, values = _variances("orthogonal", "relu", max(DEPTHS), DEPTHS, gain=math.sqrt(2.0))
    for depth in DEPTHS:
        predicted = theory.isometry_variance("relu", depth, weights="orthogonal", sigma_w2=2.0)
        assert predicted == depth
        assert abs(variances[depth].mean() - predicted) <= _bound(variances[depth], predicted, depth), depth
    # growth with depth: 4x from L = 2 to 8 predicted; more than 2x measured
    assert variances[8].mean() > 2.0 * variances[2].mean()
    # far from isometric: most singular values are not near 1 at depth 8 (half are exactly 0 per layer already)
    near = np.mean(np.abs(values[8] - 1.0) <= NEAR_ONE)
    assert near < 0.5, near


def test_orthogonal_tanh_with_small_q_star_nearly_reaches_dynamical_isometry():
    sigma_w2, sigma_b2 = theory.critical_point("tanh", SMALL_Q_STAR)
    input_var = theory.fixed_point_input_var("tanh", SMALL_Q_STAR, sigma_w2, sigma_b2)
    depth = max(TANH_DEPTHS)
    variances, values = _variances(
        "orthogonal", "tanh", depth, TANH_DEPTHS, sigma_b2, input_var, gain=math.sqrt(sigma_w2)
    )
    for l in TANH_DEPTHS:
        predicted = theory.isometry_variance("tanh", l, weights="orthogonal", q_star=SMALL_Q_STAR)
        # ~ 8 L q*^2: the series' O(q*^4) remainder is 2.5% at q* = 1/64
        assert abs(predicted / (l * theory.small_q_spread("tanh", SMALL_Q_STAR)) - 1.0) < 0.05
        assert abs(variances[l].mean() - predicted) <= _bound(variances[l], predicted, l), l
    # ReLU's slope is 1 per layer; orthogonal tanh at q* = 1/64 has 8 q*^2 ~ 0.002
    assert variances[depth].mean() < 0.01 * depth
    near = np.mean(np.abs(values[depth] - 1.0) <= NEAR_ONE)
    assert near > 0.99, near
    # the same q* with Gaussian weights: spread ~ L, no isometry (orthogonality is needed too)
    gaussian, gaussian_values = _variances(
        "normal", "tanh", 8, (8,), sigma_b2, input_var, std=math.sqrt(sigma_w2 / WIDTH)
    )
    predicted = theory.isometry_variance("tanh", 8, weights="gaussian", q_star=SMALL_Q_STAR)
    assert abs(predicted - 8.0) < 0.1
    assert abs(gaussian[8].mean() - predicted) <= _bound(gaussian[8], predicted, 8)
    assert np.mean(np.abs(gaussian_values[8] - 1.0) <= NEAR_ONE) < 0.5
