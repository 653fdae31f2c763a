"""testbed.curvature: phi'' against differences of phi'; Hessian- and Gauss-Newton-vector products against the dense
matrices of the NumPy reference (tests/naive.py), finite differences of testbed.train's gradient and PyTorch's
double backward; Lanczos eigenpairs against np.linalg.eigh; Hutchinson's trace within its confidence bound;
stochastic Lanczos quadrature; loss slices against testbed.train.evaluate; bad input."""

import math

import naive
import numpy as np
import pytest

from testbed import activations, curvature, nn, train
from testbed.rules import activations as rules

#: Central-difference step for phi'' from phi', and a bound on |phi''''| over [-6, 6] for every activation
#: (tanh 4.08, erf 4.39, selu 1.76, gelu 1.60; computed with mpmath).
H = 1e-4
FOURTH_DERIVATIVE_BOUND = 5.0
ROUNDING_ULPS = 4.0
GRID = np.linspace(-6.0, 6.0, 241)
KINKS = (0.0, -1.0, 1.0)
#: Agreement of the products with the reference's dense matrices: those come from central differences with
#: steps 1e-5 (Hessian) and 1e-6 (Gauss-Newton): truncation ~h^2 |third derivatives|, rounding ~eps / h.
DENSE_ATOL = 1e-7
#: Against central differences of testbed's own gradient along v (step 1e-5).
FD_STEP = 1e-5
FD_RTOL = 1e-7
#: Lanczos against eigh: Ritz values of the converged pairs.
EIGEN_RTOL = 1e-8
#: Hutchinson probes, and the confidence bound in standard deviations (normal approximation; P(|Z| > 4) = 6e-5).
PROBES = 400
Z_BOUND = 4.0
WIDTHS = (6, 7, 5, 3)  # 49 + 40 + 18 = 107 parameters with biases
ROWS = 11


def make_net(activation="tanh", *, bias=True, output="linear", widths=WIDTHS, seed=5, dtype=np.float64):
    net = nn.MLP(widths, activation, bias=bias, output=output, dtype=dtype)
    net.initialize("glorot_normal", seed=seed, bias_var=0.1 if bias else 0.0)
    net.params *= 1.5  # away from the linear regime, so that phi'' matters
    return net


def layers(net):
    weights = [net.weights(l).copy() for l in range(1, net.depth + 1)]
    biases = [None if not net.bias else net.biases(l).copy() for l in range(1, net.depth + 1)]
    return weights, biases


def data(rng, rows=ROWS, features=WIDTHS[0], classes=WIDTHS[-1]):
    return rng.standard_normal((rows, features)), rng.integers(0, classes, rows)


def dense(op):
    """The matrix of a HessianOperator, one product per column."""
    return np.array([op(e) for e in np.eye(op.size)]).T


# ----------------------------------------------------------------------------------------------------------------
# phi''


def _smooth_points():
    return np.array([x for x in GRID if min(abs(x - k) for k in KINKS) > 10 * H])


@pytest.mark.parametrize("name,params", [(n, {}) for n in activations.names()] + [("elu", {"alpha": 0.5})])
def test_second_derivative_matches_central_differences_of_the_derivative(name, params):
    phi = activations.get(name, **params)
    for x in _smooth_points():
        plus, minus = rules.derivative(phi.code, x + H, phi.param), rules.derivative(phi.code, x - H, phi.param)
        difference = (plus - minus) / (2 * H)
        tolerance = (
            H**2 * FOURTH_DERIVATIVE_BOUND / 6
            + ROUNDING_ULPS * np.finfo(float).eps * max(abs(plus), abs(minus), 1.0) / H
        )
        assert abs(rules.second_derivative(phi.code, x, phi.param) - difference) <= tolerance, (name, x)
        y = rules.value(phi.code, x, phi.param)
        assert rules.second_derivative_given_value(phi.code, x, y, phi.param) == pytest.approx(
            rules.second_derivative(phi.code, x, phi.param), rel=1e-12, abs=1e-15
        ), (name, x)


# ----------------------------------------------------------------------------------------------------------------
# products


