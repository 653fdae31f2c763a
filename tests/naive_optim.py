"""Slow, obviously-correct NumPy references for the optimizers, written the way each library writes its update.

Each function runs a whole trajectory: ``w0`` (float64), ``grads`` (steps x n, the gradient used at each step, which
these tests draw independently of ``w``) and ``lrs`` (the learning rate of each step), and returns the final
parameters and a dict of the final state under PyTorch's names. Nothing here imports testbed: the formulas are
transcribed from the libraries' source (torch/optim/*.py, optax/_src/transform.py and alias.py,
keras/src/optimizers/*.py) and from the papers.
"""
import math

import numpy as np


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
