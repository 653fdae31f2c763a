"""Slow, obviously-correct NumPy references that the kernels are compared against.

One section per domain: initialisers, optimizer updates, MLP passes, Monte Carlo trials. Each reference is
written from the formula or the paper (never from the rule it checks), in plain NumPy, for small inputs.
"""

import functools
import math

import numpy as np
from scipy import integrate

from testbed.rules import rng as rng_rules

# ==============================================================================================================
# Initialisers
#
# Slow, obviously-correct references for testbed.init: the formulas of reference.md section 1 written out, the
# moments of a truncated normal by quadrature, and element-by-element fills from the scalar Philox rules.
# ==============================================================================================================

TRUNCATED_STD_2 = 0.87962566103423978
GAINS = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0), "selu": 0.75}


def gain(nonlinearity, param=None):
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1.0 + slope**2))
    return GAINS[nonlinearity]


def truncated_unit_moments(a, b):
    """(mean, variance, fourth central moment) of N(0, 1) conditioned on [a, b], by quadrature."""
    density = lambda z: math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)  # noqa: E731
    mass = integrate.quad(density, a, b, epsabs=1e-14, epsrel=1e-11)[0]
    mean = integrate.quad(lambda z: z * density(z), a, b, epsabs=1e-14, epsrel=1e-11)[0] / mass
    var = integrate.quad(lambda z: (z - mean) ** 2 * density(z), a, b, epsabs=1e-14, epsrel=1e-11)[0] / mass
    mu4 = integrate.quad(lambda z: (z - mean) ** 4 * density(z), a, b, epsabs=1e-14, epsrel=1e-11)[0] / mass
    return mean, var, mu4


def distribution(name, fan_in, fan_out, **p):
    """(kind, parameters) of the law of one entry, straight from the reference table.

    kind "constant" (value), "uniform" (bound), "normal" (mean, std), "truncated" (mean, std', a, b).
    """
    if name in ("zeros", "ones", "constant"):
        return "constant", {"value": {"zeros": 0.0, "ones": 1.0}.get(name, p.get("value"))}
    if name == "uniform":
        return "uniform", {"bound": p.get("bound", 1.0)}
    if name == "normal":
        return "normal", {"mean": p.get("mean", 0.0), "std": p.get("std", 1.0)}
    if name == "truncated_normal":
        a, b, std = p.get("a", -2.0), p.get("b", 2.0), p.get("std", 1.0)
        if p.get("correct_variance", False):
            std = std / math.sqrt(truncated_unit_moments(a, b)[1])
        return "truncated", {"mean": p.get("mean", 0.0), "std": std, "a": a, "b": b}
    fans = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}
    if name.startswith("lecun"):
        var = 1.0 / fan_in
    elif name.startswith("glorot"):
        var = p.get("gain", 1.0) ** 2 * 2.0 / (fan_in + fan_out + (1 if p.get("bias_input") else 0))
    elif name.startswith("he"):
        g = p["gain"] if p.get("gain") is not None else gain(p.get("nonlinearity", "relu"), p.get("param"))
        var = g * g / fans[p.get("mode", "fan_in")]
    elif name == "variance_scaling":
        var = p.get("scale", 1.0) / fans[p.get("mode", "fan_in")]
        kind = p.get("distribution", "truncated_normal")
        if kind == "truncated_normal":
            return "truncated", {"mean": 0.0, "std": math.sqrt(var) / TRUNCATED_STD_2, "a": -2.0, "b": 2.0}
        return (
            ("uniform", {"bound": math.sqrt(3 * var)})
            if kind == "uniform"
            else ("normal", {"mean": 0.0, "std": math.sqrt(var)})
        )
    else:
        raise KeyError(name)
    if name.endswith("uniform"):
        return "uniform", {"bound": math.sqrt(3.0 * var)}
    return "normal", {"mean": 0.0, "std": math.sqrt(var)}


def moments(name, fan_in, fan_out, **p):
    """(mean, variance, fourth central moment) of one entry."""
    kind, q = distribution(name, fan_in, fan_out, **p)
    if kind == "constant":
        return q["value"], 0.0, 0.0
    if kind == "uniform":
        return 0.0, q["bound"] ** 2 / 3.0, q["bound"] ** 4 / 5.0
    if kind == "normal":
        return q["mean"], q["std"] ** 2, 3.0 * q["std"] ** 4
    mean, var, mu4 = truncated_unit_moments(q["a"], q["b"])
    return q["mean"] + q["std"] * mean, q["std"] ** 2 * var, q["std"] ** 4 * mu4


def bounds(name, fan_in, fan_out, **p):
    """(lower, upper) of the support of one entry."""
    kind, q = distribution(name, fan_in, fan_out, **p)
    if kind == "constant":
        return q["value"], q["value"]
    if kind == "uniform":
        return -q["bound"], q["bound"]
    if kind == "normal":
        return -math.inf, math.inf
    return q["mean"] + q["std"] * q["a"], q["mean"] + q["std"] * q["b"]


def end_masses(name, fan_in, fan_out, slack, **p):
    """The probabilities that one entry lies within ``slack`` of the lower and of the upper bound."""
    from scipy.stats import norm

    kind, q = distribution(name, fan_in, fan_out, **p)
    if kind == "constant":
        return 1.0, 1.0
    if kind == "uniform":
        return (min(slack / (2.0 * q["bound"]), 1.0),) * 2
    a, b, width = q["a"], q["b"], slack / q["std"]
    mass = norm.cdf(b) - norm.cdf(a)
    return (norm.cdf(a + width) - norm.cdf(a)) / mass, (norm.cdf(b) - norm.cdf(b - width)) / mass


