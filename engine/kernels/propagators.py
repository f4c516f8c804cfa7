"""Build-time exact propagators (MODELS.md §0.3, §1.1, §1.3, §2.1). Plain numpy/scipy, no numba.

For the linear subthreshold system ``dx/dt = A x + b`` (``A``, ``b`` constant over a step) the exact
update is ``x_{k+1} = e^{A dt} x_k + A^{-1}(e^{A dt} - I) b``. The closed forms used by the LIF
kernels are:

    P22 = exp(-dt/tau_m)                       membrane decay
    P11 = exp(-dt/tau_s)                       synaptic current decay
    P21 = R·tau_s/(tau_s - tau_m)·(P11 - P22)  current -> voltage      (tau_s != tau_m)
    P21 = R·(dt/tau_m)·P22                     current -> voltage      (tau_s == tau_m)

so that ``V_{k+1} = E_L + (V_k - E_L)·P22 + P21·I_k + R·I_e·(1 - P22)``, ``I_{k+1} = P11·I_k``.
A delta channel is the limit ``P11 = 0, P21 = 1``: the arrivals of step k add undecayed to V_{k+1}.

With a subthreshold adaptation coupling ``a_w != 0`` (``tau_w dw/dt = a_w (V - E_L) - w``) the
(V, w, I_1..I_C) system is coupled; its coefficients come from one augmented matrix exponential per
distinct parameter set.
"""

from __future__ import annotations

import numpy as np


def decay(dt: float, tau) -> np.ndarray:
    """``exp(-dt/tau)`` elementwise."""
    return np.exp(-dt / np.asarray(tau, dtype=np.float64))


def current_to_voltage(dt: float, tau_s, tau_m, R) -> np.ndarray:
    """Exact P21 of an exponential current (time constant ``tau_s``) into a LIF membrane.

    Uses the degenerate form where ``tau_s`` and ``tau_m`` coincide (relative difference < 1e-9),
    which also avoids the cancellation of the general form near that point.
    """
    tau_s, tau_m, R = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (tau_s, tau_m, R)))
    p11, p22 = np.exp(-dt / tau_s), np.exp(-dt / tau_m)
    same = np.abs(tau_s - tau_m) <= 1e-9 * tau_m
    with np.errstate(divide="ignore", invalid="ignore"):
        general = R * tau_s / (tau_s - tau_m) * (p11 - p22)
    return np.where(same, R * (dt / tau_m) * p22, general)


def lif_coefficients(dt, tau_m, E_L, R, I_e, channel_kinds, channel_taus,
                     a_w=None, tau_w=None, V_reset=None):
    """Per-neuron coefficients of the (adaptive) LIF update used by :mod:`engine.kernels.neurons`.

    The kernel computes, outside the refractory period::

        V_{k+1} - E_L = P22·(V_k - E_L) + drive + ext·i_ext + avw·w_k + Σ_c P21_c·I_c,k
        w_{k+1}       = awv·(V_k - E_L) + aww·w_k + aw1 + awext·i_ext + Σ_c awi_c·I_c,k

    and during it ``V = V_reset``, ``w_{k+1} = wref_mul·w_k + wref_add`` (w relaxing towards
    ``a_w (V_reset - E_L)`` with V held).

    Parameters
    ----------
    channel_kinds : list of str
        ``"exponential"`` or ``"delta"`` per channel.
    channel_taus : list of ndarray
        Time constant per channel (ignored for delta).

    Returns
    -------
    dict of ndarray
        ``P22, drive, ext, avw, awv, aww, aw1, awext`` (n,) and ``P11, P21, awi`` (C, n).
    """
    tau_m = np.asarray(tau_m, np.float64)
    n = tau_m.size
    R = np.broadcast_to(np.asarray(R, np.float64), (n,))
    I_e = np.broadcast_to(np.asarray(I_e, np.float64), (n,))
    p22 = decay(dt, tau_m)
    C = len(channel_kinds)
    out = dict(
        P22=p22, drive=R * I_e * (1.0 - p22), ext=R * (1.0 - p22),
        avw=np.zeros(n), awv=np.zeros(n), aww=np.ones(n), aw1=np.zeros(n), awext=np.zeros(n),
        P11=np.zeros((C, n)), P21=np.zeros((C, n)), awi=np.zeros((C, n)),
        wref_mul=np.ones(n), wref_add=np.zeros(n),
    )
    for c, (kind, tau) in enumerate(zip(channel_kinds, channel_taus)):
        if kind == "delta":
            out["P11"][c] = 0.0
            out["P21"][c] = 1.0
        else:
            out["P11"][c] = decay(dt, np.broadcast_to(tau, (n,)))
            out["P21"][c] = current_to_voltage(dt, np.broadcast_to(tau, (n,)), tau_m, R)
    if tau_w is None:
        return out
    a_w = np.broadcast_to(np.asarray(a_w, np.float64), (n,))
    tau_w = np.broadcast_to(np.asarray(tau_w, np.float64), (n,))
    pw = decay(dt, tau_w)
    # uncoupled (a_w == 0): w decays exactly and drives V like an inhibitory exponential current
    out["aww"] = pw.copy()
    out["avw"] = -current_to_voltage(dt, tau_w, tau_m, R)
    out["wref_mul"] = pw
    if V_reset is not None:
        E_L = np.broadcast_to(np.asarray(E_L, np.float64), (n,))
        out["wref_add"] = a_w * (np.asarray(V_reset, np.float64) - E_L) * (1.0 - pw)
    coupled = a_w != 0.0
    if np.any(coupled):
        _coupled_coefficients(dt, out, np.flatnonzero(coupled), tau_m, R, I_e, a_w, tau_w,
                              channel_kinds, channel_taus)
    return out


