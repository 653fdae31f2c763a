"""Slow, obviously-correct NumPy references for testbed.nn (float64 throughout, one layer at a time)."""
import numpy as np


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