def truncated_draw(seed, stream, step, index, a, b, proposal):
    """Draw ``index`` of N(0, 1) on [a, b] by plain rejection, as testbed.rules.rng documents: attempt k >= 1 reads
    the Philox block 2**40 k + index. proposal "normal": attempt 0 is the normal draw ``index``, attempt k a
    Box-Muller normal from words 0 and 1; "uniform": z = a + (b - a) u0, accepted when u1 <= exp((c - z^2) / 2),
    c the smallest z^2 on [a, b]."""
    c = 0.0 if a <= 0.0 <= b else min(a * a, b * b)
    attempt = 0
    while True:
        if proposal == "normal" and attempt == 0:
            z = rng_rules.normal(seed, stream, step, index)
            if a <= z <= b:
                return z
        elif attempt > 0:
            u0, u1, _, _ = rng_rules.uniform4(seed, stream, step, 2**40 * attempt + index)
            if proposal == "normal":
                z = math.sqrt(-2.0 * math.log(u0)) * math.cos(2.0 * math.pi * u1)
                if a <= z <= b:
                    return z
            else:
                z = min(a + (b - a) * u0, b)
                if u1 <= math.exp(0.5 * (c - z * z)):
                    return z
        attempt += 1


def normal_fill(n, seed, stream, step, offset, std):
    """Element j = std * (normal draw offset + j), from the scalar rule, one element at a time."""
    return np.array([std * rng_rules.normal(seed, stream, step, offset + j) for j in range(n)])


def orthogonal(gaussian, gain):
    """Gram-Schmidt on the rows (fan_out < fan_in) or the columns of a Gaussian matrix, times gain: the Q of QR
    with a positive diagonal of R, computed without numpy.linalg."""
    matrix = np.array(gaussian, dtype=np.float64)
    transposed = matrix.shape[0] >= matrix.shape[1]  # square: columns, as numpy.linalg.qr(A)
    vectors = matrix.T if transposed else matrix  # orthonormalise the rows of `vectors`
    basis = []
    for v in vectors:
        w = v.copy()
        for e in basis:
            w -= (e @ w) * e
        for e in basis:  # a second pass (twice is enough) keeps orthogonality at rounding level
            w -= (e @ w) * e
        basis.append(w / math.sqrt(w @ w))
    q = np.array(basis)
    return gain * (q.T if transposed else q)


# ==============================================================================================================
# Optimizer updates
#
# Slow, obviously-correct NumPy references for the optimizers, written the way each library writes its update.
#
# Each function runs a whole trajectory: ``w0`` (float64), ``grads`` (steps x n, the gradient used at each step, which
# these tests draw independently of ``w``) and ``lrs`` (the learning rate of each step), and returns the final
# parameters and a dict of the final state under PyTorch's names. Nothing here imports testbed: the formulas are
# transcribed from the libraries' source (torch/optim/*.py, optax/_src/transform.py and alias.py,
# keras/src/optimizers/*.py) and from the papers.
# ==============================================================================================================


