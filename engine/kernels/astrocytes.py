"""G-ChI astrocyte with gliotransmission (MODELS.md §5.2; De Pittà et al., Stimberg et al. 2019).

Pure numba functions: the right-hand side of the coupled synapse / astrocyte ODEs, one RK4 step,
and the calcium-threshold release event. Units as in the spec: µM and seconds (rates in 1/s); the
caller converts its ms clock. State vector (``TRI_*`` indices)::

    Y_S  cleft glutamate of the covered synapses (µM; impulses rho_c Y_T r_S at releases)
    Gam_S fraction of activated presynaptic gliotransmitter receptors
    Gam_A fraction of activated astrocytic receptors
    I    IP3 (µM)         C  calcium (µM)        h  IP3R de-inactivation
    x_A  gliotransmitter resources              G_A  extracellular gliotransmitter (µM)
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_OPTS = dict(cache=True, nogil=True)

TRI_Y, TRI_GS, TRI_GA, TRI_I, TRI_C, TRI_H, TRI_XA, TRI_G = range(8)
TRI_STATE = 8

#: parameter names, in the order of the parameter vector the kernels take
TRI_PARAM_NAMES = ("O_P", "K_P", "C_T", "rho_A", "Omega_C", "Omega_L", "d_1", "d_2", "d_3", "d_5", "O_2",
                   "O_beta", "O_N", "Omega_N", "K_KC", "zeta", "O_delta", "kappa_delta", "K_delta", "Omega_5P",
                   "K_D", "K_3K", "O_3K", "F_ex", "I_Theta", "omega_I", "C_Theta", "Omega_A", "U_A", "G_T",
                   "rho_e", "Omega_e", "Omega_c", "O_G", "Omega_G", "I_bias", "rho_c", "Y_T")
(P_OP, P_KP, P_CT, P_RHOA, P_OMC, P_OML, P_D1, P_D2, P_D3, P_D5, P_O2, P_OBETA, P_ON, P_OMN, P_KKC, P_ZETA,
 P_ODELTA, P_KAPPAD, P_KDELTA, P_OM5P, P_KD, P_K3K, P_O3K, P_FEX, P_ITHETA, P_OMEGAI, P_CTHETA, P_OMA, P_UA,
 P_GT, P_RHOE, P_OME, P_OMCLEFT, P_OG, P_OMG, P_IBIAS, P_RHOC, P_YT) = range(len(TRI_PARAM_NAMES))

_COMMON = dict(O_P=0.9, C_T=2.0, rho_A=0.18, Omega_C=6.0, Omega_L=0.1, d_1=0.13, d_2=1.05, d_3=0.9434, d_5=0.08,
               O_2=0.2, kappa_delta=1.5, K_3K=1.0, O_3K=4.5, I_Theta=0.3, omega_I=0.05, Y_T=500_000.0,
               Omega_c=40.0, I_bias=0.0)
_GLIO = dict(C_Theta=0.5, Omega_A=0.6, U_A=0.6, G_T=200_000.0, rho_e=6.5e-4, Omega_e=60.0, O_G=1.5,
             Omega_G=1.0 / 120.0)
_NO_GLIO = dict(C_Theta=0.5, Omega_A=0.6, U_A=0.0, G_T=0.0, rho_e=0.0, Omega_e=60.0, O_G=0.0, Omega_G=1.0 / 120.0)

#: The parameter sets of Stimberg et al. (2019) examples 2, 3 and 6 (MODELS.md §5.2 table), with
#: concentrations in µM (G_T, Y_T given in mM there). "–" entries of the table are switched off.
TRIPARTITE_PRESETS = {
    "ex2_synapse_driven": dict(_COMMON, **_NO_GLIO, K_P=0.1, O_beta=5.0, O_N=0.3, Omega_N=0.5, K_KC=0.5, zeta=10.0,
                               O_delta=0.2, K_delta=0.3, Omega_5P=0.1, K_D=0.5, F_ex=0.09, rho_c=0.001),
    "ex3_gliotransmission": dict(_COMMON, **_GLIO, K_P=0.05, O_beta=0.0, O_N=0.0, Omega_N=0.5, K_KC=0.5, zeta=10.0,
                                 O_delta=0.6, K_delta=0.1, Omega_5P=0.05, K_D=0.7, F_ex=2.0, rho_c=0.005),
    "ex6_network": dict(_COMMON, **_GLIO, K_P=0.05, O_beta=0.5, O_N=0.3, Omega_N=0.5, K_KC=0.5, zeta=10.0,
                        O_delta=1.2, K_delta=0.1, Omega_5P=0.05, K_D=0.7, F_ex=0.09, rho_c=0.005),
}
#: synapse (Tsodyks-Markram) parameters of the gliotransmission presets: U_0*, Omega_f, Omega_d (1/s)
TRIPARTITE_SYNAPSE = dict(U_0=0.6, Omega_f=3.33, Omega_d=2.0)


def preset_vector(preset: str, **overrides) -> np.ndarray:
    """Parameter vector of a preset (µM, 1/s) with named overrides."""
    values = dict(TRIPARTITE_PRESETS[preset], **overrides)
    return np.array([float(values[name]) for name in TRI_PARAM_NAMES], np.float64)


def initial_state(I0: float = 0.0) -> np.ndarray:
    """Rest: no glutamate or gliotransmitter, C = 0, h = 0.9, full gliotransmitter resources."""
    s = np.zeros(TRI_STATE)
    s[TRI_I] = I0
    s[TRI_H] = 0.9
    s[TRI_XA] = 1.0
    return s


@njit(**_OPTS)
def _hill(x, k, n):
    xn = x ** n
    return xn / (xn + k ** n)


@njit(**_OPTS)
def tripartite_rhs(s, p, out):
    """``out = ds/dt`` (per second) of the tripartite state ``s`` with parameters ``p``."""
    Y, GS, GA, I, C, h, xA, G = s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
    C = max(C, 0.0)
    I = max(I, 0.0)
    hc = min(max(h, 0.0), 1.0)
    out[TRI_Y] = -p[P_OMCLEFT] * Y
    out[TRI_GS] = p[P_OG] * G * (1.0 - GS) - p[P_OMG] * GS
    out[TRI_GA] = p[P_ON] * Y * (1.0 - GA) - p[P_OMN] * (1.0 + p[P_ZETA] * C / (C + p[P_KKC])) * GA
    J_beta = p[P_OBETA] * GA
    J_delta = p[P_ODELTA] / (1.0 + I / p[P_KAPPAD]) * _hill(C, p[P_KDELTA], 2.0)
    J_3K = p[P_O3K] * _hill(C, p[P_KD], 4.0) * I / (I + p[P_K3K])
    J_5P = p[P_OM5P] * I
    dI_bias = I - p[P_IBIAS]
    sgn = 1.0 if dI_bias > 0 else (-1.0 if dI_bias < 0 else 0.0)
    J_ex = -0.5 * p[P_FEX] * (1.0 + math.tanh((abs(dI_bias) - p[P_ITHETA]) / p[P_OMEGAI])) * sgn
    out[TRI_I] = J_beta + J_delta - J_3K - J_5P + J_ex
    m_inf = I / (I + p[P_D1]) * C / (C + p[P_D5])
    free = p[P_CT] - (1.0 + p[P_RHOA]) * C
    out[TRI_C] = p[P_OMC] * m_inf ** 3 * hc ** 3 * free + p[P_OML] * free - p[P_OP] * _hill(C, p[P_KP], 2.0)
    Q2 = p[P_D2] * (I + p[P_D1]) / (I + p[P_D3])
    out[TRI_H] = (Q2 / (Q2 + C) - h) * p[P_O2] * (Q2 + C)
    out[TRI_XA] = p[P_OMA] * (1.0 - xA)
    out[TRI_G] = -p[P_OME] * G


@njit(**_OPTS)
def tripartite_rk4(s, p, dt_s, armed, scratch):
    """One RK4 step of ``dt_s`` seconds in place, then the calcium-threshold release event.

    Returns the new ``armed`` flag: a release happens when C crosses C_Theta upwards while armed;
    the astrocyte re-arms once C is below C_Theta again. A release adds
    ``rho_e G_T U_A x_A`` to G_A and uses ``U_A x_A`` of the resources. ``scratch`` is a (5, 8)
    work array (no allocation per step).
    """
    n = s.size
    k1, k2, k3, k4, tmp = scratch[0], scratch[1], scratch[2], scratch[3], scratch[4]
    tripartite_rhs(s, p, k1)
    for i in range(n):
        tmp[i] = s[i] + 0.5 * dt_s * k1[i]
    tripartite_rhs(tmp, p, k2)
    for i in range(n):
        tmp[i] = s[i] + 0.5 * dt_s * k2[i]
    tripartite_rhs(tmp, p, k3)
    for i in range(n):
        tmp[i] = s[i] + dt_s * k3[i]
    tripartite_rhs(tmp, p, k4)
    for i in range(n):
        s[i] += dt_s / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i])
    if s[TRI_C] >= p[P_CTHETA]:
        if armed:
            released = p[P_UA] * s[TRI_XA]
            s[TRI_G] += p[P_RHOE] * p[P_GT] * released
            s[TRI_XA] -= released
            return False
        return armed
    return True


@njit(**_OPTS)
def release_probability(gamma_s, U0_star, alpha):
    """Resting release probability with gliotransmitter receptors ``gamma_s`` activated:
    ``U_0 = (1 - Gamma_S) U_0* + alpha Gamma_S`` (alpha 0: release-decreasing, 1: increasing)."""
    return (1.0 - gamma_s) * U0_star + alpha * gamma_s


@njit(**_OPTS)
def tripartite_step(k, tri_state, tri_prm, tri_armed, tri_acc, tri_every, tri_dt_s, tri_U0, tri_alpha, tri_nsyn,
                    stp_astro, stp_prm, scratch):
    """Every ``tri_every`` neuron steps: the covered synapses' releases since the last astrocyte
    step enter Y_S (``rho_c Y_T`` times the mean released fraction per synapse), one RK4 step of
    the astrocyte, and the new U_0 goes to the Tsodyks-Markram release of its projections."""
    for a in range(tri_state.shape[0]):
        if (k + 1) % tri_every[a] != 0:
            continue
        s = tri_state[a]
        p = tri_prm[a]
        if tri_nsyn[a] > 0:
            s[TRI_Y] += p[P_RHOC] * p[P_YT] * tri_acc[a] / tri_nsyn[a]
        tri_acc[a] = 0.0
        tri_armed[a] = tripartite_rk4(s, p, tri_dt_s[a], tri_armed[a], scratch)
        U0 = release_probability(s[TRI_GS], tri_U0[a], tri_alpha[a])
        for q in range(stp_astro.size):
            if stp_astro[q] == a:
                stp_prm[q, 0] = U0


@njit(**_OPTS)
def tripartite_trajectory(s, p, dt_s, n_steps, impulse_steps, impulse_size):
    """Integrate ``n_steps`` RK4 steps; before step ``impulse_steps[q]`` add ``impulse_size`` to
    Y_S. Returns (C per step after the step, steps at which a release event happened)."""
    Cs = np.empty(n_steps)
    events = np.empty(n_steps, np.int64)
    n_ev = 0
    armed = s[TRI_C] < p[P_CTHETA]
    scratch = np.empty((5, s.size))
    q = 0
    for k in range(n_steps):
        while q < impulse_steps.size and impulse_steps[q] == k:
            s[TRI_Y] += impulse_size
            q += 1
        before = s[TRI_C]
        was_armed = armed
        armed = tripartite_rk4(s, p, dt_s, armed, scratch)
        Cs[k] = s[TRI_C]
        if s[TRI_C] >= p[P_CTHETA] and before < p[P_CTHETA] and was_armed:
            events[n_ev] = k
            n_ev += 1
    return Cs, events[:n_ev]
