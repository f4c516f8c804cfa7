"""Graph to NeuroCoreX board image (board spec: ../shared/specs/NEUROCOREX.md).

What the board can run, and therefore what the mapper accepts:

* LIF populations (``neuron.lif``) with delta synapses, at most 90 neurons in all. Exponential
  synapses only when the user chooses the delta approximation (``exponential="delta"``): the
  jump is the PSP's total charge, ``R w tau_s / tau_m`` mV.
* Spike sources (Poisson, spike trains, data sets, event streams) on input addresses, at most 95
  channels (one address stays silent: it pads gaps and ends runs).
* Projections from a source (feed-forward, FF weights) or between populations (recurrent, AA
  weights), one step of delay, current receptors.

Refused with the node and the reason: other neuron models, delays above one step, astrocytes,
modulators, plasticity rules (the board's STDP does not train the FF synapses the network uses,
spec §7), current sources, conductance receptors.

Units. Board membranes live in Q7.10 (-128 .. 128) and reset to 0; weights are int8 times the
FF gain. A model voltage difference ``dV`` (mV above V_reset) maps to ``scale * dV`` board units;
the scale is chosen so that the largest weight and the threshold both fit. Time: one board
timestep per model step ``dt``; inputs that share a model step are released one per board
step, so each model step occupies ``max(1, events in it)`` board steps (time dilation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.errors import Problem
from hardware.errors import MappingError
from hardware.neurocorex import protocol as p
from nodes.base import Category

MAX_WEIGHT = 127
#: smallest model time constant treated as "no leak" on the board, in steps
NO_LEAK_TAU_STEPS = 1000.0


@dataclass
class MapOptions:
    """Choices the user makes for a deploy.

    Parameters
    ----------
    weight_scale : float or None
        Board membrane units per model mV. None picks the largest scale at which every weight
        and threshold fits.
    gain : int
        FF gain G (1..255); FF weights are divided by it before rounding to int8.
    exponential : str
        ``"refuse"`` (default) or ``"delta"``: approximate exponential synapses by delta jumps.
    leak : str
        ``"auto"``: tau_m below 1000 steps becomes a subtractive leak equal to the exponential
        leak at half threshold (with a wrap-around warning); ``"none"``: no leak.
    first_address : int
        First input address (the published host code starts at 2).
    spread : bool
        Leave a free slot between neurons when there is room, so that the adjacent-neuron
        artefact (spec §6) never touches a used neuron.
    onchip_stdp : tuple of 4 int, optional
        ``(tpre_ff, tpost, dw_pos, dw_neg)``: switch the board's own FF STDP on for every FF
        synapse of the model (windows in board steps, amplitudes in weight units; FF LTD uses the
        board's AA post window, spec §7). On this board version it does **not** train the
        network's synapses: it updates the transposed RAM entries ``W_FF[a, k + 1]`` and writes
        LTD results into row 3. For studying the board; the deploy reads the weights back after
        the runs. ``None`` (default): off.
    """

    weight_scale: float | None = None
    gain: int = 1
    exponential: str = "refuse"
    leak: str = "auto"
    first_address: int = 2
    spread: bool = True
    onchip_stdp: tuple[int, int, int, int] | None = None


@dataclass
class BoardMapping:
    """A board image plus everything needed to talk about it in model terms."""

    image: p.BoardImage
    dt: float
    weight_scale: float
    neuron_slots: dict[str, np.ndarray]  # population id -> slot k of each neuron
    input_addresses: dict[str, np.ndarray]  # source id -> address of each channel
    silent_address: int
    quantisation: dict[str, dict[str, float]] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)

    def schedule(self, source_spikes: dict[str, tuple[np.ndarray, np.ndarray]], n_model_steps: int
                 ) -> "BoardSchedule":
        """Serialise model-time input spikes into board events for one run.

        Parameters
        ----------
        source_spikes : dict
            Source id -> (model steps, channel indices) of the spikes of this run.
        n_model_steps : int
            Model steps the run must cover (the run continues after the last input).
        """
        steps, addresses = [], []
        for src_id, (s, i) in source_spikes.items():
            steps.append(np.asarray(s, np.int64))
            addresses.append(self.input_addresses[src_id][np.asarray(i, np.int64)])
        steps = np.concatenate(steps) if steps else np.zeros(0, np.int64)
        addresses = np.concatenate(addresses) if addresses else np.zeros(0, np.int64)
        keep = steps < n_model_steps
        steps, addresses = steps[keep], addresses[keep]
        order = np.lexsort((addresses, steps))
        steps, addresses = steps[order], addresses[order]
        per_step = np.bincount(steps, minlength=n_model_steps) if steps.size else np.zeros(n_model_steps, np.int64)
        width = np.maximum(per_step, 1)
        board_start = np.concatenate([[0], np.cumsum(width)])  # board step of each model step
        rank = np.arange(steps.size) - np.searchsorted(steps, steps)  # position within its model step
        release = board_start[steps] + rank
        pairs = list(zip(release.tolist(), addresses.tolist()))
        total = int(board_start[-1])
        # The run ends when the last event leaves the queue and that event is never applied:
        # a final silent event at the last board step makes every real input count.
        pairs.append((total + 1, self.silent_address))
        # The driver keeps the board's 1024-event queue from overflowing by pacing the upload.
        events = p.events_from_steps(pairs, filler_address=self.silent_address)
        return BoardSchedule(events, board_start, n_model_steps)

    def population_spikes(self, frames: np.ndarray, schedule: "BoardSchedule"
                          ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Board frames of one run to (model step, neuron index) per population.

        The board fires one step later than the model for the same input (the threshold test
        uses the previous membrane, spec §6), so frame f belongs to the model step whose board
        segment contains f - 1.
        """
        f, bit = np.nonzero(np.asarray(frames, bool))
        slot = bit + p.FIRST_NEURON
        model_step = np.searchsorted(schedule.board_start, f - 1, side="right") - 1
        ok = (model_step >= 0) & (model_step < schedule.n_model_steps)
        out = {}
        for pop_id, slots in self.neuron_slots.items():
            lookup = np.full(p.N_SLOTS, -1, np.int64)
            lookup[slots] = np.arange(slots.size)
            idx = lookup[slot]
            sel = ok & (idx >= 0)
            out[pop_id] = (model_step[sel], idx[sel])
        return out


@dataclass
class BoardSchedule:
    events: list[tuple[int, int]]
    board_start: np.ndarray  # board step at which each model step begins (+ one past the end)
    n_model_steps: int

    @property
    def board_steps(self) -> int:
        return int(self.board_start[-1])


def map_project(project, options: MapOptions | None = None) -> BoardMapping:
    """Map a project's graph onto one NeuroCoreX board.

    Raises
    ------
    MappingError
        Listing every part the board cannot run, each with its node and what to change.
    """
    options = options or MapOptions()
    graph, dt = project.graph, project.settings.dt
    refusals: list[Problem] = []
    warnings: list[Problem] = []
    populations, sources = [], []
    for node in graph.nodes.values():
        cat = node.category
        if cat == Category.NEURON:
            if node.type_id != "neuron.lif":
                refusals.append(Problem(f"{node.title} neurons cannot run on the board, which "
                                        "implements LIF only", node=node.label, field="type",
                                        hint="use a LIF population"))
            else:
                populations.append(node)
        elif cat == Category.INPUT:
            if node.type_id == "input.current":
                refusals.append(Problem("current sources cannot be injected on the board",
                                        node=node.label, hint="drive the neurons with spikes"))
            else:
                sources.append(node)
        elif cat == Category.MODULATOR:
            refusals.append(Problem(f"{node.title} cannot run on the board (no astrocytes or "
                                    "neuromodulators in its RTL)", node=node.label,
                                    hint="remove it, or run this part in simulation"))
        elif cat == Category.PLASTICITY:
            refusals.append(Problem(
                f"{node.title} cannot run on the board: its on-chip STDP is rectangular and, on this "
                "board version, updates transposed FF entries, never the synapses the network uses",
                node=node.label, hint="train in simulation and deploy the learned weights"))
    n_neurons = sum(pop.n for pop in populations)
    if n_neurons > p.N_NEURONS:
        refusals.append(Problem(f"the network has {n_neurons} neurons; the board has {p.N_NEURONS}",
                                field="n", hint="reduce population sizes"))
    n_channels = sum(src.size() for src in sources)
    n_addresses = p.N_INPUTS - options.first_address - 1  # one address stays silent
    if n_channels > n_addresses:
        refusals.append(Problem(f"the inputs have {n_channels} channels; the board takes "
                                f"{n_addresses} from address {options.first_address}",
                                hint="reduce input channels or lower first_address"))
    for pop in populations:
        if pop.synapse == "exponential" and options.exponential != "delta":
            refusals.append(Problem("exponential synapses need an approximation on the board "
                                    "(it has delta synapses only)", node=pop.label, field="synapse",
                                    hint="set synapse = delta, or deploy with --exponential delta"))
        if pop.I_e != 0:
            refusals.append(Problem("a constant current I_e cannot be injected on the board",
                                    node=pop.label, field="I_e", hint="set I_e = 0"))
        if abs(pop.E_L - pop.V_reset) > 1e-9:
            warnings.append(Problem(f"the board rests at its reset value; E_L = {pop.E_L:g} mV "
                                    f"becomes V_reset = {pop.V_reset:g} mV", node=pop.label,
                                    field="E_L", severity="warning",
                                    hint="set E_L = V_reset for an exact mapping"))
    projections = [n for n in graph.nodes.values() if n.type_id == "synapse.projection"]
    for prj in projections:
        for bad, message, hint in (
            (prj.receptor_type == "conductance", "conductance synapses are not on the board",
             "use current receptors"),
            (prj.delay_init != "constant" or round(prj.delay / dt) > 1,
             "the board has no synaptic delays (every synapse takes exactly one step)",
             f"set delay = {dt:g} ms (one step)"),
        ):
            if bad:
                refusals.append(Problem(message, node=prj.label, field="delay" if "delay" in message
                                        else "receptor_type", hint=hint))
    if refusals:
        raise MappingError("the network cannot be deployed to NeuroCoreX:\n" +
                           "\n".join(f"  {r}" for r in refusals))
    if not populations:
        raise MappingError("the network has no LIF population to deploy")

    from engine.compiler import compile_graph  # the same synapses the simulation uses

    plan = compile_graph(project)
    slots = _place(populations, options.spread)
    addresses, next_address = {}, options.first_address
    for src in sources:
        addresses[src.id] = np.arange(next_address, next_address + src.size())
        next_address += src.size()
    silent = p.N_INPUTS - 1
    image = p.BoardImage.empty()
    image.gain = int(options.gain)

    # Model weights in mV per arrival, per (projection, synapse).
    blocks = []
    for prj in projections:
        pre_node = graph.upstream(prj.id, "pre")[0][0]
        post_node = graph.downstream(prj.id, "post")[0][0]
        plan_prj = _plan_projection(plan, prj, post_node)
        pre_idx = plan_prj.pre_indices()
        post_idx = plan_prj.indices.astype(np.int64)
        w = np.asarray(plan_prj.weights, np.float64)  # signed, as the simulation applies it
        w_mv = w * _jump_per_weight(post_node)
        blocks.append((prj, pre_node, post_node, pre_idx, post_idx, w_mv))

    thresholds = {pop.id: pop.V_th - pop.V_reset for pop in populations}
    max_w = max((np.abs(b[5]).max() for b in blocks if b[5].size), default=0.0)
    max_up = max((b[5].max() for b in blocks if b[5].size), default=0.0)
    q_max = p.Q_MAX_RAW / p.Q_SCALE
    if options.weight_scale is not None:
        scale = float(options.weight_scale)
    else:
        # A membrane just below threshold plus the largest jump must stay below +128, or it
        # wraps to negative values instead of firing.
        limits = [q_max / (max(thresholds.values()) + max(max_up, 0.0))]
        if max_w > 0:
            limits.append(MAX_WEIGHT * image.gain / max_w)
        scale = min(limits)
    if any(b[5].size and b[5].min() < 0 for b in blocks):
        warnings.append(Problem("negative weights can push a membrane below -128, where it wraps to "
                                "+127 and fires (the board has no floor)", field="weight",
                                severity="warning", hint="keep inhibitory drive bounded"))

    for pop in populations:
        k = slots[pop.id]
        thr = thresholds[pop.id] * scale
        if thr > p.Q_MAX_RAW / p.Q_SCALE:
            raise MappingError(f"node {pop.label!r}: threshold {thr:.2f} board units exceeds the "
                               f"Q7.10 range; lower --weight-scale")
        image.thresholds[k] = np.round(thr * p.Q_SCALE) / p.Q_SCALE
        image.refractory[k] = max(0, int(round(pop.t_ref / dt)))
        if pop.t_ref > 0:
            warnings.append(Problem("the board keeps integrating during the refractory period "
                                    "(the model clamps V)", node=pop.label, field="t_ref",
                                    severity="warning", hint="expect small timing differences"))

    leaks = []
    for pop in populations:
        tau_steps = pop.tau_m / dt
        if options.leak == "auto" and tau_steps < NO_LEAK_TAU_STEPS:
            leaks.append(scale * thresholds[pop.id] / 2 / tau_steps)
    if leaks:
        image.leak = float(np.round(np.mean(leaks) * p.Q_SCALE) / p.Q_SCALE)
        if image.leak > 0:
            warnings.append(Problem(
                f"leak {image.leak:.3f} per step has no floor on the board: idle neurons wrap from "
                f"-128 to +127 and fire after about {128 / image.leak:.0f} steps",
                field="tau_m", severity="warning",
                hint="keep runs shorter than that, or map with leak = none"))

    quant: dict[str, dict[str, float]] = {}
    for prj, pre_node, post_node, pre_idx, post_idx, w_mv in blocks:
        target_w = w_mv * scale
        rows = slots[post_node.id][post_idx] + p.FF_ROW_OFFSET
        if pre_node.category == Category.NEURON:
            cols = slots[pre_node.id][pre_idx] + p.AA_COLUMN_OFFSET
            q = np.clip(np.rint(target_w), -128, 127)
            effective = q
            matrix = image.aa_weights
        else:
            cols = addresses[pre_node.id][pre_idx]
            q = np.clip(np.rint(target_w / image.gain), -128, 127)
            effective = q * image.gain
            matrix = image.ff_weights
        acc = np.zeros(matrix.shape)
        np.add.at(acc, (rows, cols), q)  # duplicate synapses between one pair add up
        matrix[...] = np.clip(matrix.astype(np.int64) + acc, -128, 127).astype(np.int8)
        err = np.abs(effective - target_w)
        ref = np.abs(target_w).max() if target_w.size else 0.0
        effective_gain = 1 if matrix is image.aa_weights else image.gain
        clipped = int(np.sum(np.abs(np.rint(target_w / effective_gain)) > 127))
        quant[prj.label] = {
            "synapses": int(target_w.size),
            "max_abs_error_board_units": float(err.max()) if err.size else 0.0,
            "max_relative_error": float(err.max() / ref) if err.size and ref else 0.0,
            "rms_error_mV": float(np.sqrt(np.mean((err / scale) ** 2))) if err.size else 0.0,
            "clipped": clipped,
        }
        if clipped:
            warnings.append(Problem(f"{clipped} weights exceed int8 x gain {effective_gain} and were "
                                    "clipped", node=prj.label, field="weight", severity="warning",
                                    hint="lower --weight-scale or raise --gain"))

    if options.onchip_stdp is not None:
        _enable_onchip_stdp(image, options.onchip_stdp, blocks, slots, addresses)
        warnings.append(Problem(
            "on-chip STDP on this board version does not train the network's own feed-forward "
            "synapses: it changes other weight-RAM entries (the transposed ones, and row 3 for "
            "depression), which can alter other synapses in turn. The weights are read back after "
            "the runs so you can see what changed", severity="warning",
            hint="train in simulation and deploy the learned weights; use on-chip STDP to study the board"))

    if not options.spread or sum(pop.n for pop in populations) > p.N_NEURONS // 2:
        warnings.append(Problem("neurons sit in adjacent slots: when neuron k fires, the FF input of "
                                "k + 1 in that step is lost (board artefact)", severity="warning",
                                hint="use at most 45 neurons so the mapper can leave gaps"))
    image.validate()
    return BoardMapping(image, dt, scale, slots, addresses, silent, quant, warnings)


def _enable_onchip_stdp(image: p.BoardImage, settings, blocks, slots, addresses) -> None:
    """Set the STDP words and the enable bits the board's FF STDP reads for the model's FF synapses.

    The board gates the update for input ``a`` and neuron ``k`` with the enable bit of the
    transposed entry ``[a, k + 1]`` (spec §7), so that is the bit set for each FF synapse.
    """
    try:
        tpre, tpost, dw_pos, dw_neg = (int(x) for x in settings)
    except (TypeError, ValueError):
        raise MappingError(f"on-chip STDP needs four whole numbers (tpre, tpost, dw_pos, dw_neg); "
                           f"got {settings!r}") from None
    for name, value in (("tpre", tpre), ("tpost", tpost), ("dw_pos", dw_pos), ("dw_neg", dw_neg)):
        if not 0 <= value <= 255:
            raise MappingError(f"on-chip STDP: {name} must be 0..255 (an 8-bit board field); got {value}")
    image.tpre_ff, image.tpost_aa, image.dw_pos, image.dw_neg = tpre, tpost, dw_pos, dw_neg
    for prj, pre_node, post_node, pre_idx, post_idx, _ in blocks:
        if pre_node.category == Category.NEURON:
            continue  # recurrent synapses: AA STDP was never verified on the board
        k = slots[post_node.id][post_idx]
        a = addresses[pre_node.id][pre_idx]
        inside = k + 1 < p.N_SLOTS
        image.stdp_enable_ff[a[inside], k[inside] + 1] = True


def _plan_projection(plan, prj, post):
    from engine.compiler import projection_plan_name

    for candidate in plan.projections:
        if candidate.name == projection_plan_name(prj, post):
            return candidate
    raise MappingError(f"internal: projection {prj.label!r} is missing from the compiled plan")


def _jump_per_weight(post) -> float:
    """mV added to V by one arrival of weight 1 on this population."""
    if post.synapse == "delta":
        return 1.0
    # exponential current: the PSP integral R w tau_s / tau_m, delivered at once (user's choice)
    return post.R * post.tau_syn_exc / post.tau_m


def _place(populations, spread: bool) -> dict[str, np.ndarray]:
    total = sum(pop.n for pop in populations)
    stride = 2 if spread and total * 2 - 1 <= p.N_NEURONS else 1
    slots, k = {}, p.FIRST_NEURON
    for pop in populations:
        slots[pop.id] = k + stride * np.arange(pop.n)
        k += stride * pop.n
    return slots