def learning_rate(name, lr, t, *, step_size=None, gamma=None, t_max=None, eta_min=0.0, warmup_steps=0):
    """The rate of step t (1, 2, ...): PyTorch's schedulers count epochs e = t - 1 from 0."""
    e = t - 1
    if name in ("constant", "linear_warmup"):
        rate = lr
    elif name == "step":
        rate = lr * gamma ** (e // step_size)
    elif name == "exponential":
        rate = lr * gamma**e
    elif name == "inverse_sqrt":
        rate = lr / math.sqrt(t)
    elif name == "cosine":
        rate = eta_min + (lr - eta_min) * (1 + math.cos(math.pi * min(e, t_max) / t_max)) / 2
    else:
        raise KeyError(name)
    if warmup_steps and t < warmup_steps:
        rate *= t / warmup_steps
    return rate


def sgd(w0, grads, lrs, *, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, keras=False):
    """torch.optim.SGD (single-tensor path); with keras=True, keras.optimizers.SGD (lr in the velocity)."""
    w = w0.copy()
    buf = None
    for g, lr in zip(grads, lrs):
        d_p = g + weight_decay * w
        if keras:
            # keras: m = momentum * m - lr * g; w += m  (nesterov: w += momentum * m - lr * g); tau scales g
            if momentum:
                buf = np.zeros_like(w) if buf is None else buf
                buf = momentum * buf - lr * (1 - dampening) * d_p
                w = w + (momentum * buf - lr * d_p if nesterov else buf)
            else:
                w = w - lr * d_p
            continue
        if momentum != 0:
            buf = d_p.copy() if buf is None else momentum * buf + (1 - dampening) * d_p
            d_p = d_p + momentum * buf if nesterov else buf
        w = w - lr * d_p
    state = {} if buf is None else {"momentum_buffer": -buf if keras else buf}  # keras keeps -v
    return w, state


def momentum(w0, grads, lrs, *, beta=0.9, weight_decay=0.0):
    """The lecture's running average: v = b v + (1 - b) g, w -= lr v."""
    w, v = w0.copy(), np.zeros_like(w0)
    for g, lr in zip(grads, lrs):
        g = g + weight_decay * w
        v = beta * v + (1 - beta) * g
        w = w - lr * v
    return w, {"velocity": v}


def adagrad(
    w0, grads, lrs, *, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10, eps_inside=False
):
    """torch.optim.Adagrad (eps outside); optax.adagrad / keras Adagrad (eps inside: g / sqrt(S + eps))."""
    w = w0.copy()
    total = np.full_like(w0, initial_accumulator_value)
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        g = g + weight_decay * w
        clr = lr / (1 + (t - 1) * lr_decay)
        total = total + g * g
        std = np.sqrt(total + eps) if eps_inside else np.sqrt(total) + eps
        w = w - clr * g / std
    return w, {"sum": total}


def rmsprop(
    w0,
    grads,
    lrs,
    *,
    alpha=0.99,
    eps=1e-8,
    eps_inside=False,
    weight_decay=0.0,
    momentum=0.0,
    centered=False,
    initial_accumulator_value=0.0,
    bias_correction=False,
    lr_in_buffer=False,
):
    """torch.optim.RMSprop; eps_inside and lr_in_buffer give keras.optimizers.RMSprop / optax.rmsprop."""
    w = w0.copy()
    square_avg = np.full_like(w0, initial_accumulator_value)
    grad_avg = np.zeros_like(w0)
    buf = np.zeros_like(w0)
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        g = g + weight_decay * w
        square_avg = alpha * square_avg + (1 - alpha) * g**2
        second = square_avg
        if centered:
            grad_avg = alpha * grad_avg + (1 - alpha) * g
            second = square_avg - grad_avg**2
        if bias_correction:
            second = second / (1 - alpha**t)
        avg = np.sqrt(second + eps) if eps_inside else np.sqrt(second) + eps
        if momentum > 0:
            if lr_in_buffer:
                buf = momentum * buf + lr * g / avg
                w = w - buf
            else:
                buf = momentum * buf + g / avg
                w = w - lr * buf
        else:
            w = w - lr * g / avg
    state = {"square_avg": square_avg}
    if momentum > 0 or centered:
        state["momentum_buffer"] = buf
    if centered:
        state["grad_avg"] = grad_avg
    return w, state


def adam(
    w0,
    grads,
    lrs,
    *,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    amsgrad=False,
    decoupled=False,
    bias_correction=True,
    style="torch",
):
    """Adam / AdamW / AMSGrad as PyTorch, optax, Keras and the lecture write it.

    torch: denom = sqrt(v) / sqrt(bc2) + eps, step = lr / bc1 (AMSGrad: max of raw v).
    optax: mu_hat / (sqrt(nu_hat) + eps) (AMSGrad: max of nu_hat).
    keras: alpha = lr sqrt(1 - b2^t) / (1 - b1^t); w -= alpha m / (sqrt(v) + eps) (AMSGrad: max of raw v).
    lecture: mh / sqrt(vh + eps).
    """
    b1, b2 = betas
    w, m, v = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
    vmax = np.zeros_like(w0)
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        if decoupled:
            w = w * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * w
        bc1 = 1 - b1**t if bias_correction else 1.0
        bc2 = 1 - b2**t if bias_correction else 1.0
        if style == "keras":
            m = m + (g - m) * (1 - b1)
            v = v + (g * g - v) * (1 - b2)
            if amsgrad:
                vmax = np.maximum(vmax, v)
            alpha = lr * math.sqrt(bc2) / bc1
            w = w - m * alpha / (np.sqrt(vmax if amsgrad else v) + eps)
            continue
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if style == "torch":
            if amsgrad:
                vmax = np.maximum(vmax, v)
            denom = np.sqrt(vmax if amsgrad else v) / math.sqrt(bc2) + eps
            w = w - (lr / bc1) * m / denom
        elif style == "optax":
            mu_hat, nu_hat = m / bc1, v / bc2
            if amsgrad:
                vmax = np.maximum(vmax, nu_hat)
                nu_hat = vmax
            w = w - lr * (mu_hat / (np.sqrt(nu_hat) + eps))
        elif style == "lecture":
            if amsgrad:
                vmax = np.maximum(vmax, v)
            vh = (vmax if amsgrad else v) / bc2
            w = w - lr * (m / bc1) / np.sqrt(vh + eps)
        else:
            raise KeyError(style)
    state = {"exp_avg": m, "exp_avg_sq": v}
    if amsgrad:
        state["max_exp_avg_sq"] = vmax
    return w, state


def nadam(
    w0,
    grads,
    lrs,
    *,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    momentum_decay=4e-3,
    decoupled=False,
    eps_inside=False,
    style="torch",
):
    """torch.optim.NAdam (Dozat 2016 with bias corrections; Keras' Nadam is the same), or optax.nadam."""
    b1, b2 = betas
    w, m, v = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
    mu_product = 1.0
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        if decoupled:
            w = w * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vh = v / (1 - b2**t)
        denom = np.sqrt(vh + eps) if eps_inside else np.sqrt(vh) + eps
        if style == "optax":
            # optax scale_by_adam(nesterov=True): b1 * bias_correction(mu, b1, t + 1) + (1 - b1) * bc(g, b1, t)
            mu_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
            w = w - lr * mu_hat / denom
            mu_product *= b1
            continue
        mu = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        mu_product *= mu
        w = w - lr * (1 - mu) / (1 - mu_product) * g / denom
        w = w - lr * mu_next / (1 - mu_product * mu_next) * m / denom
    return w, {"exp_avg": m, "exp_avg_sq": v, "mu_product": np.full_like(w0, mu_product)}


def adamax(w0, grads, lrs, *, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, eps_inside=True):
    """torch.optim.Adamax and optax.adamax (u = max(b2 u, |g| + eps)); keras (u = max(b2 u, |g|), divide by u + eps)."""
    b1, b2 = betas
    w, m, u = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        g = g + weight_decay * w
        m = b1 * m + (1 - b1) * g
        if eps_inside:
            u = np.max(np.stack([b2 * u, np.abs(g) + eps]), axis=0)
            w = w - lr / (1 - b1**t) * m / u
        else:
            u = np.maximum(b2 * u, np.abs(g))
            w = w - lr / (1 - b1**t) * m / (u + eps)
    return w, {"exp_avg": m, "exp_inf": u}


def abs_matrix(h):
    """|H| = sqrt(H^2), the matrix absolute value, through the eigenvalues of H^2 (never of H itself)."""
    eigenvalues, vectors = np.linalg.eigh(h @ h)
    return (vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ vectors.T


# ==============================================================================================================
# MLP forward and backward passes
#
# Slow, obviously-correct NumPy references for testbed.nn (float64 throughout, one layer at a time).
# ==============================================================================================================


def forward(weights, biases, activation, x, saturation_low=-np.inf, saturation_high=np.inf, edges=None, pair=(0, 1)):
    """Per-layer s^(l), x^(l) and the statistics ForwardStats documents, from the textbook formulas."""
    pres, posts = [], [np.asarray(x, dtype=np.float64)]
    stats = {
        k: []
        for k in (
            "pre_mean",
            "pre_var",
            "pre_meansq",
            "post_mean",
            "post_var",
            "post_meansq",
            "saturated_frac",
            "zero_frac",
            "dead_frac",
            "correlation",
            "histograms",
        )
    }
    for w, b in zip(weights, biases):
        s = posts[-1] @ np.asarray(w, dtype=np.float64).T
        if b is not None:
            s = s + np.asarray(b, dtype=np.float64)
        x_next = activation(s)
        pres.append(s)
        posts.append(x_next)
        stats["pre_mean"].append(s.mean())
        stats["pre_var"].append(s.var())
        stats["pre_meansq"].append(np.mean(s * s))
        stats["post_mean"].append(x_next.mean())
        stats["post_var"].append(x_next.var())
        stats["post_meansq"].append(np.mean(x_next * x_next))
        stats["saturated_frac"].append(np.mean((x_next <= saturation_low) | (x_next >= saturation_high)))
        stats["zero_frac"].append(np.mean(s <= 0.0))
        stats["dead_frac"].append(np.mean(np.all(s <= 0.0, axis=0)))
        a, c = s[pair[0]], s[pair[1]]
        stats["correlation"].append(a @ c / np.sqrt((a @ a) * (c @ c)))
        if edges is not None:
            stats["histograms"].append(np.histogram(x_next, bins=edges)[0])
    return pres, posts, {k: np.array(v) for k, v in stats.items()}


def backward(weights, activation_derivative, pres, posts, output_grad):
    """delta^(l), dW^(l), db^(l) by the chain rule for the loss sum_batch <r, s^(L)> (r = output_grad)."""
    depth = len(weights)
    deltas = [None] * depth
    weight_grads = [None] * depth
    bias_grads = [None] * depth
    delta = np.asarray(output_grad, dtype=np.float64)
    for l in range(depth, 0, -1):
        deltas[l - 1] = delta
        weight_grads[l - 1] = delta.T @ posts[l - 1]
        bias_grads[l - 1] = delta.sum(axis=0)
        if l > 1:
            delta = (delta @ np.asarray(weights[l - 1], dtype=np.float64)) * activation_derivative(pres[l - 2])
    return deltas, weight_grads, bias_grads


def loss(weights, biases, activation, x, output_grad):
    """sum_batch <r, s^(L)>: the loss whose gradient :func:`backward` computes (for finite differences)."""
    pres, _, _ = forward(weights, biases, activation, x)
    return float(np.sum(np.asarray(output_grad, dtype=np.float64) * pres[-1]))


# ==============================================================================================================
# Monte Carlo escape-time trials
#
# Slow, obviously-correct NumPy references for the Monte Carlo escape-time kernels (small N only).
#
# Each trial is simulated on its own with NumPy arithmetic written out from the formulas: the gradient from the
# landscape's NumPy method, the Gaussian noise from the same Philox draws as the kernels (keyed by (seed, trial, step,
# coordinate block), but drawn by the independent NumPy Philox and Box-Muller at the end of this file, not by the
# library's rules), and the optimizer update written here from its paper (not from testbed.rules.optimizers), so a
# wrong rule, a wrong key or a wrong escape test shows up.
# ==============================================================================================================


def gaussian_noise(seed, trial, step, dim):
    """The noise vector (before sigma) of (trial, step): draws 0..dim-1 of Philox stream ``trial`` at ``step``, by
    the independent NumPy Philox and Box-Muller at the end of this file (not the library's rules)."""
    return independent_gaussian_noise(seed, trial, step, dim)


def simulate(landscape, update, start, *, trials, noise, radius, max_steps, seed, converge=False, minibatch=None):
    """Escape steps, escaped flags and final iterates of ``trials`` trials of ``update`` from ``start``.

    ``update(w, g, state, t) -> w`` is a NumPy optimizer step (``state`` a dict it may fill); the trial escapes
    at the first t with |w - center| > radius (with ``converge``: the first t with |w - center| < radius).
    ``minibatch`` = (samples, batch): the noise is the finite sum's minibatch mean (:func:`minibatch_noise`).
    """

    def done(w):
        distance = np.linalg.norm(w - landscape.center)
        return distance < radius if converge else distance > radius

    steps = np.full(trials, max_steps)
    escaped = np.zeros(trials, bool)
    finals = np.zeros((trials, landscape.dim))
    for trial in range(trials):
        w = np.array(start[trial], dtype=np.float64)
        state = {}
        if done(w):  # the criterion is checked at t = 0 too
            steps[trial], escaped[trial], finals[trial] = 0, True, w
            continue
        for t in range(1, max_steps + 1):
            z = (
                gaussian_noise(seed, trial, t, landscape.dim)
                if minibatch is None
                else minibatch_noise(seed, trial, t, *minibatch)
            )
            g = landscape.gradient(w, t) + noise * z
            w = update(w, g, state, t)
            if done(w):
                steps[trial] = t
                escaped[trial] = True
                break
        finals[trial] = w
    return steps, escaped, finals


def sgd_update(lr):
    """Plain gradient descent: w <- w - lr g."""
    return lambda w, g, state, t: w - lr * g


def heavy_ball_update(lr, mu):
    """PyTorch's heavy ball: v <- g on step 1, then v <- mu v + g; w <- w - lr v (Polyak 1964)."""

    def update(w, g, state, t):
        state["v"] = g.copy() if t == 1 else mu * state["v"] + g
        return w - lr * state["v"]

    return update


def adam_update(lr, b1=0.9, b2=0.999, eps=1e-8):
    """Kingma & Ba (2015), Algorithm 1, eps outside the root, bias-corrected."""

    def update(w, g, state, t):
        m = b1 * state.get("m", 0.0) + (1 - b1) * g
        v = b2 * state.get("v", 0.0) + (1 - b2) * g * g
        state["m"], state["v"] = m, v
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        return w - lr * m_hat / (np.sqrt(v_hat) + eps)

    return update


def kaplan_meier_median(times, observed):
    """The Kaplan-Meier median by the textbook loop over distinct event times."""
    times = np.asarray(times, float)
    observed = np.asarray(observed, bool)
    survival = 1.0
    for t in sorted(set(times[observed])):
        at_risk = np.sum(times >= t)
        events = np.sum((times == t) & observed)
        survival *= 1.0 - events / at_risk
        if survival <= 0.5:
            return float(t)
    return math.inf


# ==============================================================================================================
# Training: losses and gradients of an MLP on labelled data
#
# Slow, obviously-correct NumPy references for testbed.train (float64 throughout). The activations and their
# derivatives are written out here in closed form (not taken from testbed), the log-sum-exp from scipy.
# ==============================================================================================================


def _sigmoid(s):
    return 0.5 * (1.0 + np.tanh(0.5 * s))


#: name -> (phi, phi') in closed form.
TRAIN_ACTIVATIONS = {
    "linear": (lambda s: s, lambda s: np.ones_like(s)),
    "relu": (lambda s: np.maximum(s, 0.0), lambda s: (s > 0.0).astype(np.float64)),
    "tanh": (np.tanh, lambda s: 1.0 - np.tanh(s) ** 2),
    "sigmoid": (_sigmoid, lambda s: _sigmoid(s) * (1.0 - _sigmoid(s))),
}


def softmax_cross_entropy(z, y):
    """(mean over rows of logsumexp(z_i) - z_i,y_i, its gradient (softmax(z) - onehot(y)) / B)."""
    from scipy.special import logsumexp, softmax

    z = np.asarray(z, dtype=np.float64)
    batch = z.shape[0]
    loss = float(np.mean(logsumexp(z, axis=1) - z[np.arange(batch), y]))
    grad = softmax(z, axis=1)
    grad[np.arange(batch), y] -= 1.0
    return loss, grad / batch


def mean_squared_error(z, y):
    """(mean over all B x K entries of (z - onehot(y))^2, its gradient 2 (z - onehot(y)) / (B K))."""
    z = np.asarray(z, dtype=np.float64)
    target = np.zeros_like(z)
    target[np.arange(z.shape[0]), y] = 1.0
    return float(np.mean((z - target) ** 2)), 2.0 * (z - target) / z.size


def train_loss_and_grad(weights, biases, activation, x, y, loss="cross_entropy", output_linear=True):
    """(mean loss, [dL/dW^(l)], [dL/db^(l)] or Nones) of a net whose last layer is linear (or applies phi)."""
    phi, dphi = TRAIN_ACTIVATIONS[activation]
    depth = len(weights)
    pres, posts = [], [np.asarray(x, dtype=np.float64)]
    for l, (w, b) in enumerate(zip(weights, biases), start=1):
        s = posts[-1] @ np.asarray(w, dtype=np.float64).T + (0.0 if b is None else np.asarray(b, dtype=np.float64))
        pres.append(s)
        posts.append(s if (l == depth and output_linear) else phi(s))
    value, delta = (softmax_cross_entropy if loss == "cross_entropy" else mean_squared_error)(posts[-1], y)
    if not output_linear:
        delta = delta * dphi(pres[-1])
    weight_grads, bias_grads = [None] * depth, [None] * depth
    for l in range(depth, 0, -1):
        weight_grads[l - 1] = delta.T @ posts[l - 1]
        bias_grads[l - 1] = None if biases[l - 1] is None else delta.sum(axis=0)
        if l > 1:
            delta = (delta @ np.asarray(weights[l - 1], dtype=np.float64)) * dphi(pres[l - 2])
    return value, weight_grads, bias_grads


# ================================================================================================================
# Jacobian spectra (testbed.spectra): the explicit product of D_l W_l, written independently


#: phi'(s) of each activation, written out here from the textbook formulas (not from testbed's rules).
JACOBIAN_DERIVATIVES = {
    "linear": lambda s: np.ones_like(s),
    "relu": lambda s: (s > 0.0).astype(np.float64),
    "tanh": lambda s: 1.0 - np.tanh(s) ** 2,
    "hard_tanh": lambda s: ((s > -1.0) & (s < 1.0)).astype(np.float64),
    "sigmoid": lambda s: np.exp(-s) / (1.0 + np.exp(-s)) ** 2,
}
JACOBIAN_VALUES = {
    "linear": lambda s: s,
    "relu": lambda s: np.maximum(s, 0.0),
    "tanh": np.tanh,
    "hard_tanh": lambda s: np.clip(s, -1.0, 1.0),
    "sigmoid": lambda s: 1.0 / (1.0 + np.exp(-s)),
}


def input_output_jacobian(weights, biases, x, activation):
    """J = D_L W_L ... D_1 W_1 at the input vector ``x``, D_l = diag(phi'(s_l)), s_l = W_l x_(l-1) + b_l.

    ``weights`` is the list of W_l (fan_out, fan_in), ``biases`` the list of b_l (or None). Float64 throughout;
    the forward pass and the product are plain NumPy.
    """
    phi, dphi = JACOBIAN_VALUES[activation], JACOBIAN_DERIVATIVES[activation]
    h = np.asarray(x, dtype=np.float64)
    jac = np.eye(h.size)
    for l, w in enumerate(weights):
        w = np.asarray(w, dtype=np.float64)
        s = w @ h + (0.0 if biases is None else np.asarray(biases[l], dtype=np.float64))
        jac = np.diag(dphi(s)) @ w @ jac
        h = phi(s)
    return jac


def jacobian_singular_values(weights, biases, x, activation):
    """Singular values (descending) of :func:`input_output_jacobian` by NumPy's SVD."""
    return np.linalg.svd(input_output_jacobian(weights, biases, x, activation), compute_uv=False)


# Independent references (issue 17): written from the papers and reference.md alone, importing nothing from testbed
#
# A reference that calls the code it checks cannot catch that code's bugs. These are plain NumPy: Philox4x32-10
# from Salmon et al. (2011) with the counter layout the testbed documents, Box-Muller with NumPy's log, cos and sin,
# every activation and its derivative in closed form, the mean-field recursions by Gauss-Hermite quadrature, and the
# exact AR(1) variances of SGD on a quadratic.
# ==============================================================================================================

INDEPENDENT_MASK32 = np.uint64(0xFFFFFFFF)
#: Salmon et al. 2011, Table 2 (Philox4x32): the round multipliers and the Weyl key increments.
INDEPENDENT_PHILOX_MULTIPLIERS = (np.uint64(0xD2511F53), np.uint64(0xCD9E8D57))
INDEPENDENT_PHILOX_WEYL = (np.uint64(0x9E3779B9), np.uint64(0xBB67AE85))
INDEPENDENT_PHILOX_ROUNDS = 10


def philox4x32_10(counter, key):
    """The four output words of Philox4x32-10 for ``counter`` (4 words) and ``key`` (2 words); each word may be an
    array (broadcast). A round maps (c0, c1, c2, c3) to (hi(M1 c2) ^ c1 ^ k0, lo(M1 c2), hi(M0 c0) ^ c3 ^ k1,
    lo(M0 c0)); the key is bumped by the Weyl increments between rounds."""
    c = [np.asarray(word, dtype=np.uint64) & INDEPENDENT_MASK32 for word in counter]
    k = [np.asarray(word, dtype=np.uint64) & INDEPENDENT_MASK32 for word in key]
    m0, m1 = INDEPENDENT_PHILOX_MULTIPLIERS
    for r in range(INDEPENDENT_PHILOX_ROUNDS):
        if r > 0:
            k = [
                (k[0] + INDEPENDENT_PHILOX_WEYL[0]) & INDEPENDENT_MASK32,
                (k[1] + INDEPENDENT_PHILOX_WEYL[1]) & INDEPENDENT_MASK32,
            ]
        p0 = m0 * c[0]  # < 2**64: exact in uint64
        p1 = m1 * c[2]
        c = [
            (p1 >> np.uint64(32)) ^ c[1] ^ k[0],
            p1 & INDEPENDENT_MASK32,
            (p0 >> np.uint64(32)) ^ c[3] ^ k[1],
            p0 & INDEPENDENT_MASK32,
        ]
    return c


def stream_words(seed, stream, step, block):
    """The testbed's documented layout: counter (block lo, block hi, step, stream), key (seed lo, seed hi)."""
    block = np.asarray(block, dtype=np.uint64)
    seed = np.uint64(seed)
    return philox4x32_10(
        (block & INDEPENDENT_MASK32, block >> np.uint64(32), step, stream),
        (seed & INDEPENDENT_MASK32, seed >> np.uint64(32)),
    )


def stream_uniforms(seed, stream, step, n):
    """Draws 0..n-1 of (seed, stream, step) as uniforms (w + 1) / 2**32 on (0, 1]: draw i is word i % 4 of block
    i // 4."""
    blocks = np.arange((n + 3) // 4, dtype=np.uint64)
    words = np.stack(stream_words(seed, stream, step, blocks), axis=1).ravel()[:n]
    return (words.astype(np.float64) + 1.0) / 2.0**32


def stream_normals(seed, stream, step, n):
    """Draws 0..n-1 of (seed, stream, step) as standard normals: per block, Box-Muller on (u0, u1) and (u2, u3),
    ``(sqrt(-2 ln u0) cos 2 pi u1, sqrt(-2 ln u0) sin 2 pi u1)``, with NumPy's log, cos and sin."""
    blocks = (n + 3) // 4
    u = stream_uniforms(seed, stream, step, 4 * blocks).reshape(blocks, 2, 2)
    radius = np.sqrt(-2.0 * np.log(u[:, :, 0]))
    angle = 2.0 * np.pi * u[:, :, 1]
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=2).ravel()[:n]


def independent_gaussian_noise(seed, trial, step, dim):
    """The Monte Carlo noise vector of (trial, step): draws 0..dim-1 of stream ``trial`` at ``step``."""
    return stream_normals(seed, trial, step, dim)


# Every activation of reference.md / testbed.activations in closed form, (phi, phi') as NumPy ufunc expressions.
SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


def activation_pair(name, param=None):
    """(phi, phi') of the activation ``name`` (param: leaky_relu's slope, elu's alpha), from the textbook forms."""
    from scipy import special

    def sig(s):
        return special.expit(s)

    a = {"leaky_relu": 0.01, "elu": 1.0}.get(name, 0.0) if param is None else param
    table = {
        "linear": (lambda s: s, lambda s: np.ones_like(s)),
        "tanh": (np.tanh, lambda s: 1.0 / np.cosh(s) ** 2),
        "relu": (lambda s: np.maximum(s, 0.0), lambda s: (s > 0).astype(float)),
        "leaky_relu": (lambda s: np.where(s > 0, s, a * s), lambda s: np.where(s > 0, 1.0, a)),
        "sigmoid": (sig, lambda s: np.exp(-np.abs(s)) / (1.0 + np.exp(-np.abs(s))) ** 2),
        "softplus": (lambda s: np.logaddexp(0.0, s), sig),
        "elu": (
            lambda s: np.where(s > 0, s, a * np.expm1(np.minimum(s, 0.0))),
            lambda s: np.where(s > 0, 1.0, a * np.exp(np.minimum(s, 0.0))),
        ),
        "selu": (
            lambda s: SELU_LAMBDA * np.where(s > 0, s, SELU_ALPHA * np.expm1(np.minimum(s, 0.0))),
            lambda s: SELU_LAMBDA * np.where(s > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(s, 0.0))),
        ),
        "gelu": (
            lambda s: s * special.ndtr(s),
            lambda s: special.ndtr(s) + s * np.exp(-0.5 * s * s) / np.sqrt(2 * np.pi),
        ),
        "erf": (special.erf, lambda s: 2.0 / np.sqrt(np.pi) * np.exp(-s * s)),
        "hard_tanh": (lambda s: np.clip(s, -1.0, 1.0), lambda s: ((s > -1.0) & (s < 1.0)).astype(float)),
    }
    phi, dphi = table[name]
    return (lambda s: phi(np.asarray(s, dtype=np.float64))), (lambda s: dphi(np.asarray(s, dtype=np.float64)))


#: Bounds of the bounded activations (reference.md / the activations table): saturated within 1 % of a bound.
ACTIVATION_BOUNDS = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0), "erf": (-1.0, 1.0), "hard_tanh": (-1.0, 1.0)}
SATURATION_FRACTION = 0.01