@pytest.mark.parametrize(
    "activation,loss,bias,output",
    [
        ("tanh", "cross_entropy", True, "linear"),
        ("sigmoid", "mse", True, "activation"),
        ("relu", "cross_entropy", False, "linear"),
    ],
)
def test_products_match_the_dense_matrices_of_the_numpy_reference(rng, activation, loss, bias, output):
    net = make_net(activation, bias=bias, output=output)
    x, y = data(rng)
    weights, biases = layers(net)
    linear = output == "linear"
    hessian = naive.train_dense_hessian(weights, biases, activation, x, y, loss, linear)
    gauss_newton = naive.train_dense_gauss_newton(weights, biases, activation, x, y, loss, linear)
    np.testing.assert_allclose(
        dense(curvature.HessianOperator(net, x, y, loss=loss)), hessian, rtol=0, atol=DENSE_ATOL * np.abs(hessian).max()
    )
    np.testing.assert_allclose(
        dense(curvature.HessianOperator(net, x, y, loss=loss, kind="gauss_newton")),
        gauss_newton,
        rtol=0,
        atol=DENSE_ATOL * np.abs(gauss_newton).max(),
    )
    # the net's second-derivative terms matter here, so the two matrices differ
    assert np.abs(hessian - gauss_newton).max() > 100 * DENSE_ATOL * np.abs(hessian).max()


@pytest.mark.parametrize("activation", ["gelu", "elu", "softplus", "selu", "erf", "leaky_relu"])
def test_hvp_matches_central_differences_of_the_training_gradient(rng, activation):
    net = make_net(activation, output="activation" if activation == "softplus" else "linear")
    x, y = data(rng)
    v = rng.standard_normal(net.size)
    theta = net.params.copy()
    grads = []
    for sign in (1.0, -1.0):
        net.params[:] = theta + sign * FD_STEP * v
        train.loss_and_grad(net, x, y)
        grads.append(net.grads.copy())
    net.params[:] = theta
    difference = (grads[0] - grads[1]) / (2 * FD_STEP)
    np.testing.assert_allclose(curvature.hvp(net, x, y, v), difference, rtol=0, atol=FD_RTOL * np.abs(difference).max())


