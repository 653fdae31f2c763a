"""Slow, obviously-correct NumPy references that the kernels are compared against.

One section per domain: initialisers, optimizer updates, MLP passes, Monte Carlo trials. Each reference is
written from the formula or the paper (never from the rule it checks), in plain NumPy, for small inputs.
"""
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
        return ("uniform", {"bound": math.sqrt(3 * var)}) if kind == "uniform" else (
            "normal", {"mean": 0.0, "std": math.sqrt(var)})
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


def adagrad(w0, grads, lrs, *, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
            eps_inside=False):
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


def rmsprop(w0, grads, lrs, *, alpha=0.99, eps=1e-8, eps_inside=False, weight_decay=0.0, momentum=0.0,
            centered=False, initial_accumulator_value=0.0, bias_correction=False, lr_in_buffer=False):
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


def adam(w0, grads, lrs, *, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False,
         bias_correction=True, style="torch"):
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


def nadam(w0, grads, lrs, *, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3,
          decoupled=False, eps_inside=False, style="torch"):
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

def forward(weights, biases, activation, x, saturation_low=-np.inf, saturation_high=np.inf, edges=None,
            pair=(0, 1)):
    """Per-layer s^(l), x^(l) and the statistics ForwardStats documents, from the textbook formulas."""
    pres, posts = [], [np.asarray(x, dtype=np.float64)]
    stats = {k: [] for k in ("pre_mean", "pre_var", "pre_meansq", "post_mean", "post_var", "post_meansq",
                             "saturated_frac", "zero_frac", "dead_frac", "correlation", "histograms")}
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
# landscape's NumPy method, the Gaussian noise from the same Philox draws as the kernels (the plain-Python rule
# ``testbed.rules.rng.normal4``, keyed by (seed, trial, step, coordinate block)), and the optimizer update written here from its
# paper (not from testbed.rules.optimizers), so a wrong rule, a wrong key or a wrong escape test shows up.
# ==============================================================================================================

def gaussian_noise(seed, trial, step, dim):
    """The noise vector (before sigma) of (trial, step): four coordinates per Philox block."""
    draws = []
    for block in range((dim + 3) // 4):
        draws.extend(rng_rules.normal4(np.uint64(seed), trial, step, block))
    return np.array(draws[:dim])


def simulate(landscape, update, start, *, trials, noise, radius, max_steps, seed):
    """Escape steps, escaped flags and final iterates of ``trials`` trials of ``update`` from ``start``.

    ``update(w, g, state, t) -> w`` is a NumPy optimizer step (``state`` a dict it may fill); the trial escapes
    at the first t with |w - center| > radius.
    """
    steps = np.full(trials, max_steps)
    escaped = np.zeros(trials, bool)
    finals = np.zeros((trials, landscape.dim))
    for trial in range(trials):
        w = np.array(start[trial], dtype=np.float64)
        state = {}
        for t in range(1, max_steps + 1):
            g = landscape.gradient(w, t) + noise * gaussian_noise(seed, trial, t, landscape.dim)
            w = update(w, g, state, t)
            if np.linalg.norm(w - landscape.center) > radius:
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


# ==============================================================================================================
# Curvature: dense Hessians and Gauss-Newton matrices of an MLP's mean loss
#
# Slow, obviously-correct NumPy references for testbed.curvature (float64). The Hessian is built column by column
# from central differences of the ANALYTIC gradient of train_loss_and_grad above (never from testbed); the
# Gauss-Newton matrix sum_i J_i^T H_i J_i from central differences of the logits (J) and the loss's Hessian in
# closed form. Parameters are flattened in testbed.nn.MLP's order: W^(1) (row-major), b^(1), W^(2), b^(2), ...
# ==============================================================================================================

def _flatten(weights, biases):
    return np.concatenate([np.concatenate([np.ravel(w)] + ([] if b is None else [np.ravel(b)]))
                           for w, b in zip(weights, biases)])


def _unflatten(theta, weights, biases):
    new_w, new_b, at = [], [], 0
    for w, b in zip(weights, biases):
        new_w.append(theta[at:at + w.size].reshape(w.shape))
        at += w.size
        if b is None:
            new_b.append(None)
        else:
            new_b.append(theta[at:at + b.size])
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


def train_dense_gauss_newton(weights, biases, activation, x, y, loss="cross_entropy", output_linear=True,
                             step=1e-6):
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