def saturated_fraction(name, posts):
    """Share of entries of ``posts`` (phi(s)) within 1 % (of the largest |bound|) of either bound."""
    if name not in ACTIVATION_BOUNDS:
        return 0.0
    low, high = ACTIVATION_BOUNDS[name]
    margin = SATURATION_FRACTION * max(abs(low), abs(high))
    posts = np.asarray(posts, dtype=np.float64)
    return float(np.mean((posts <= low + margin) | (posts >= high - margin)))


def two_pass_moments(values):
    """(mean, variance) in float64 by two passes (mean first, then the mean square of the deviations)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    mean = values.sum() / values.size
    return mean, float(np.sum((values - mean) ** 2) / values.size)


def hermite_expectation(f, variance, nodes=200):
    """E[f(sqrt(variance) z)], z ~ N(0, 1), by Gauss-Hermite quadrature with ``nodes`` probabilists' nodes."""
    z, w = _hermite_nodes(nodes)
    return float(np.dot(w, f(math.sqrt(variance) * z)) / math.sqrt(2.0 * math.pi))


@functools.lru_cache(maxsize=None)
def _hermite_nodes(nodes):
    return np.polynomial.hermite_e.hermegauss(nodes)


def mean_field_recursion(phi, dphi, weight_gains, sb2, input_var, output_grad_var=1.0):
    """Per-layer q^l (pre-activation variance) and E[delta^2] by the mean-field recursion of Poole et al. 2016 /
    Schoenholz et al. 2017, with biases of variance sb2: q^1 = g_1 input_var + sb2, q^l = g_l E[phi(sqrt(q) z)^2]
    + sb2; E[delta^(l-1)^2] = g'_l E[phi'(sqrt(q^(l-1)) z)^2] E[delta^(l)^2] with g'_l the backward gain given."""
    forward, backward = weight_gains
    q = [forward[0] * input_var + sb2]
    for g in forward[1:]:
        q.append(g * hermite_expectation(lambda s: phi(s) ** 2, q[-1]) + sb2)
    grads = [output_grad_var]
    for l in range(len(forward) - 1, 0, -1):
        grads.insert(0, backward[l] * hermite_expectation(lambda s: dphi(s) ** 2, q[l - 1]) * grads[0])
    return np.array(q), np.array(grads)