def test_chunks_and_the_kept_forward_pass_give_the_one_pass_product(rng):
    net = make_net("tanh")
    x, y = data(rng, rows=10)
    v, w = rng.standard_normal((2, net.size))
    whole = curvature.hvp(net, x, y, v)
    op = curvature.HessianOperator(net, x, y, chunk=3)
    assert op.cached
    np.testing.assert_allclose(op(v), whole, rtol=1e-12, atol=1e-14)  # first call: runs the forward pass
    np.testing.assert_allclose(op(v), whole, rtol=1e-12, atol=1e-14)  # later calls: reuse it
    np.testing.assert_allclose(op(w), curvature.hvp(net, x, y, w), rtol=1e-12, atol=1e-14)
    assert op.loss == pytest.approx(train.evaluate(net, x, y)[0], rel=1e-12)
    uncached = curvature.HessianOperator(net, x, y, chunk=4, cache=False)
    np.testing.assert_allclose(uncached(v), whole, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(uncached(v), whole, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "widths,bias,activation",
    [((6, 3), True, "tanh"), ((6, 3), False, "tanh"), ((6, 5, 3), False, "sigmoid"), ((6, 7, 5, 3), True, "tanh")],
)
@pytest.mark.parametrize("kind", ["hessian", "gauss_newton"])
def test_every_pass_of_the_product_matches_the_reference_at_each_depth(rng, widths, bias, activation, kind):
    """The one-shot product (forward and tangents in one pass, R{x^(0)} = 0, the paired products), in one chunk
    and in three, and the kept forward pass, against the reference's dense matrix, at depths 1, 2 and 3."""
    net = make_net(activation, bias=bias, widths=widths)
    x, y = data(rng, rows=10, features=widths[0], classes=widths[-1])
    weights, biases = layers(net)
    dense_reference = naive.train_dense_hessian if kind == "hessian" else naive.train_dense_gauss_newton
    reference = dense_reference(weights, biases, activation, x, y)
    v = rng.standard_normal((2, net.size))
    # each entry of the reference is within DENSE_ATOL max|H| of the truth, so (H v)_i is within that times ||v||_1
    atol = DENSE_ATOL * np.abs(reference).max() * np.abs(v).sum(axis=1).max()
    op = curvature.HessianOperator(net, x, y, kind=kind, chunk=3)
    for u in v:
        expected = reference @ u
        np.testing.assert_allclose(curvature.hvp(net, x, y, u, kind=kind), expected, rtol=0, atol=atol)
        np.testing.assert_allclose(curvature.hvp(net, x, y, u, kind=kind, chunk=4), expected, rtol=0, atol=atol)
        np.testing.assert_allclose(op(u), expected, rtol=0, atol=atol)  # the first call runs the forward pass
    assert op.cached and op.products == 2


#: The product in parts sums each weight block's 2N rows in another order than the one pass: each entry moves by
#: at most (2N - 1) eps times the sum of its terms' magnitudes; |H| |u| stands for that sum, and the factor 4 covers
#: the last bit or two by which BLAS may round the forward and backward products of other shapes.
PARTS_ROUNDING_TERMS = 4 * 2 * ROWS


@pytest.mark.parametrize("parts,chunk", [(2, ROWS), (3, 4), (4, 3)])
def test_products_in_parts_match_the_one_pass_kernel_and_the_reference(problem, monkeypatch, parts, chunk):
    """The product with every matrix product cut into parts (rows, then units; one chunk, several chunks whose
    weight blocks add up, a part with no rows) against the one-pass kernel and the reference's dense Hessian."""
    net, x, y, hessian = problem
    one_pass = curvature.HessianOperator(net, x, y, chunk=chunk)
    assert one_pass.parts == 1  # a small net: one pass
    monkeypatch.setattr(curvature, "_product_parts", lambda widths, chunk, kind: parts)
    op = curvature.HessianOperator(net, x, y, chunk=chunk)
    assert op.parts == parts and op.cached
    v, w = np.random.default_rng(12).standard_normal((2, net.size))
    cold = curvature.hvp(net, x, y, v, chunk=chunk)
    for i, u in enumerate((v, w, v)):  # the first product runs the forward pass, the later ones reuse it
        got, expected = op(u), one_pass(u)
        if i == 0:  # the one-shot product runs the same passes as the first: the same bits
            np.testing.assert_array_equal(cold, got)
        rounding = PARTS_ROUNDING_TERMS * np.finfo(np.float64).eps * (np.abs(hessian) @ np.abs(u))
        np.testing.assert_array_less(np.abs(got - expected), rounding)
        atol = DENSE_ATOL * np.abs(hessian).max() * np.abs(u).sum()
        np.testing.assert_allclose(got, hessian @ u, rtol=0, atol=atol)
    assert op.loss == pytest.approx(one_pass.loss, rel=4 * np.finfo(np.float64).eps)


@pytest.mark.parametrize("parts", [2, 3])
def test_the_parts_of_a_pass_write_disjoint_entries(problem, monkeypatch, parts):
    """The parts of a pass run at once on several threads, so no entry of the result or of any work buffer may be
    written by two of them: each part run alone (a later chunk, where the weight blocks are added through ``wtmp``)
    from the same state, and the entries each changed compared. (Before each part had its own rows of ``wtmp``,
    the parts shared one weight-sized block, each at its units' rows of the layer it was at: part 0's rows of one
    layer overlapped part 1's of another, and the products of a pass on two threads came out wrong now and then.)"""
    from testbed.kernels import curvature as kernels

    net, x, y, _ = problem
    chunk = 4
    monkeypatch.setattr(curvature, "_product_parts", lambda widths, chunk, kind: parts)
    op = curvature.HessianOperator(net, x, y, chunk=chunk)
    v, w = np.random.default_rng(13).standard_normal((2, net.size))
    out = op(v)  # keeps the forward pass of every chunk
    names = ("out", *op._buffers._fields)
    arrays = [out, *op._buffers]
    bits = [a.view(f"u{a.itemsize}") for a in arrays]  # compared as bits: an unused buffer may hold NaNs
    for phase, expected in ((0, {"pre", "post", "deltas", "scratch"}), (1, {"out", "columns", "wtmp"})):
        before = [a.copy() for a in bits]
        written = []
        for part in range(parts):
            for a, b in zip(bits, before):
                a[...] = b
            kernels.curvature_part_cpu(
                op.params, w, out, op._net, op._data, chunk, 2 * chunk, True, True, op._buffers, phase, part
            )
            written.append([a != b for a, b in zip(bits, before)])
        changed = {name for name, masks in zip(names, zip(*written)) if any(m.any() for m in masks)}
        assert changed == expected, phase  # the pass ran, on the second chunk, and the comparison sees its writes
        for name, masks in zip(names, zip(*written)):
            for p in range(parts):
                for q in range(p):
                    assert not (masks[p] & masks[q]).any(), (phase, name, p, q)


def test_hvp_matches_pytorch_double_backward(rng):
    torch = pytest.importorskip("torch")
    net = make_net("tanh")
    x, y = data(rng)
    v = rng.standard_normal(net.size)
    tensors = [
        torch.tensor(p, requires_grad=True)
        for l in range(1, net.depth + 1)
        for p in (net.weights(l).copy(), net.biases(l).copy())
    ]
    h = torch.tensor(x)
    for l in range(net.depth):
        h = torch.nn.functional.linear(h, tensors[2 * l], tensors[2 * l + 1])
        h = torch.tanh(h) if l < net.depth - 1 else h
    value = torch.nn.functional.cross_entropy(h, torch.tensor(y))
    grads = torch.autograd.grad(value, tensors, create_graph=True)
    pieces, at = [], 0
    for t in tensors:
        pieces.append(torch.tensor(v[at : at + t.numel()].reshape(t.shape)))
        at += t.numel()
    reference = torch.cat([g.reshape(-1) for g in torch.autograd.grad(grads, tensors, pieces)]).numpy()
    np.testing.assert_allclose(curvature.hvp(net, x, y, v), reference, rtol=1e-10, atol=1e-13)


# ----------------------------------------------------------------------------------------------------------------
# spectra


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(11)
    net = make_net("tanh")
    x, y = data(rng)
    weights, biases = layers(net)
    return net, x, y, naive.train_dense_hessian(weights, biases, "tanh", x, y)


def test_lanczos_extremes_match_eigh_of_the_dense_hessian(problem):
    net, x, y, hessian = problem
    np.testing.assert_allclose(
        curvature.dense_hessian(net, x, y), hessian, rtol=0, atol=DENSE_ATOL * np.abs(hessian).max()
    )
    exact, vectors = np.linalg.eigh(hessian)
    k = 3
    top = curvature.top_eigenvalues(net, x, y, k, iterations=net.size)
    bottom = curvature.bottom_eigenvalues(net, x, y, k, iterations=net.size)
    scale = np.abs(exact).max()
    np.testing.assert_allclose(top.values, exact[::-1][:k], rtol=0, atol=EIGEN_RTOL * scale + 1e-6 * scale)
    np.testing.assert_allclose(bottom.values, exact[:k], rtol=0, atol=EIGEN_RTOL * scale + 1e-6 * scale)
    assert bottom.values[0] < 0 < top.values[0]  # a saddle: the index is not 0
    assert np.all(np.diff(top.values) <= 0) and np.all(np.diff(bottom.values) >= 0)
    assert np.all(top.residuals <= curvature.TOLERANCE * scale * 1.0001)
    assert top.iterations < net.size  # stopped on the residual test
    # the eigenvectors: unit norm, H y = theta y up to the reported residual (+ the reference's own error)
    for values, found in ((top.values, top.vectors), (bottom.values, bottom.vectors)):
        np.testing.assert_allclose(np.linalg.norm(found, axis=1), 1.0, rtol=1e-10)
        for value, vector in zip(values, found):
            assert np.linalg.norm(hessian @ vector - value * vector) <= 1e-5 * scale
    assert abs(top.vectors[0] @ vectors[:, -1]) == pytest.approx(1.0, abs=1e-6)


def test_hutchinson_trace_is_within_its_confidence_bound(problem):
    net, x, y, hessian = problem
    estimate = curvature.trace(net, x, y, probes=PROBES, seed=3)
    exact = np.trace(hessian)
    # Var(z^T H z) for Rademacher z is 2 (||H||_F^2 - sum_i H_ii^2) (Hutchinson 1989)
    sd = math.sqrt(2.0 * (np.sum(hessian**2) - np.sum(np.diag(hessian) ** 2)))
    assert abs(estimate.value - exact) <= Z_BOUND * sd / math.sqrt(PROBES)
    assert estimate.stderr == pytest.approx(sd / math.sqrt(PROBES), rel=0.25)  # 400 samples: sd within ~10 %
    offsets = curvature._layer_slices(net)
    for block, part in zip(estimate.blocks, offsets):
        sub = hessian[part, part]
        exact_block = np.trace(sub)
        rows = hessian[part]
        block_sd = math.sqrt(np.sum(rows**2) + np.sum(sub * sub.T) - 2 * np.sum(np.diag(sub) ** 2))
        assert abs(block - exact_block) <= Z_BOUND * block_sd / math.sqrt(PROBES), part
    assert estimate.blocks.sum() == pytest.approx(estimate.value, rel=1e-10)


def test_spectral_density_with_a_full_krylov_space_finds_the_spectrum(problem):
    net, x, y, hessian = problem
    exact = np.linalg.eigvalsh(hessian)
    result = curvature.spectral_density(net, x, y, iterations=net.size, probes=2, points=4000)
    for nodes, weights in zip(result.nodes, result.weights):
        assert weights.sum() == pytest.approx(1.0, rel=1e-10)
        # Ritz values of a full Krylov space are eigenvalues (those the probe reaches, weight > 0)
        reached = nodes[weights > 1e-8]
        assert np.max(np.min(np.abs(reached[:, None] - exact[None, :]), axis=1)) <= 1e-6 * np.abs(exact).max()
    dt = result.grid[1] - result.grid[0]
    assert np.sum(result.density) * dt == pytest.approx(1.0, rel=1e-12)
    # the density's mean is the probes' Rayleigh quotients' mean, an estimate of tr H / P
    mean = np.sum(result.grid * result.density) * dt
    assert mean == pytest.approx(np.mean(np.sum(result.nodes * result.weights, axis=1)), abs=1e-6)


# ----------------------------------------------------------------------------------------------------------------
# slices


def test_slices_match_evaluate_at_their_points(rng):
    net = make_net("relu", widths=(6, 8, 3))
    x, y = data(rng)
    theta_0, theta_1 = net.params.copy(), rng.standard_normal(net.size)
    line = curvature.slice_1d(net, x, y, theta_0, theta_1, alphas=[0.0, 0.5, 1.0])
    for alpha, value in zip(line.alphas, line.loss):
        net.params[:] = (1 - alpha) * theta_0 + alpha * theta_1
        assert value == pytest.approx(train.evaluate(net, x, y)[0], rel=1e-12)
    net.params[:] = theta_0
    plane = curvature.slice_2d(net, x, y, alphas=[-1.0, 0.0], betas=[0.0, 0.5, 1.0], seed=2)
    d1, d2 = plane.directions
    for l in range(1, net.depth + 1):  # each neuron's direction has the norm of its weights
        at, bias_at = net._offsets[l - 1]
        shape = (net.widths[l], net.widths[l - 1])
        np.testing.assert_allclose(
            np.linalg.norm(d1[at : at + np.prod(shape)].reshape(shape), axis=1),
            np.linalg.norm(net.weights(l), axis=1),
            rtol=1e-12,
        )
        assert np.all(d2[bias_at : bias_at + net.widths[l]] == 0.0)
    for i, a in enumerate(plane.alphas):
        for j, b in enumerate(plane.betas):
            net.params[:] = theta_0 + a * d1 + b * d2
            assert plane.loss[i, j] == pytest.approx(train.evaluate(net, x, y)[0], rel=1e-12)
    net.params[:] = theta_0


def test_pca_directions_of_a_planar_path():
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.standard_normal((20, 2)))[0].T
    coords = np.stack([np.linspace(3, 0, 9), np.sin(np.linspace(0, 3, 9))], axis=1)
    path = coords @ basis + 1.0
    directions, projected, ratios = curvature.pca_directions(path)
    assert ratios.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(projected @ directions + path[-1], path, atol=1e-12)