def _coupled_coefficients(dt, out, idx, tau_m, R, I_e, a_w, tau_w, kinds, taus):
    """Fill the coefficients of neurons ``idx`` (a_w != 0) from augmented matrix exponentials.

    State ``z = [V - E_L, w, I_1..I_E (exponential channels), 1, i_ext]``::

        tau_m d(V-E_L)/dt = -(V-E_L) + R (I_e + i_ext + Σ I_c - w)
        tau_w dw/dt       = a_w (V - E_L) - w
        tau_c dI_c/dt     = -I_c

    The constant inputs are carried as extra state with zero derivative, so ``expm(A·dt)`` gives the
    affine part without inverting ``A``. One matrix exponential per distinct parameter row.
    """
    from scipy.linalg import expm

    exp_ch = [c for c, k in enumerate(kinds) if k != "delta"]
    E = len(exp_ch)
    dim = 2 + E + 2
    n = tau_m.size
    ch_tau = np.stack([np.broadcast_to(np.asarray(taus[c], np.float64), (n,)) for c in exp_ch]) if E else np.zeros((0, n))
    rows = np.column_stack([tau_m[idx], R[idx], I_e[idx], a_w[idx], tau_w[idx]] + [ch_tau[e, idx] for e in range(E)])
    uniq, inverse = np.unique(rows, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    for u, row in enumerate(uniq):
        tm, r, ie, aw, tw = row[:5]
        A = np.zeros((dim, dim))
        A[0, 0], A[0, 1] = -1.0 / tm, -r / tm
        for e in range(E):
            A[0, 2 + e] = r / tm
            A[2 + e, 2 + e] = -1.0 / row[5 + e]
        A[0, 2 + E] = r * ie / tm
        A[0, 3 + E] = r / tm
        A[1, 0], A[1, 1] = aw / tw, -1.0 / tw
        P = expm(A * dt)
        sel = idx[inverse == u]
        out["P22"][sel] = P[0, 0]
        out["avw"][sel] = P[0, 1]
        out["drive"][sel] = P[0, 2 + E]
        out["ext"][sel] = P[0, 3 + E]
        out["awv"][sel] = P[1, 0]
        out["aww"][sel] = P[1, 1]
        out["aw1"][sel] = P[1, 2 + E]
        out["awext"][sel] = P[1, 3 + E]
        for e, c in enumerate(exp_ch):
            out["P21"][c, sel] = P[0, 2 + e]
            out["awi"][c, sel] = P[1, 2 + e]
