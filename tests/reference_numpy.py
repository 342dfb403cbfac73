"""An independent NumPy forward pass of the original MEF-GAN, following the authors' TF1 code layer by layer.

It reads weights by the original's TF1 variable names, so comparing it with our Keras models checks
both the architecture and the name map. Inference mode: batch norm uses moving statistics and the
spectral norm does one power iteration from the stored ``u``.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def l2n(a):
    return a / (np.sqrt(np.sum(a * a)) + 1e-12)


def sn_kernel(w, u):
    mat = w.reshape(-1, w.shape[-1]).astype(np.float64)
    v = l2n(u @ mat.T)
    u2 = l2n(v @ mat)
    sigma = (v @ mat @ u2.T).item()
    return w / sigma


def conv(x, w, b, stride=1, pad=1):
    """Reflect pad then VALID convolution, NHWC, float64."""
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    k = w.shape[0]
    win = sliding_window_view(x, (k, k), axis=(1, 2))[:, ::stride, ::stride]  # N,H,W,C,k,k
    return np.einsum("nhwcij,ijco->nhwo", win, w) + b


def lrelu(x):
    return np.maximum(x, 0.2 * x)


def bn(x, weights, scope, eps=1e-3):
    p = f"{scope}/batch_normalization/"
    mean, var = weights[p + "moving_mean"], weights[p + "moving_variance"]
    return (x - mean) / np.sqrt(var + eps) * weights[p + "gamma"] + weights[p + "beta"]


def unit(x, weights, conv_scope, b_scope, stride=1, sn=True, use_bn=True, act=True):
    w = weights[conv_scope + "/kernel"]
    if sn:
        w = sn_kernel(w, weights[b_scope + "/u"])
    y = conv(x, w, weights[conv_scope + "/bias"], stride)
    if use_bn:
        y = bn(y, weights, b_scope)
    return lrelu(y) if act else y


def softmax(s):
    s = s - s.max(axis=-1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=-1, keepdims=True)


def self_attention(x, weights):
    n, h, w_, c = x.shape

    def proj(name):
        kernel = sn_kernel(weights[f"Generator_7/self_attention/{name}/kernel"], weights[f"Generator/self_attention/{name}/{name}/u"])
        y = np.einsum("nhwc,co->nhwo", x, kernel[0, 0]) + weights[f"Generator_7/self_attention/{name}/bias"]
        return y.reshape(n, h * w_, -1)

    f, g, hh = proj("f_conv"), proj("g_conv"), proj("h_conv")
    beta = softmax(g @ f.transpose(0, 2, 1))
    o = (beta @ hh).reshape(n, h, w_, c)
    return weights["Generator_7/self_attention/gamma"] * o + x


def up2(x):
    return x.repeat(2, axis=1).repeat(2, axis=2)


def generator(over, under, weights):
    x = np.concatenate([over, under], axis=-1).astype(np.float64)
    feats = []
    for i in range(1, 6):
        conv_scope = "Generator/Local_net/conv1" if i == 1 else f"Generator_{i - 1}/Local_net/conv{i}"
        inp = x if i == 1 else np.concatenate(feats, axis=-1)
        feats.append(unit(inp, weights, conv_scope, f"Generator/Local_net/conv{i}/b", sn=i > 1))
    local = np.concatenate(feats, axis=-1)

    a = unit(x, weights, "Generator_5/Sa_net/encoder/conv1", "Generator/Sa_net/encoder/conv1/b", stride=2, sn=False)
    n, h, w_, c = a.shape
    a = a.reshape(n, h // 2, 2, w_ // 2, 2, c).max(axis=(2, 4))
    a = unit(a, weights, "Generator_6/Sa_net/encoder/conv2", "Generator/Sa_net/encoder/conv2/b", stride=2)
    a = self_attention(a, weights)
    a = unit(up2(a), weights, "Generator_8/Sa_net/decoder/conv1", "Generator/Sa_net/decoder/conv1/b")
    a = unit(up2(a), weights, "Generator_9/Sa_net/decoder/conv2", "Generator/Sa_net/decoder/conv2/b")
    a = up2(a)

    m = np.concatenate([local, a], axis=-1)
    m = unit(m, weights, "Generator_10/Merge_net/conv1", "Generator/Merge_net/conv1/b")
    m = unit(m, weights, "Generator_11/Merge_net/conv3", "Generator/Merge_net/conv3/b")
    m = unit(m, weights, "Generator_12/Merge_net/conv4", "Generator/Merge_net/conv4/b", sn=False, act=False)
    return np.tanh(m) / 2 + 0.5


def discriminator(images, weights):
    y = images.astype(np.float64)
    for i in range(1, 7):
        y = unit(y, weights, f"Discriminator/conv{i}", f"Discriminator/b{i - 1}", stride=2 if i < 6 else 1, sn=i < 6, use_bn=False)
    y = y.reshape(y.shape[0], -1)
    logit = y @ weights["Discriminator/flatten1/dense/kernel"] + weights["Discriminator/flatten1/dense/bias"]
    return np.tanh(logit) / 2 + 0.5