# ----------------------------------------------------------------------------------------------------------------
# the R-backward pass's elementwise step


#: Activations whose first and second derivatives, given the value, are arithmetic (the kernel's literal loops):
#: the kernel must give the scalar rule's bits.
ARITHMETIC_DERIVATIVES = ("tanh", "relu", "linear", "leaky_relu", "sigmoid", "hard_tanh")
#: The others call exp or erfc, which compiled code may reach through another path than Python's math module
#: (seen: SELU 1 ulp apart when the kernel came from a cache compiled by another test process).
TRANSCENDENTAL_ULPS = 2


def test_second_order_pass_gives_the_rules_bits_for_every_activation(rng):
    """(R{delta}, delta) = (R{g} phi' + g phi'' R{s}, g phi') of the CPU kernel (a loop per activation code)
    against the uncompiled rules, entry by entry, in float64 (float32 products are checked to tolerance above)."""
    from testbed.kernels import curvature as kernels

    dtype = np.float64
    s, g, rs, rg = (rng.standard_normal(23) * 3 for _ in range(4))
    s[:3] = (0.0, 1.0, -1.0)  # the kinks of the piecewise-linear activations
    for name in activations.NAMES:
        act = activations.get(name)
        x = np.array([act(float(value)) for value in s], dtype=dtype)
        slope = [rules.derivative_given_value(act.code, float(a), float(b), act.param) for a, b in zip(s, x)]
        curve = [rules.second_derivative_given_value(act.code, float(a), float(b), act.param) for a, b in zip(s, x)]
        expected_rd = np.array(
            [float(r) * p + float(d) * c * float(t) for r, p, d, c, t in zip(rg, slope, g, curve, rs)]
        )
        expected_d = np.array([float(d) * p for d, p in zip(g, slope)])
        d, rd = g.copy(), rg.copy()
        kernels._second_order_rows(act.code, act.param, s, x, d, rs, rd)
        if name in ARITHMETIC_DERIVATIVES:
            np.testing.assert_array_equal(rd, expected_rd.astype(dtype), err_msg=name)
            np.testing.assert_array_equal(d, expected_d.astype(dtype), err_msg=name)
        else:
            np.testing.assert_array_max_ulp(rd, expected_rd.astype(dtype), maxulp=TRANSCENDENTAL_ULPS)
            np.testing.assert_array_max_ulp(d, expected_d.astype(dtype), maxulp=TRANSCENDENTAL_ULPS)


