"""The bundled example projects, built through the graph API.

``python -m engine.examples`` rewrites ``resources/examples/*.swproj`` from these builders; the
test suite checks that the shipped files equal what the builders make, so the two never drift.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from engine.project import Project, SimulationSettings

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "resources" / "examples"


def _project(name: str, description: str, **settings) -> Project:
    project = Project(settings=SimulationSettings(**settings),
                      metadata={"name": name, "description": description, "author": "Synweave",
                                "created": "2026-11-22T00:00:00+00:00",
                                "modified": "2026-11-22T00:00:00+00:00"})
    return project


def cuba(n: int = 4000, p: float = 0.02) -> Project:
    """Vogels & Abbott (2005) CUBA network as benchmarked by Brette et al. (2007).

    80 % excitatory / 20 % inhibitory LIF neurons, connection probability 0.02, exponential
    current synapses (tau 5 ms / 10 ms), w_e = 1.62 mV and w_i = -9 mV (R w with R = 0.1 GOhm),
    E_L = -49 mV, V_th = -50 mV, V_reset = -60 mV, tau_m = 20 ms, t_ref = 5 ms, V_0 ~ U[-60, -50].
    """
    project = _project("CUBA network", "Vogels-Abbott current-based benchmark network "
                       "(Brette et al. 2007): 80/20 excitatory/inhibitory LIF, p = 0.02.",
                       dt=0.1, duration=1000.0, seed=2007)
    g = project.graph
    n_exc = int(round(0.8 * n))
    lif = dict(tau_m=20.0, E_L=-49.0, V_th=-50.0, V_reset=-60.0, t_ref=5.0, R=0.1,
               synapse="exponential", tau_syn_exc=5.0, tau_syn_inh=10.0,
               V_init="uniform", V_init_low=-60.0, V_init_high=-50.0)
    exc = g.add_node("neuron.lif", "Excitatory", (0, 0), n=n_exc, **lif)
    inh = g.add_node("neuron.lif", "Inhibitory", (0, 360), n=n - n_exc, **lif)
    for pre, label, w, receptor, y in ((exc, "E→", 16.2, "excitatory", -120),
                                       (inh, "I→", 90.0, "inhibitory", 300)):
        for post, suffix, x in ((exc, "E", 300), (inh, "I", 300)):
            prj = g.add_node("synapse.projection", f"{label}{suffix}", (x, y + (0 if suffix == "E" else 180)),
                             connectivity="fixed_probability", p=p, weight=w, delay=0.1,
                             receptor=receptor)
            g.connect(pre.id, "spikes", prj.id, "pre")
            g.connect(prj.id, "post", post.id, "input")
    spikes = g.add_node("monitor.spikes", "Raster", (620, 0))
    g.connect(exc.id, "spikes", spikes.id, "source")
    rate = g.add_node("monitor.rate", "Rate", (620, 160))
    g.connect(exc.id, "spikes", rate.id, "source")
    state = g.add_node("monitor.state", "Membrane", (620, 300), variable="V", indices=(0, 1, 2))
    g.connect(exc.id, "state", state.id, "population")
    g.group("Recurrent E/I network", [exc.id, inh.id] + [
        nid for nid, nd in g.nodes.items() if nd.type_id == "synapse.projection"])
    return project


def song_stdp() -> Project:
    """Song, Miller & Abbott (2000): 1000 Poisson inputs at 15 Hz onto one conductance LIF with
    additive STDP (Brian2's STDP example): the weights become bimodal."""
    project = _project("Song STDP", "1000 Poisson inputs (15 Hz) onto one conductance-based LIF "
                       "with additive, depression-dominated STDP; weights become bimodal.",
                       dt=0.1, duration=100_000.0, seed=2000)
    g = project.graph
    src = g.add_node("input.poisson", "Poisson inputs", (0, 0), n=1000, rate=15.0)
    post = g.add_node("neuron.cobalif", "Output neuron", (560, 0), n=1, tau_m=10.0, E_L=-74.0,
                      V_th=-54.0, V_reset=-60.0, t_ref=0.0, E_exc=0.0, tau_exc=5.0)
    prj = g.add_node("synapse.projection", "Plastic inputs", (280, 0), connectivity="all_to_all",
                     weight_init="uniform", weight_low=0.0, weight_high=0.01, receptor_type="conductance",
                     delay=0.1)
    rule = g.add_node("plasticity.stdp", "Song STDP", (280, 200), A_plus=1e-4, A_minus=1.05e-4,
                      tau_plus=20.0, tau_minus=20.0, w_min=0.0, w_max=0.01)
    g.connect(src.id, "spikes", prj.id, "pre")
    g.connect(prj.id, "post", post.id, "input")
    g.connect(rule.id, "rule", prj.id, "rule")
    wm = g.add_node("monitor.weights", "Weights", (560, 200), interval=1000.0, view="histogram")
    g.connect(prj.id, "weights", wm.id, "projection")
    rm = g.add_node("monitor.rate", "Output rate", (820, 0), bin=1000.0)
    g.connect(post.id, "spikes", rm.id, "source")
    return project


def izhikevich_network(duration: float = 1000.0) -> Project:
    """Izhikevich (2003) network (MODELS.md §9.1): 800 excitatory and 200 inhibitory neurons with
    r-dependent parameters (RS to CH, FS to LTS), random all-to-all weights S = 0.5 U (exc) and
    -U (inh), thalamic noise 5 N(0,1) / 2 N(0,1); shows alpha-band rhythms at about 8 Hz.

    float64: the 2003 split scheme is chaotic under rounding (see the Izhikevich node's doc)."""
    project = _project("Izhikevich 2003 network", "800 excitatory + 200 inhibitory Izhikevich neurons "
                       "with r-dependent parameters, all-to-all, 1-ms split-step scheme (Izhikevich 2003).",
                       dt=1.0, duration=duration, seed=2003, dtype="float64")
    g = project.graph
    exc = g.add_node("neuron.izhikevich", "Excitatory (RS-CH)", (0, 0), n=800, preset="exc_2003")
    inh = g.add_node("neuron.izhikevich", "Inhibitory (FS-LTS)", (0, 360), n=200, preset="inh_2003")
    for pre, w_high, receptor, y in ((exc, 0.5, "excitatory", -120), (inh, 1.0, "inhibitory", 300)):
        for post, suffix, dy in ((exc, "E", 0), (inh, "I", 180)):
            prj = g.add_node("synapse.projection", f"{pre.label[:3]}→{suffix}", (300, y + dy),
                             connectivity="all_to_all", weight_init="uniform", weight_low=0.0,
                             weight_high=w_high, delay=1.0, receptor=receptor)
            g.connect(pre.id, "spikes", prj.id, "pre")
            g.connect(prj.id, "post", post.id, "input")
    for pop, amp, y in ((exc, 5.0, -200), (inh, 2.0, 520)):
        noise = g.add_node("input.current", f"Thalamic drive {pop.label[:3]}", (-340, y),
                           waveform="noise", amplitude=amp)
        g.connect(noise.id, "current", pop.id, "input")
    raster = g.add_node("monitor.spikes", "Raster", (620, 100))
    g.connect(exc.id, "spikes", raster.id, "source")
    rate = g.add_node("monitor.rate", "Population rate", (620, 260))
    g.connect(exc.id, "spikes", rate.id, "source")
    return project


def reward_conditioning(duration: float = 24_000.0, period: float = 4000.0) -> Project:
    """Reward-modulated STDP (Izhikevich 2007) learning which of two cues is rewarded.

    Every ``period`` ms cue A (inputs 0-49) and, 2 s later, cue B (inputs 50-99) fire one volley
    each (0-7 ms jitter) onto 10 Izhikevich RS neurons through all-to-all plastic synapses; dopamine
    (0.5 µM, tau_d 200 ms) arrives 300 ms after every A volley and never near B. Causal pre-post
    pairs of both cues charge eligibility traces (tau_c = 1 s), but only A's are still charged when
    dopamine comes: A's weights and the neurons' response to A grow, B's much less. Background
    Poisson input makes random pairings, which R-STDP's depression-dominated window (A- = 1.5 A+)
    weakens.
    """
    import numpy as np

    project = _project("Reward-modulated STDP", "R-STDP (Izhikevich 2007): dopamine 300 ms after cue A, "
                       "never after cue B; A's synapses and responses grow.", dt=1.0, duration=duration, seed=2007,
                       dtype="float64")
    g = project.graph
    rng = np.random.default_rng(7)
    times, idx = [], []
    for t0 in np.arange(0.0, duration, period):
        for first, onset in ((0, 100.0), (50, 2100.0)):
            times += list(t0 + onset + rng.integers(0, 8, 50))
            idx += list(first + np.arange(50))
    order = np.argsort(times, kind="stable")
    cues = g.add_node("input.spike_train", "Cues A (0-49), B (50-99)", (0, 0), n=100,
                      times=tuple(float(times[i]) for i in order), indices=tuple(int(idx[i]) for i in order))
    noise = g.add_node("input.poisson", "Background", (0, 220), n=100, rate=3.0)
    pop = g.add_node("neuron.izhikevich", "Output", (600, 0), n=10, preset="RS")
    prj = g.add_node("synapse.projection", "Plastic synapses", (300, 0), connectivity="all_to_all", weight=0.5)
    background = g.add_node("synapse.projection", "Background synapses", (300, 220), p=0.1, weight=6.0)
    rule = g.add_node("plasticity.rstdp", "R-STDP", (300, 440))
    reward = g.add_node("modulator.reward", "Dopamine", (0, 440), mode="times",
                        times=tuple(float(t) for t in np.arange(0.0, duration, period) + 400.0))
    g.connect(cues.id, "spikes", prj.id, "pre")
    g.connect(prj.id, "post", pop.id, "input")
    g.connect(noise.id, "spikes", background.id, "pre")
    g.connect(background.id, "post", pop.id, "input")
    g.connect(rule.id, "rule", prj.id, "rule")
    g.connect(reward.id, "modulation", rule.id, "modulation")
    raster = g.add_node("monitor.spikes", "Raster", (880, 0))
    g.connect(pop.id, "spikes", raster.id, "source")
    wm = g.add_node("monitor.weights", "Weights", (880, 220))
    g.connect(prj.id, "weights", wm.id, "projection")
    return project


def nalsm_digits() -> Project:
    """The NALSM recipe (Ivanov & Michmizos 2021) scaled to the 8x8 digits of scikit-learn.

    A 1000-neuron liquid, 800 excitatory and 200 inhibitory LIF neurons mixed at random in a
    10 x 10 x 10 um cube, wired with P = C exp(-(D/lambda)^2) (lambda = 3, C_EE/C_EI/C_IE/C_II =
    0.2/0.1/0.3/0.05); 15 % of the input -> liquid pairs connected; every |w| starts at 3. Pair STDP
    on every projection, its depression rate set by the NALSM astrocyte. Phase 1 ("Liquid
    initialisation") presents 600 samples for 20 ms each with weights carried over; phase 2
    ("Features") presents every sample for 100 ms from the phase-1 weights, plasticity decaying
    x0.99 per ms; a softmax readout on the liquid's spike counts is trained on phase 2.
    Differences from the reference: input signs are drawn per projection (an excitatory and an
    inhibitory input projection of 7.5 % each, as weights keep their sign here), positions are
    uniform in the cube rather than a shuffled lattice, rate-coded pixels at up to max_rate, and
    the readout sees 100-ms presentations instead of 250 ms.
    """
    project = _project("NALSM digits", "Neuron-astrocyte liquid state machine (Ivanov & "
                       "Michmizos 2021) on the 8x8 digits of scikit-learn.",
                       dt=1.0, duration=1000.0, seed=2021)
    g = project.graph
    enc = g.add_node("input.dataset", "Digits", (0, 250), encoding="rate", max_rate=400.0,
                     presentation=100.0, rest=0.0, n_samples=0)
    liquid = dict(layout="random", extent=(10.0, 10.0, 10.0), tau_m=64.0, E_L=0.0, V_th=20.0, V_reset=0.0,
                  t_ref=2.0, R=1.0, synapse="delta")
    exc = g.add_node("neuron.lif", "Liquid E", (560, 150), n=800, **liquid)
    inh = g.add_node("neuron.lif", "Liquid I", (560, 450), n=200, **liquid)
    rule = g.add_node("plasticity.stdp", "Liquid STDP", (280, 720), A_plus=0.015, A_minus=0.015,
                      tau_plus=10.0, tau_minus=10.0, same_step="exclusive", w_min=0.0, w_max=3.0)
    astro = g.add_node("modulator.nalsm_astrocyte", "Astrocyte", (0, 720), compare_baselines=True)
    # the reference draws each input synapse's sign at random: half the pairs excite, half inhibit
    wiring = [(enc, exc, "Input→E +", dict(p=0.075)), (enc, exc, "Input→E −", dict(p=0.075, receptor="inhibitory")),
              (enc, inh, "Input→I +", dict(p=0.075)), (enc, inh, "Input→I −", dict(p=0.075, receptor="inhibitory")),
              (exc, exc, "E→E", dict(connectivity="distance", distance_C=0.2)),
              (exc, inh, "E→I", dict(connectivity="distance", distance_C=0.1)),
              (inh, exc, "I→E", dict(connectivity="distance", distance_C=0.3, receptor="inhibitory")),
              (inh, inh, "I→I", dict(connectivity="distance", distance_C=0.05, receptor="inhibitory"))]
    for i, (pre, post, label, extra) in enumerate(wiring):
        prj = g.add_node("synapse.projection", label, (280 + 560 * (i // 4), 170 * (i % 4)),
                         distance_lambda=3.0, weight=3.0, weight_init="constant", **extra)
        g.connect(pre.id, "spikes", prj.id, "pre")
        g.connect(prj.id, "post", post.id, "input")
        g.connect(rule.id, "rule", prj.id, "rule")
        g.connect(astro.id, "modulation", prj.id, "modulation")
    for pop in (exc, inh):
        g.connect(pop.id, "spikes", astro.id, "liquid")
    g.connect(enc.id, "spikes", astro.id, "reference")
    readout = g.add_node("readout.softmax", "Readout", (1120, 100), epochs=1000, test_fraction=0.2,
                         validation_fraction=0.1)
    g.connect(exc.id, "spikes", readout.id, "features")
    g.connect(inh.id, "spikes", readout.id, "features")
    g.connect(enc.id, "labels", readout.id, "labels")
    bf = g.add_node("monitor.branching", "Branching factor", (1120, 300))
    g.connect(exc.id, "spikes", bf.id, "population")
    rate = g.add_node("monitor.rate", "Liquid activity", (1120, 450))
    g.connect(exc.id, "spikes", rate.id, "source")
    init = g.add_node("training.phase", "Liquid initialisation", (560, 720), samples=600, presentation=20.0,
                      reset="state")
    features = g.add_node("training.phase", "Features", (880, 720), reset="state_and_weights",
                          overrides="Astrocyte.decay = 0.99", analyse=True, checkpoint_every=500)
    g.connect(init.id, "next", features.id, "previous")
    g.comment("Phase 1 shapes the liquid with astrocyte-gated STDP; phase 2 extracts features from "
              "the phase-1 weights, one sample at a time.", (0, 880))
    return project


def symmetric_stdp_digits(n_hidden: int = 100, train_samples: int = 2408, test_samples: int = 0,
                          input_rate: float = 200.0, eta_input: float = 0.005, eta_class: float = 0.04,
                          input_sum: float = 12.8) -> Project:
    """Supervised symmetric STDP (Hao et al. 2020) on the 8x8 digits of scikit-learn.

    64 Poisson inputs (rate = pixel x input_rate) -> n_hidden conductance LIF neurons (tau_m
    100 ms, V_th -52 mV + theta - 20 with Hao's adaptive theta, theta_+ 0.07 mV) with lateral
    inhibition (w 17, E_inh -100 mV) -> 10 class neurons (tau_m 10 ms, V_th -40, reset -45). Both
    plastic projections learn with symmetric STDP (traces tau 20 ms, a 0.1; bounds [0, 1] and
    [0, 8]) and are normalised before every sample (input sums scaled to the 64 pixels; class sums
    0.1 n_hidden 8). Phase "Training" (two passes over the 1204 samples of the train split,
    plasticity on): the teacher drives the label's class neuron at 200 Hz and a second teacher
    (all_but_label, inhibitory) keeps the other class neurons silent. Phase "Test" (the 593 samples
    of the test split, plasticity and teachers off, the learned thresholds frozen): prediction =
    the class neuron with the most spikes (vote by index). dt = 0.5 ms, 350 ms per sample, the
    network state reset between samples. Measured: 88.5 % test accuracy (one pass: 87.2 %).

    Differences from the reference (MNIST, 784 inputs): input rates and the input normalisation sum
    are scaled to 64 brighter pixels; the E -> I -> E relay (I_i fires exactly once, one step after
    E_i: HAO-2) is one inhibitory E -> E projection without autapses and with 1 ms delay; no rest
    period (the state is reset instead) and no intensity retry;
    learning rates are the reference's (0.005, 0.04) with race-free traces (one increment per spike,
    MODELS.md §8.6); 100 hidden neurons, one simultaneous schedule, two passes instead of twenty.
    """
    project = _project("Symmetric STDP digits", "Supervised symmetric STDP (Hao et al. 2020): hidden "
                       "layer with lateral inhibition and a teacher-driven class layer, digits of scikit-learn.",
                       dt=0.5, duration=350.0, seed=2020)
    g = project.graph
    enc = g.add_node("input.dataset", "Digits", (0, 0), encoding="rate", max_rate=input_rate,
                     presentation=350.0, rest=0.0, split="train", n_samples=0)
    hidden = g.add_node("neuron.cobalif", "Hidden", (600, 0), n=n_hidden, tau_m=100.0, E_L=-65.0, V_reset=-65.0,
                        V_th=-52.0, t_ref=2.0, E_exc=0.0, tau_exc=1.0, E_inh=-100.0, tau_inh=2.0)
    classes = g.add_node("neuron.cobalif", "Classes", (1200, 0), n=10, tau_m=10.0, E_L=-60.0, V_reset=-45.0,
                         V_th=-40.0, t_ref=0.0, E_exc=0.0, tau_exc=1.0)
    teacher = g.add_node("input.teacher", "Teacher", (600, 360), n=10, rate=200.0)
    plastic = dict(connectivity="all_to_all", weight_init="uniform", weight_low=0.0, weight_high=0.3,
                   receptor_type="conductance", delay=0.5)
    inp = g.add_node("synapse.projection", "Input→hidden", (300, 0), **plastic)
    out = g.add_node("synapse.projection", "Hidden→classes", (900, 0), **plastic)
    lateral = g.add_node("synapse.projection", "Lateral inhibition", (600, -220), connectivity="all_to_all",
                         weight=17.0, receptor="inhibitory", receptor_type="conductance", delay=1.0)
    silencer = g.add_node("input.teacher", "Silencer", (600, 560), n=10, rate=2000.0, channels="all_but_label")
    supervise = g.add_node("synapse.projection", "Teacher→classes", (900, 360), connectivity="one_to_one",
                           weight=50.0, receptor_type="conductance", delay=0.5)
    silence = g.add_node("synapse.projection", "Silencer→classes", (900, 560), connectivity="one_to_one",
                         weight=50.0, receptor="inhibitory", receptor_type="conductance", delay=0.5)
    for pre, prj, post in ((enc, inp, hidden), (hidden, out, classes), (hidden, lateral, hidden),
                           (teacher, supervise, classes), (silencer, silence, classes)):
        g.connect(pre.id, "spikes", prj.id, "pre")
        g.connect(prj.id, "post", post.id, "input")
    for source in (teacher, silencer):
        g.connect(enc.id, "labels", source.id, "labels")
    rules = [(inp, "plasticity.symmetric", "Sym-STDP input", (300, 200),
              dict(eta_pre=eta_input, eta_post=eta_input, w_max=1.0)),
             (inp, "plasticity.scaling", "Input normalisation", (300, 340), dict(target_sum=input_sum, interval=0.0)),
             (inp, "plasticity.intrinsic", "Adaptive threshold", (300, 480),
              dict(form="hao", theta_plus=0.07, tau_theta=6e6, theta_init=20.0, offset=20.0)),
             (out, "plasticity.symmetric", "Sym-STDP classes", (900, 200),
              dict(eta_pre=eta_class, eta_post=eta_class, w_max=8.0)),
             (out, "plasticity.scaling", "Class normalisation", (1200, 200),
              dict(target_sum=0.1 * n_hidden * 8.0, interval=0.0))]
    for prj, type_id, label, pos, params in rules:
        rule = g.add_node(type_id, label, pos, **params)
        g.connect(rule.id, "rule", prj.id, "rule")
    raster = g.add_node("monitor.spikes", "Class spikes", (1500, 200))
    g.connect(classes.id, "spikes", raster.id, "source")
    vote = g.add_node("readout.vote", "Most spikes", (1500, 0), assignment="by_index")
    g.connect(classes.id, "spikes", vote.id, "features")
    g.connect(enc.id, "labels", vote.id, "labels")
    train = g.add_node("training.phase", "Training", (0, 800), samples=train_samples, reset="state")
    test = g.add_node("training.phase", "Test", (300, 800), samples=test_samples, plasticity=False,
                      reset="state", overrides="Digits.split = \"test\"; Teacher.rate = 0; Silencer.rate = 0", analyse=True)
    g.connect(train.id, "next", test.id, "previous")
    g.comment("Training: the teacher makes the label's class neuron fire; both projections learn with "
              "symmetric STDP. Test: teacher and plasticity off, the class with most spikes wins.", (0, 940))
    return project


def neurocorex_digits() -> Project:
    """The NeuroCoreX digits demo (board spec §8): 64 inputs, 10 output LIF neurons, FF only,
    delta synapses, threshold 100, no leak."""
    project = _project("NeuroCoreX digits", "sklearn 8x8 digits, 64 inputs to 10 outputs, "
                       "feed-forward only: deployable to a NeuroCoreX board.",
                       dt=1.0, duration=5_000.0, seed=8)
    g = project.graph
    enc = g.add_node("input.dataset", "Digits", (0, 0), encoding="rate", max_rate=500.0,
                     presentation=50.0, rest=0.0, n_samples=100, split="test", seed=8)
    out = g.add_node("neuron.lif", "Classes", (560, 0), n=10, tau_m=1e5, E_L=0.0, V_th=100.0,
                     V_reset=0.0, t_ref=1.0, R=1.0, synapse="delta")
    ff = g.add_node("synapse.projection", "Digit weights", (280, 0), connectivity="from_file",
                    file=DIGIT_TEMPLATE_FILE, delay=1.0)
    readout = g.add_node("readout.vote", "Most spikes", (840, 0))
    g.connect(enc.id, "spikes", ff.id, "pre")
    g.connect(ff.id, "post", out.id, "input")
    g.connect(out.id, "spikes", readout.id, "features")
    g.connect(enc.id, "labels", readout.id, "labels")
    raster = g.add_node("monitor.spikes", "Raster", (840, 180))
    g.connect(out.id, "spikes", raster.id, "source")
    return project


#: the gradient example's presentation and rest (ms): the rest lets V and the synaptic currents decay
#: to e^-10 of their values (training starts every sample from rest)
GRADIENT_PRESENTATION_MS, GRADIENT_REST_MS = 20.0, 110.0
GRADIENT_TEST_SAMPLES = 593  # round(0.33 * 1797): the encoder's test split


def gradient_digits() -> Project:
    """A 64-100-10 LIF network trained with surrogate gradients on the scikit-learn digits.

    The encoder streams its test split (a run scores the trained network on the samples training
    never saw); the vote readout reads output neuron i as class i, as training defines it.
    """
    period = GRADIENT_PRESENTATION_MS + GRADIENT_REST_MS
    project = _project("Gradient digits", "64-100-10 LIF network trained end to end with surrogate "
                       "gradients (BPTT) on the 8x8 digits of scikit-learn: python main.py train.",
                       dt=1.0, duration=GRADIENT_TEST_SAMPLES * period, seed=13)
    g = project.graph
    lif = dict(tau_m=10.0, E_L=-70.0, V_th=-50.0, V_reset=-70.0, t_ref=1.0, R=0.1,
               synapse="exponential", tau_syn_exc=5.0, tau_syn_inh=5.0)
    enc = g.add_node("input.dataset", "Digits", (0, 0), encoding="rate", max_rate=500.0,
                     presentation=GRADIENT_PRESENTATION_MS, rest=GRADIENT_REST_MS, split="test")
    hidden = g.add_node("neuron.lif", "Hidden", (560, 0), n=100, **lif)
    out = g.add_node("neuron.lif", "Classes", (1120, 0), n=10, **lif)
    first = g.add_node("synapse.projection", "Input→hidden", (280, 0), connectivity="all_to_all",
                       weight_init="normal", weight=0.0, weight_std=50.0, delay=1.0)
    second = g.add_node("synapse.projection", "Hidden→classes", (840, 0), connectivity="all_to_all",
                        weight_init="normal", weight=0.0, weight_std=30.0, delay=1.0)
    train = g.add_node("training.surrogate_gradient", "Surrogate gradients", (1400, 200), epochs=15,
                       learning_rate=0.02)
    readout = g.add_node("readout.vote", "Most spikes", (1400, 0), assignment="by_index")
    g.connect(enc.id, "spikes", first.id, "pre")
    g.connect(first.id, "post", hidden.id, "input")
    g.connect(hidden.id, "spikes", second.id, "pre")
    g.connect(second.id, "post", out.id, "input")
    g.connect(out.id, "spikes", train.id, "output")
    g.connect(enc.id, "labels", train.id, "labels")
    g.connect(out.id, "spikes", readout.id, "features")
    g.connect(enc.id, "labels", readout.id, "labels")
    raster = g.add_node("monitor.spikes", "Raster", (1400, 380))
    g.connect(out.id, "spikes", raster.id, "source")
    return project


DIGIT_TEMPLATE_FILE = "neurocorex_digits_weights.npz"


def write_digit_templates(folder: Path = EXAMPLES_DIR) -> Path:
    """Integer template weights for the NeuroCoreX digits demo, as a connection list.

    Weight of input pixel i onto class neuron c: the class mean image of the encoder's training
    split, scaled to 0..8 and rounded, so the board's int8 weights hold them exactly.
    Template matching on the test split scores about 88 %.
    """
    import numpy as np

    from engine import encoders

    from engine.compiler import node_seed

    project = neurocorex_digits()
    [encoder] = [n for n in project.graph.nodes.values() if n.type_id == "input.dataset"]
    seed = node_seed(project.settings.seed, encoder, "dataset")
    # the same split the compiled encoder makes, so the test samples it streams stay unseen
    train = encoders.split_dataset(encoders.load_digits(), "train", encoder.test_fraction, seed)
    # Class means, not mean-subtracted templates: the board's membrane has no floor, so
    # negative drive would wrap from -128 to +127 and fire (spec §6).
    templates = np.stack([train.images[train.labels == c].mean(axis=0) for c in range(10)])
    weights = np.rint(templates / np.abs(templates).max() * 8.0)
    post, pre = np.nonzero(np.ones_like(weights))
    path = folder / DIGIT_TEMPLATE_FILE
    np.savez(path, pre=pre.astype(np.int64), post=post.astype(np.int64),
             weight=weights[post, pre].astype(np.float64))
    return path


BUILDERS: dict[str, Callable[[], Project]] = {
    "cuba": cuba,
    "song_stdp": song_stdp,
    "izhikevich_2003": izhikevich_network,
    "reward_stdp": reward_conditioning,
    "nalsm_digits": nalsm_digits,
    "neurocorex_digits": neurocorex_digits,
    "symmetric_stdp_digits": symmetric_stdp_digits,
    "gradient_digits": gradient_digits,
}


def write_all(folder: Path = EXAMPLES_DIR) -> list[Path]:
    written = [write_digit_templates(folder)]
    return written + [builder().save(folder / f"{name}.swproj", keep_backup=False)
                      for name, builder in BUILDERS.items()]


if __name__ == "__main__":
    for path in write_all():
        print(path)
    sys.exit(0)