def ar1_stationary_variance(lr, curvature, sigma):
    """Var of x_(t+1) = (1 - lr lambda) x_t - lr sigma z_t at stationarity (|1 - lr lambda| < 1): the geometric sum
    lr^2 sigma^2 / (1 - (1 - lr lambda)^2)."""
    a = 1.0 - lr * curvature
    return lr * lr * sigma * sigma / (1.0 - a * a)


def saddle_limit_variance(lr, gamma, sigma):
    """Var of Z = lim y_t / (1 + lr gamma)^t for y_(t+1) = (1 + lr gamma) y_t - lr sigma z_t from y_0 = 0:
    y_t / a^t = -lr sigma sum_(k<t) a^(-k-1) z_k,
    so Var Z = lr^2 sigma^2 sum_(k>=1) a^(-2k) = lr^2 sigma^2 / (a^2 - 1).
    """
    a = 1.0 + lr * gamma
    return lr * lr * sigma * sigma / (a * a - 1.0)


def hermite_pair_expectation(f, g, q, c, nodes=200):
    """E[f(u1) g(u2)], u1 = sqrt(q) z1, u2 = sqrt(q) (c z1 + sqrt(1 - c^2) z2), by a product Gauss-Hermite rule."""
    z, w = _hermite_nodes(nodes)
    z1, z2 = np.meshgrid(z, z, indexing="ij")
    weights = np.outer(w, w) / (2.0 * math.pi)
    u1 = math.sqrt(q) * z1
    u2 = math.sqrt(q) * (c * z1 + math.sqrt(1.0 - c * c) * z2)
    return float(np.sum(weights * f(u1) * g(u2)))