# ----------------------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda net, x, y: curvature.hvp(net, x, y, np.zeros(3)), "v must be a vector"),
        (lambda net, x, y: curvature.hvp(net, x, y, np.zeros(net.size), kind="newton"), "kind"),
        (lambda net, x, y: curvature.hvp(net, x, y, np.zeros(net.size), loss="hinge"), "loss"),
        (lambda net, x, y: curvature.hvp(net, x[:, :2], y, np.zeros(net.size)), "x must have shape"),
        (lambda net, x, y: curvature.top_eigenvalues(net, x, y, net.size + 1), "k must be at most"),
        (lambda net, x, y: curvature.trace(net, x, y, probes=0), "probes"),
        (lambda net, x, y: curvature.slice_2d(net, x, y, directions=np.zeros((3, net.size))), "directions"),
        (lambda net, x, y: curvature.hvp("net", x, y, np.zeros(3)), "net must be a testbed.nn.MLP"),
        (lambda net, x, y: curvature.hvp(net, x, y, np.full(net.size, np.nan)), "v must be finite"),
    ],
)
def test_bad_input_gets_a_clear_error(rng, call, match):
    net = make_net("tanh")
    x, y = data(rng)
    with pytest.raises(ValueError, match=match):
        call(net, x, y)


def test_only_float64_hessian_products_run_in_parts():
    """On a net whose products are large enough for the parts (the benchmark's ~1M parameters), a float64 Hessian
    operator cuts them into PRODUCT_PARTS parts and a float32 one runs in one pass (measured faster, PARTS_DTYPES);
    the Gauss-Newton product runs in one pass in either dtype."""
    rng = np.random.default_rng(5)
    widths = [40, 1024, 896, 10]
    for dtype, hessian_parts in ((np.float64, curvature.PRODUCT_PARTS), (np.float32, 1)):
        net = nn.MLP(widths, "tanh", output="linear", dtype=dtype)
        x = rng.standard_normal((256, widths[0])).astype(dtype)
        y = rng.integers(0, widths[-1], 256)
        assert curvature.HessianOperator(net, x, y).parts == hessian_parts
        assert curvature.HessianOperator(net, x, y, kind="gauss_newton").parts == 1
    assert curvature.PRODUCT_PARTS > 1