#: The Philox block of the first minibatch index draw (counter word 1 set: apart from the coordinate noise).
MINIBATCH_FIRST_BLOCK = 2**32


def finite_sum_samples(seed, n_samples, dim, stream, step):
    """The finite sum's directions a_k: normal draws of (seed, stream, step) in rows, centred and scaled to unit
    variance per coordinate."""
    a = stream_normals(seed, stream, step, n_samples * dim).reshape(n_samples, dim)
    a = a - a.mean(axis=0)
    return a / a.std(axis=0)


def minibatch_noise(seed, trial, step, samples, batch):
    """mean_{k in B} a_k: ``batch`` indices k_j = floor(u_j n) (u_j uniform draw j of blocks 2**32 + j // 4 of
    stream ``trial`` at ``step``), drawn with replacement."""
    n = samples.shape[0]
    blocks = MINIBATCH_FIRST_BLOCK + np.arange((batch + 3) // 4, dtype=np.uint64)
    words = np.stack(stream_words(seed, trial, step, blocks), axis=1).ravel()[:batch]
    u = (words.astype(np.float64) + 1.0) / 2.0**32
    return samples[np.minimum((u * n).astype(np.int64), n - 1)].mean(axis=0)


def newton_update(hessian, lr, damping, saddle_free=False):
    """Newton (Newton 1669, with Levenberg's damping): w <- w - lr (H + damping I)^-1 g; saddle-free Newton
    (Dauphin et al. 2014): |H| = sqrt(H^2) in place of H. ``hessian(w)`` gives H."""

    def update(w, g, state, t):
        h = hessian(w)
        h = abs_matrix(h) if saddle_free else h
        return w - lr * np.linalg.solve(h + damping * np.eye(w.size), g)

    return update


class Quadratic:
    """f(w) = 1/2 sum_i lambda_i (w_i - c_i)^2 written out (not through the landscape rules): the saddle
    (lambda = -gamma on the first ``negative`` coordinates, +1 elsewhere, reference.md s.4) and the ravine
    (lambda = (1, kappa)) of the Monte Carlo references."""

    def __init__(self, eigenvalues, center=None):
        self.eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
        self.dim = self.eigenvalues.size
        self.center = np.zeros(self.dim) if center is None else np.asarray(center, dtype=np.float64)

    @classmethod
    def saddle(cls, dim, negative=1, gamma=1.0):
        return cls([-gamma] * negative + [1.0] * (dim - negative))

    @classmethod
    def ravine(cls, kappa):
        return cls([1.0, kappa])

    def gradient(self, w, t=0):
        return self.eigenvalues * (np.asarray(w, dtype=np.float64) - self.center)

    def hessian(self, w, t=0):
        return np.diag(self.eigenvalues)


# ==============================================================================================================
# Curvature: dense Hessians and Gauss-Newton matrices of an MLP's mean loss
#
# Slow, obviously-correct NumPy references for testbed.curvature (float64). The Hessian is built column by column
# from central differences of the ANALYTIC gradient of train_loss_and_grad above (never from testbed); the
# Gauss-Newton matrix sum_i J_i^T H_i J_i from central differences of the logits (J) and the loss's Hessian in
# closed form. Parameters are flattened in testbed.nn.MLP's order: W^(1) (row-major), b^(1), W^(2), b^(2), ...
# ==============================================================================================================


def _flatten(weights, biases):
    return np.concatenate(
        [np.concatenate([np.ravel(w)] + ([] if b is None else [np.ravel(b)])) for w, b in zip(weights, biases)]
    )


def _unflatten(theta, weights, biases):
    new_w, new_b, at = [], [], 0
    for w, b in zip(weights, biases):
        new_w.append(theta[at : at + w.size].reshape(w.shape))
        at += w.size
        if b is None:
            new_b.append(None)
        else:
            new_b.append(theta[at : at + b.size])
            at += b.size
    return new_w, new_b


def train_dense_hessian(weights, biases, activation, x, y, loss="cross_entropy", output_linear=True, step=1e-5):
    """The (P, P) Hessian of the mean loss: column j = (grad(theta + h e_j) - grad(theta - h e_j)) / 2h, symmetrised."""
    theta = _flatten(weights, biases)

    def grad(t):
        w, b = _unflatten(t, weights, biases)
        _, gw, gb = train_loss_and_grad(w, b, activation, x, y, loss, output_linear)
        return _flatten(gw, gb)

    columns = []
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = step
        columns.append((grad(theta + e) - grad(theta - e)) / (2 * step))
    hessian = np.array(columns).T
    return 0.5 * (hessian + hessian.T)


def _train_logits(weights, biases, activation, x, output_linear=True):
    phi, _ = TRAIN_ACTIVATIONS[activation]
    h = np.asarray(x, dtype=np.float64)
    for l, (w, b) in enumerate(zip(weights, biases), start=1):
        s = h @ w.T + (0.0 if b is None else b)
        h = s if (l == len(weights) and output_linear) else phi(s)
    return h


def train_dense_gauss_newton(weights, biases, activation, x, y, loss="cross_entropy", output_linear=True, step=1e-6):
    """sum_i J_i^T H_i J_i, J_i = dz_i/dtheta by central differences, H_i the Hessian of row i's share of the mean
    loss in z_i: (diag p_i - p_i p_i^T) / B (softmax cross-entropy) or 2 I / (B K) (squared error)."""
    from scipy.special import softmax

    theta = _flatten(weights, biases)
    z = _train_logits(weights, biases, activation, x, output_linear)
    batch, classes = z.shape
    jac = np.empty((batch, classes, theta.size))
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = step
        plus = _train_logits(*_unflatten(theta + e, weights, biases), activation, x, output_linear)
        minus = _train_logits(*_unflatten(theta - e, weights, biases), activation, x, output_linear)
        jac[:, :, j] = (plus - minus) / (2 * step)
    result = np.zeros((theta.size, theta.size))
    for i in range(batch):
        if loss == "cross_entropy":
            p = softmax(z[i])
            h = (np.diag(p) - np.outer(p, p)) / batch
        else:
            h = 2.0 * np.eye(classes) / (batch * classes)
        result += jac[i].T @ h @ jac[i]
    return result


# ----------------------------------------------------------------------------------------------------------------
# propagate's one-pass moments (issue 14: testbed.nn.mlp.array_moments)


def array_moments(values):
    """(mean, population variance, mean square) of every entry, two-pass in float64 (NumPy's pairwise sums)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    mean = float(np.mean(v))
    variance = float(np.mean((v - mean) ** 2))
    return mean, variance, float(np.mean(v * v))
