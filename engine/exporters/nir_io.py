"""NIR (Neuromorphic Intermediate Representation) export and import.

Export maps a project to a ``nir.NIRGraph`` written as HDF5 (``.nir``):

========================================  ==================================================
Synweave                                  NIR
========================================  ==================================================
spike source / encoder (n channels)       ``Input`` (key: the node id), its kind in metadata
LIF, delta synapses                       ``LIF``
LIF, exponential synapses, one time       ``CubaLIF``
constant in use
LIF, exponential synapses with            one ``LI`` per receptor (the synaptic current,
different excitatory / inhibitory taus    key ``<id>_syn_exc`` / ``_syn_inh``) feeding a ``LIF``
projection (compiled synapses)            ``Linear`` (dense weights ``[post, pre]``); a delay
                                          beyond one step adds a ``Delay`` node in front
populations watched by a monitor, or      ``Output`` (key ``<id>_output``)
without outgoing projections
========================================  ==================================================

Units and conventions (also written to the graph's metadata, so a reader never has to guess):

* time constants and delays in **seconds** (what snnTorch and Norse expect: their importers run at
  dt = 1e-4 s and 1e-3 s); potentials in **mV relative to the resting potential** ``E_L``
  (``v_leak = 0``: snnTorch's importer rejects any other leak, and both snnTorch and Norse reset to
  0, which is exact when ``V_reset = E_L``); currents in pA; weights in Synweave's units (pA for
  current synapses, mV for delta synapses); ``E_L`` of every population is in its metadata.
* Spikes: ``dirac`` (default, NIR's continuous-time reading) treats an input spike as a Dirac
  impulse, so ``r`` and ``w_in`` are chosen such that a spike of weight w moves V (delta) or I
  (exponential synapses) by exactly w, as in Synweave: LIF ``r = tau``; CubaLIF ``r = R``,
  ``w_in = tau_syn``; LI ``r = tau``. ``step`` treats a spike as a pulse of height 1 lasting one step
  of dt (discrete-time consumers): LIF ``r = tau/dt``; CubaLIF ``r = tau_mem/dt``,
  ``w_in = R tau_syn/tau_mem`` (snnTorch's importer requires exactly ``r = tau_mem/dt``); LI
  ``r = tau/dt``.
* Delays: every Synweave projection has a delay of at least one step (a spike changes its target
  one step later, MODELS.md §0.2), like a discrete-time consumer's layer-to-layer step; a ``Delay``
  node carries only the part beyond that first step, ``(d - 1) dt``.

What NIR cannot carry (refractory periods, plasticity, astrocytes and other modulators, encoders
and spike generators, monitors, readouts, conductance synapses, Izhikevich and adaptive neurons,
injected currents, initial-state distributions) is listed in the export report, per node.

Import builds a project from any NIR graph made of ``Input``, ``Output``, ``LIF``, ``CubaLIF``,
``IF``, ``LI`` (as synaptic current), ``Linear``, ``Affine`` and ``Delay`` nodes: one population per
neuron node, one projection (with its connection list in a ``.npz`` next to the project) per weight
node, a spike-train source per ``Input`` and a spike monitor per ``Output``, laid out left to right.
Synweave metadata, when present, restores labels, positions and the parameters NIR cannot hold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np

from engine.errors import ExportError
from engine.exporters import ExportReport, safe_name, write_atomic

#: beyond this many dense weight entries (post x pre per projection) the export is refused
MAX_DENSE_ENTRIES = 50_000_000
#: beyond this many distinct delays per projection the export is refused (one Delay node each)
MAX_DELAY_GROUPS = 64
SPIKE_CONVENTIONS = ("dirac", "step")
GENERATOR = "synweave"

DROPPED_CATEGORY = {
    "Plasticity": "plasticity rule: NIR has no learning rules; the exported weights are the initial ones",
    "Modulators": "modulator (astrocyte / reward / neuromodulator): NIR has no neuromodulation",
    "Readouts": "readout: NIR has no trained readouts; use the population's Output",
    "Monitors": "monitor: NIR has no recording devices (watched populations get Output nodes)",
    "Training": "training phase: NIR describes one network, not how samples are presented to it",
}


def _nir():
    try:
        import nir
    except ImportError:
        raise ExportError("NIR export needs the 'nir' package: pip install -e \".[export]\"") from None
    return nir


# ------------------------------------------------------------------------------------------------
# export
# ------------------------------------------------------------------------------------------------


@dataclass
class _PopulationNodes:
    """The NIR nodes of one population and where each receptor's synapses land."""

    main: str                                        # the spiking node's key
    receptor_keys: dict[str, str] = field(default_factory=dict)   # "exc"/"inh" -> key


def _receptors_in_use(plan, pop_id: str) -> list[str]:
    pop = plan.population(pop_id)
    used = {pop.receptors[pop.receptor_index(p.receptor)].name for p in plan.projections if p.post == pop_id}
    return [r.name for r in pop.receptors if r.name in used]


def _lif_nodes(nir, node, plan, spikes: str, report: ExportReport) -> tuple[dict, list, _PopulationNodes]:
    """NIR nodes of a LIF / adaptive LIF population."""
    n = node.size()
    dt_s = plan.dt / 1000.0
    ones = np.ones(n, np.float64)
    tau_m = node.tau_m / 1000.0
    thr, reset = node.V_th - node.E_L, node.V_reset - node.E_L
    meta = _node_metadata(node, extra={"E_L_mV": node.E_L})
    label = node.label
    if node.E_L != 0:
        report.converted(label, f"potentials relative to E_L = {node.E_L:g} mV (v_leak = 0, v_threshold "
                                f"= {thr:g}, v_reset = {reset:g} mV); E_L is in the node's metadata")
    if node.V_reset != node.E_L:
        report.note(label, f"V_reset ({node.V_reset:g} mV) differs from E_L ({node.E_L:g} mV): snnTorch and "
                           "Norse reset to v = 0 (= E_L here) whatever v_reset says")
    if node.t_ref > 0:
        report.dropped(label, f"refractory period t_ref = {node.t_ref:g} ms (NIR neurons have none)")
    if node.I_e != 0:
        report.dropped(label, f"constant current I_e = {node.I_e:g} pA (NIR neurons have no bias)")
    if node.V_init != "rest":
        report.dropped(label, f"initial potentials uniform in [{node.V_init_low:g}, {node.V_init_high:g}] mV "
                              "(NIR holds no initial state; consumers start at v = 0, i.e. E_L)")
    if node.type_id == "neuron.alif":
        report.dropped(label, "threshold adaptation and adaptation current (no adaptive neuron in NIR); "
                              "exported as a plain LIF")
    if getattr(node, "layout", "none") != "none":
        report.note(label, f"spatial layout '{node.layout}' kept in metadata only")
    nodes, edges = {}, []
    key = node.id
    if node.synapse == "delta":
        r = tau_m if spikes == "dirac" else tau_m / dt_s
        nodes[key] = nir.LIF(tau=tau_m * ones, r=r * ones, v_leak=0 * ones, v_threshold=thr * ones,
                             v_reset=reset * ones, metadata=meta)
        return nodes, edges, _PopulationNodes(key, {"exc": key, "inh": key})
    used = _receptors_in_use(plan, node.id) or ["exc"]
    taus = {"exc": node.tau_syn_exc / 1000.0, "inh": node.tau_syn_inh / 1000.0}
    if len({taus[r] for r in used}) == 1:
        tau_s = taus[used[0]]
        if spikes == "dirac":
            r, w_in = node.R, tau_s
        else:
            r, w_in = tau_m / dt_s, node.R * tau_s / tau_m
        nodes[key] = nir.CubaLIF(tau_syn=tau_s * ones, tau_mem=tau_m * ones, r=r * ones, v_leak=0 * ones,
                                 v_threshold=thr * ones, v_reset=reset * ones, w_in=w_in * ones, metadata=meta)
        return nodes, edges, _PopulationNodes(key, {rec: key for rec in ("exc", "inh")})
    # two receptors with different time constants: one leaky integrator per synaptic current
    pop = _PopulationNodes(key)
    for rec in used:
        li_key = f"{key}_syn_{rec}"
        r = taus[rec] if spikes == "dirac" else taus[rec] / dt_s
        nodes[li_key] = nir.LI(tau=taus[rec] * ones, r=r * ones, v_leak=0 * ones,
                               metadata={"synweave_role": "synaptic_current", "synweave_receptor": rec,
                                         "synweave_population": key})
        edges.append((li_key, key))
        pop.receptor_keys[rec] = li_key
    report.converted(label, f"exponential synapses with tau_exc = {node.tau_syn_exc:g} ms and tau_inh = "
                            f"{node.tau_syn_inh:g} ms: one LI node per synaptic current ({', '.join(used)}) "
                            "feeding a LIF (CubaLIF has a single synaptic time constant)")
    nodes[key] = nir.LIF(tau=tau_m * ones, r=node.R * ones, v_leak=0 * ones, v_threshold=thr * ones,
                         v_reset=reset * ones, metadata=meta)
    return nodes, edges, pop


def _node_metadata(node, extra: dict | None = None) -> dict:
    """Flat metadata (NIR stores scalars and strings): Synweave type, label, position, parameters."""
    meta = {"synweave_type": node.type_id, "synweave_label": node.label,
            "synweave_position": json.dumps(list(node.position)),
            "synweave_params": json.dumps(node.values_json())}
    meta.update(extra or {})
    return meta


def _weight_nodes(nir, prj, plan, target_key: str, source_key: str, base: str, label: str,
                  report: ExportReport) -> tuple[dict, list]:
    """Linear (+ Delay) nodes of one compiled projection, grouped by delay."""
    n_pre = plan.emitter_size(prj.pre)
    n_post = plan.population(prj.post).size
    if n_pre * n_post > MAX_DENSE_ENTRIES:
        raise ExportError(f"projection {label!r}: a dense {n_post} x {n_pre} weight matrix is larger than "
                          f"{MAX_DENSE_ENTRIES:,} entries; NIR Linear nodes are dense, so export a smaller "
                          "network")
    pre = prj.pre_indices()
    delays = prj.delays.astype(np.int64)
    groups = np.unique(delays) if delays.size else np.array([1])
    if groups.size > MAX_DELAY_GROUPS:
        raise ExportError(f"projection {label!r} has {groups.size} distinct delays; NIR needs one Delay "
                          f"node per delay, at most {MAX_DELAY_GROUPS} are exported: use fewer distinct "
                          "delays (e.g. a constant delay)")
    nodes, edges = {}, []
    duplicates = 0
    for d in groups:
        sel = delays == d
        w = np.zeros((n_post, n_pre), np.float32)
        np.add.at(w, (prj.indices[sel], pre[sel]), prj.weights[sel].astype(np.float32))
        duplicates += int(sel.sum()) - int(np.count_nonzero(
            np.bincount(prj.indices[sel].astype(np.int64) * n_pre + pre[sel], minlength=1)))
        key = base if groups.size == 1 else f"{base}_d{int(d)}"
        meta = {"synweave_projection": prj.name, "synweave_label": label,
                "synweave_receptor": str(prj.receptor), "synweave_delay_steps": int(d)}
        nodes[key] = nir.Linear(weight=w, metadata=meta)
        if d > 1:
            delay_key = f"{key}_delay"
            nodes[delay_key] = nir.Delay(delay=np.full(n_pre, (int(d) - 1) * plan.dt / 1000.0, np.float32),
                                         metadata={"synweave_projection": prj.name})
            edges += [(source_key, delay_key), (delay_key, key)]
        else:
            edges.append((source_key, key))
        edges.append((key, target_key))
    zeros = int(np.count_nonzero(prj.weights == 0))
    if zeros:
        report.converted(label, f"{zeros} synapse(s) of weight 0: a dense weight matrix cannot tell them from "
                                "absent synapses, an import leaves them out")
    if duplicates:
        report.converted(label, f"{duplicates} repeated synapse(s) between the same pair summed into one weight")
    if groups.size > 1:
        report.converted(label, f"{groups.size} distinct delays: one Delay + Linear path per delay")
    return nodes, edges


def build_nir_graph(project, spikes: str = "dirac", report: ExportReport | None = None):
    """The ``nir.NIRGraph`` of ``project`` and the report of what it could not carry."""
    from engine.compiler import compile_graph

    nir = _nir()
    if spikes not in SPIKE_CONVENTIONS:
        raise ExportError(f"unknown spike convention {spikes!r}; use one of {SPIKE_CONVENTIONS}")
    report = report or ExportReport("NIR")
    plan = compile_graph(project)
    graph = project.graph
    nodes: dict = {}
    edges: list = []
    emitters: dict[str, str] = {}       # Synweave node id -> NIR key emitting its spikes
    populations: dict[str, _PopulationNodes] = {}
    for node in graph.nodes.values():
        cat = node.category.value
        if node.type_id in ("neuron.lif", "neuron.alif"):
            new, internal, pop = _lif_nodes(nir, node, plan, spikes, report)
            nodes.update(new)
            edges += internal
            populations[node.id] = pop
            emitters[node.id] = pop.main
        elif node.type_id == "neuron.cobalif":
            report.dropped(node.label, "conductance-based LIF: NIR has no conductance synapses; the population "
                                       "and every projection to or from it are left out")
        elif node.type_id == "neuron.izhikevich":
            report.dropped(node.label, "Izhikevich neuron: no NIR primitive; the population and its "
                                       "projections are left out")
        elif cat == "Inputs" and node.type_id != "input.current":
            n = node.size()
            nodes[node.id] = nir.Input(input_type={"input": np.array([n])}, metadata=_node_metadata(node))
            emitters[node.id] = node.id
            what = {"input.poisson": f"Poisson generator ({node.get('rate'):g} Hz)" if "rate" in node.params else "",
                    "input.dataset": "data-set encoder", "input.event_stream": "event-stream reader",
                    "input.spike_train": "spike-train generator"}.get(node.type_id) or node.title
            report.dropped(node.label, f"{what}: NIR carries no spike generators or encoders; it becomes an "
                                       f"Input of {n} channels (feed the spikes at run time)")
        elif node.type_id == "input.current":
            report.dropped(node.label, f"injected current ({node.waveform}): NIR graphs have no current sources")
        elif cat in DROPPED_CATEGORY:
            report.dropped(node.label, DROPPED_CATEGORY[cat])
    for node in graph.nodes.values():
        if node.type_id != "synapse.projection":
            continue
        mine = [p for p in plan.projections if p.name.startswith(f"{node.id}->")]
        for prj in mine:
            if prj.pre not in emitters or prj.post not in populations:
                continue  # the far end was dropped (reported with that node)
            pop = populations[prj.post]
            post_plan = plan.population(prj.post)
            receptor = post_plan.receptors[post_plan.receptor_index(prj.receptor)].name
            base = node.id if len(mine) == 1 else f"{node.id}_to_{prj.post}"
            new, new_edges = _weight_nodes(nir, prj, plan, pop.receptor_keys[receptor], emitters[prj.pre],
                                           base, node.label, report)
            for v in new.values():
                v.metadata["synweave_position"] = json.dumps(list(node.position))
                v.metadata["synweave_params"] = json.dumps(node.values_json())
                v.metadata["synweave_node"] = node.id
            nodes.update(new)
            edges += new_edges
        if node.receptor_type == "conductance":
            report.dropped(node.label, "conductance synapses: not expressible in NIR")
        if graph.upstream(node.id, "rule"):
            report.note(node.label, "weights exported as initialised; its plasticity rule is not carried")
        if getattr(node, "stp", "none") != "none":
            report.dropped(node.label, "short-term plasticity (Tsodyks-Markram): NIR synapses are static")
    # outputs: watched populations, or populations that feed nothing
    watched = {up.id for n in graph.nodes.values() if n.category.value in ("Monitors", "Readouts")
               for port in n.inputs() for up, _ in graph.upstream(n.id, port.name)}
    feeding = {p.pre for p in plan.projections}
    out_ids = [pid for pid in populations if pid in watched or pid not in feeding] or list(populations)
    for pid in out_ids:
        n = graph.node(pid).size()
        key = f"{pid}_output"
        nodes[key] = nir.Output(output_type={"output": np.array([n])},
                                metadata={"synweave_population": pid, "synweave_label": graph.node(pid).label})
        edges.append((populations[pid].main, key))
    if not populations:
        raise ExportError("nothing NIR can express: the project has no LIF population (see the report lines "
                          "for why each node was left out):\n  " + "\n  ".join(str(i) for i in report.items))
    metadata = {
        "generator": GENERATOR, "synweave_schema": 1, "project": project.name,
        "spikes": spikes, "dt_s": plan.dt / 1000.0, "time_unit": "s", "voltage_unit": "mV (relative to E_L)",
        "current_unit": "pA", "weight_unit": "pA (current synapses), mV (delta synapses)",
        "resistance_unit": "GOhm (R*pA = mV)" if spikes == "dirac" else "GOhm, or tau/dt where spikes are inputs",
        "delay_convention": "every projection has an implicit delay of one step dt; Delay nodes carry the rest",
        "seed": int(plan.seed),
        "conventions": ("dirac: a spike is a Dirac impulse; LIF r = tau (delta synapses), CubaLIF r = R and "
                        "w_in = tau_syn, LI r = tau" if spikes == "dirac" else
                        "step: a spike is a pulse of height 1 for one step dt; LIF r = tau/dt, CubaLIF r = "
                        "tau_mem/dt and w_in = R tau_syn/tau_mem, LI r = tau/dt"),
    }
    report.note("graph", f"{len(nodes)} NIR nodes, {len(edges)} edges; times in s, potentials in mV relative "
                         f"to E_L, spikes as {spikes} ({'one-step pulses, dt = ' + format(plan.dt, 'g') + ' ms' if spikes == 'step' else 'continuous-time impulses'})")
    if spikes == "step" and abs(plan.dt - 0.1) > 1e-12:
        report.note("consumers", f"spikes as one-step pulses of dt = {plan.dt:g} ms, but snnTorch's import "
                                 "assumes dt = 0.1 ms (its r = tau/dt check fails); give Norse from_nir(dt="
                                 f"{plan.dt / 1000:g})")
    report.note("consumers", "snnTorch's import runs at dt = 0.1 ms, needs v_leak = 0 (given) and resets to 0; "
                             "Norse's runs at dt = 1 ms unless from_nir(dt=...) is given, ignores r and v_reset "
                             "(expects r = 1); in both a layer passes spikes on within the step, in Synweave one step later, so their "
                             "outputs lead Synweave's by one step per projection")
    has_input = any(isinstance(v, nir.Input) for v in nodes.values())
    if not has_input:
        report.note("graph", "no Input node: the network has no spike source and runs on its own (type "
                             "checking is off for such graphs; read it with nir.read(path, type_check=False))")
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=has_input), report


def export_nir(project, out: Path, spikes: str = "dirac", **_ignored) -> ExportReport:
    """Write ``project`` as a NIR file and return the report of what NIR cannot carry."""
    nir = _nir()
    graph, report = build_nir_graph(project, spikes)
    write_atomic(out, lambda tmp: nir.write(tmp, graph))
    report.written.append(Path(out))
    return report


# ------------------------------------------------------------------------------------------------
# import
# ------------------------------------------------------------------------------------------------

NEURON_KINDS = ("LIF", "CubaLIF", "IF")
WEIGHT_KINDS = ("Linear", "Affine")


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value[()])
    return str(value)


def _meta(node, key: str, default=None):
    meta = getattr(node, "metadata", None) or {}
    return _text(meta[key]) if key in meta else default


def _uniform(values, name: str, key: str, report: ExportReport) -> float:
    arr = np.asarray(values, np.float64).ravel()
    if arr.size and not np.allclose(arr, arr[0]):
        report.converted(key, f"{name} differs across neurons ({arr.min():g} .. {arr.max():g}); "
                              f"Synweave populations share one value, the mean {arr.mean():g} is used")
        return float(arr.mean())
    return float(arr[0]) if arr.size else 0.0


def _size(node) -> int:
    for attr in ("v_threshold", "tau", "r", "delay"):
        if hasattr(node, attr):
            return int(np.asarray(getattr(node, attr)).size)
    t = node.input_type.get("input") if hasattr(node, "input_type") else None
    return int(np.prod(t)) if t is not None else 0


def import_nir(path: Path, out: Path, dt_ms: float | None = None, spikes: str | None = None):
    """Build a project from the NIR file ``path``; write it to ``out`` (.swproj) with its connection lists.

    Returns ``(project, report)``.
    """
    nir = _nir()
    path, out = Path(path), Path(out)
    try:
        try:
            g = nir.read(path)
        except ValueError:  # NIR's type inference needs an Input node; recurrent graphs may have none
            g = nir.read(path, type_check=False)
    except FileNotFoundError:
        raise ExportError(f"{path}: file not found") from None
    except (OSError, KeyError, ValueError, TypeError, AssertionError) as exc:
        raise ExportError(f"{path}: not a readable NIR file ({exc})") from None
    project, report = project_from_nir(g, out, dt_ms=dt_ms, spikes=spikes, name=path.stem)
    project.save(out, keep_backup=False)
    report.written.insert(0, project.path)
    return project, report


def project_from_nir(g, out: Path, dt_ms: float | None = None, spikes: str | None = None, name: str = "NIR import"):
    """A :class:`engine.project.Project` from a ``nir.NIRGraph`` (connection lists written next to ``out``)."""
    from engine.project import Project, SimulationSettings

    nir = _nir()
    report = ExportReport("NIR import")
    gmeta = getattr(g, "metadata", None) or {}
    ours = _text(gmeta.get("generator", "")) == GENERATOR
    if dt_ms is None:
        dt_ms = float(np.asarray(gmeta["dt_s"])) * 1000.0 if "dt_s" in gmeta else 0.1
    dt_s = dt_ms / 1000.0
    spikes = spikes or (_text(gmeta["spikes"]) if "spikes" in gmeta else "dirac")
    if spikes not in SPIKE_CONVENTIONS:
        raise ExportError(f"unknown spike convention {spikes!r}; use one of {SPIKE_CONVENTIONS}")
    if not ours:
        report.note("graph", f"not written by Synweave: times read as seconds, dt = {dt_ms:g} ms, spikes as "
                             f"{spikes}, potentials in mV")
    kinds = {k: type(v).__name__ for k, v in g.nodes.items()}
    for key, kind in kinds.items():
        if kind == "NIRGraph":
            raise ExportError(f"NIR node {key!r} is a nested graph; flatten it before importing")
        if kind not in (*NEURON_KINDS, *WEIGHT_KINDS, "LI", "Delay", "Input", "Output"):
            raise ExportError(f"NIR node {key!r} is a {kind}, which Synweave cannot import (supported: LIF, "
                              "CubaLIF, IF, LI, Linear, Affine, Delay, Input, Output)")
    emitting = ("Input", *NEURON_KINDS)
    allowed = {kind: targets for kind, targets in (
        *((k, ("Linear", "Affine", "Delay", "Output")) for k in emitting),
        ("Delay", WEIGHT_KINDS), *((k, ("LIF", "IF", "CubaLIF", "LI")) for k in WEIGHT_KINDS), ("LI", ("LIF", "IF")))}
    for a, b in g.edges:
        if a not in kinds or b not in kinds:
            raise ExportError(f"NIR edge {a!r} -> {b!r} names a node the graph does not have")
        if kinds[b] not in allowed.get(kinds[a], ()):
            raise ExportError(f"NIR edge {a!r} ({kinds[a]}) -> {b!r} ({kinds[b]}) has no Synweave counterpart: "
                              "spikes reach neurons through Linear/Affine weights (optionally after a Delay)")
    succ: dict[str, list[str]] = {k: [] for k in g.nodes}
    pred: dict[str, list[str]] = {k: [] for k in g.nodes}
    for a, b in g.edges:
        succ[a].append(b)
        pred[b].append(a)
    project = Project(settings=SimulationSettings(dt=dt_ms, seed=int(np.asarray(gmeta.get("seed", 12345)))),
                      metadata={"name": _text(gmeta.get("project", name)),
                                "description": f"imported from NIR ({'Synweave' if ours else 'foreign'} graph)"})
    graph = project.graph
    ids: dict[str, str] = {}       # NIR key -> Synweave node id
    synapse_li: dict[str, tuple[str, str]] = {}  # LI key -> (neuron key, receptor)
    scale: dict[str, float] = {}   # NIR key of a weight target -> factor from NIR weight to Synweave weight

    # leaky integrators that feed neurons are synaptic currents
    for key, kind in kinds.items():
        if kind == "LI":
            targets = [t for t in succ[key] if kinds[t] in ("LIF", "IF")]
            if not targets or len(targets) != len(succ[key]) or len(targets) > 1:
                raise ExportError(f"NIR node {key!r} (LI) must feed exactly one LIF or IF: Synweave reads a leaky "
                                  "integrator as the synaptic current of a neuron; a non-spiking readout "
                                  "population does not exist here")
            synapse_li[key] = (targets[0], _meta(g.nodes[key], "synweave_receptor", ""))
    for neuron_key in {t for t, _ in synapse_li.values()}:
        lis = [k for k, (t, _) in synapse_li.items() if t == neuron_key]
        if len(lis) > 2:
            raise ExportError(f"NIR node {neuron_key!r} has {len(lis)} synaptic LI inputs; Synweave neurons have "
                              "two receptors (excitatory, inhibitory)")
        free = [r for r in ("exc", "inh") if r not in {synapse_li[k][1] for k in lis}]
        for k in lis:
            if synapse_li[k][1] not in ("exc", "inh"):
                synapse_li[k] = (neuron_key, free.pop(0))

    def restored(node, type_id: str):
        """Parameters from Synweave metadata when it describes a node of the same type."""
        if _meta(node, "synweave_type") == type_id and _meta(node, "synweave_params"):
            return json.loads(_meta(node, "synweave_params"))
        return {}

    def add(key: str, type_id: str, params: dict, node=None):
        label = _meta(node, "synweave_label", key) if node is not None else key
        nid = graph.new_node_id(type_id)
        made = graph.add_node(type_id, graph.unique_label(label), node_id=nid)
        for k, v in params.items():
            if k in made.params:
                graph.set_param(nid, k, v)
        if node is not None and _meta(node, "synweave_position"):
            graph.move({nid: tuple(json.loads(_meta(node, "synweave_position")))})
        ids[key] = nid
        return made

    # inputs
    for key, kind in kinds.items():
        if kind != "Input":
            continue
        node = g.nodes[key]
        n = _size(node)
        old = restored(node, _meta(node, "synweave_type", ""))
        type_id = _meta(node, "synweave_type", "input.spike_train")
        if not old:
            type_id = "input.spike_train"
            report.converted(key, f"Input of {n} channels -> spike-train source with no spikes yet (give it "
                                  "times and indices, or a file)")
        else:
            report.note(key, f"restored as {type_id} from Synweave metadata")
        add(key, type_id, {**old, "n": n} if "n" in old or type_id == "input.spike_train" else old, node)
    # neurons
    for key, kind in kinds.items():
        if kind not in NEURON_KINDS:
            continue
        node = g.nodes[key]
        params = restored(node, _meta(node, "synweave_type", "neuron.lif"))
        type_id = "neuron.lif" if _meta(node, "synweave_type") != "neuron.alif" else "neuron.alif"
        e_l = float(np.asarray(node.metadata["E_L_mV"])) if "E_L_mV" in (node.metadata or {}) else \
            float(params.get("E_L", 0.0))
        n = _size(node)
        params["n"] = n
        lis = [k for k, (t, _) in synapse_li.items() if t == key]
        thr = _uniform(node.v_threshold, "v_threshold", key, report)
        reset = _uniform(node.v_reset, "v_reset", key, report) if node.v_reset is not None else 0.0
        params.update(E_L=e_l, V_th=thr + e_l, V_reset=reset + e_l)
        if kind == "LIF":
            tau = _uniform(node.tau, "tau", key, report)
            r = _uniform(node.r, "r", key, report)
            leak = _uniform(node.v_leak, "v_leak", key, report)
            if leak != 0:
                report.converted(key, f"v_leak = {leak:g}: potentials shifted so that E_L = {e_l + leak:g} mV")
                params.update(E_L=e_l + leak)
            params["tau_m"] = tau * 1000.0
            if lis:  # current input from synaptic leaky integrators
                params.update(synapse="exponential", R=r)
                for li_key in lis:
                    li = g.nodes[li_key]
                    rec = synapse_li[li_key][1]
                    tau_s = _uniform(li.tau, "tau", li_key, report)
                    r_s = _uniform(li.r, "r", li_key, report)
                    params[f"tau_syn_{rec}"] = tau_s * 1000.0
                    # a spike of weight w moves the synaptic current by w r/tau (dirac) or w r dt/tau (step)
                    scale[li_key] = r_s / tau_s * (dt_s if spikes == "step" else 1.0)
            else:
                params["synapse"] = "delta"
                scale[key] = r / tau * (dt_s if spikes == "step" else 1.0)
        elif kind == "CubaLIF":
            tau_m = _uniform(node.tau_mem, "tau_mem", key, report)
            tau_s = _uniform(node.tau_syn, "tau_syn", key, report)
            r = _uniform(node.r, "r", key, report)
            w_in = _uniform(node.w_in, "w_in", key, report)
            leak = _uniform(node.v_leak, "v_leak", key, report)
            if leak != 0:
                params.update(E_L=e_l + leak)
                report.converted(key, f"v_leak = {leak:g}: potentials shifted so that E_L = {e_l + leak:g} mV")
            # I jumps by w (Synweave) ; V sees R I: R = r w_in / tau_syn (dirac) or r w_in dt / tau_syn (step)
            params.update(synapse="exponential", tau_m=tau_m * 1000.0, tau_syn_exc=tau_s * 1000.0,
                          tau_syn_inh=tau_s * 1000.0,
                          R=r * w_in / tau_s * (dt_s if spikes == "step" else 1.0))
            scale[key] = 1.0
        else:  # IF: no leak
            r = _uniform(node.r, "r", key, report)
            params.update(synapse="delta", tau_m=1e5)
            scale[key] = r
            report.converted(key, "IF (no leak) imported as a LIF with tau_m = 100 s (the longest allowed)")
        if not restored(node, _meta(node, "synweave_type", "")):
            params.setdefault("t_ref", 0.0)
        add(key, type_id, params, node)
    for key in synapse_li:
        scale.setdefault(key, 1.0)
    # projections: one per weight node and target; the Delay groups of one exported projection merge back
    conn_dir = out.parent
    conn_dir.mkdir(parents=True, exist_ok=True)
    groups: dict[tuple[str, str], dict] = {}
    for key, kind in kinds.items():
        if kind not in WEIGHT_KINDS:
            continue
        node = g.nodes[key]
        sources = pred[key]
        if len(sources) != 1:
            raise ExportError(f"NIR node {key!r} ({kind}) has {len(sources)} inputs; Synweave projections have one")
        src = sources[0]
        delays_ms = np.full(node.weight.shape[1], dt_ms)
        if kinds[src] == "Delay":
            delays_ms = dt_ms + np.asarray(g.nodes[src].delay, np.float64).ravel() * 1000.0
            src = pred[src][0] if len(pred[src]) == 1 else None
        if src is None or src not in ids:
            raise ExportError(f"NIR node {key!r} ({kind}) must be fed by an Input or a neuron (optionally "
                              "through a Delay)")
        if kind == "Affine" and np.any(np.asarray(node.bias) != 0):
            report.dropped(key, "Affine bias (a constant input current); only the weights are imported")
        for target in succ[key]:
            if kinds[target] == "LI":
                post_key, receptor = synapse_li[target]
            elif kinds[target] in NEURON_KINDS:
                post_key, receptor = target, None
            else:
                raise ExportError(f"NIR node {key!r} feeds {target!r} ({kinds[target]}); weights must feed "
                                  "neurons or their synaptic LI")
            w = np.asarray(node.weight, np.float64) * scale[target]
            post_idx, pre_idx = np.nonzero(w)
            group = groups.setdefault((_meta(node, "synweave_node", key), target), dict(
                key=key, node=node, src=src, post=post_key, receptor=receptor, pre=[], post_idx=[], weight=[],
                delay=[]))
            group["pre"].append(pre_idx)
            group["post_idx"].append(post_idx)
            group["weight"].append(w[post_idx, pre_idx])
            group["delay"].append(np.round(delays_ms[pre_idx], 9))
    for (origin, target), grp in groups.items():
        node = grp["node"]
        arrays = {name: np.concatenate(grp[src_name]) for name, src_name in
                  (("pre", "pre"), ("post", "post_idx"), ("weight", "weight"), ("delay", "delay"))}
        receptor = grp["receptor"]
        if receptor is None:
            receptor = {"0": "exc", "1": "inh"}.get(_meta(node, "synweave_receptor", ""), "")
            if receptor not in ("exc", "inh"):
                receptor = "inh" if arrays["weight"].size and np.all(arrays["weight"] <= 0) else "exc"
        file_name = f"{safe_name(out.stem)}_{safe_name(origin)}_to_{safe_name(target)}.npz"

        def write(tmp, arrays=arrays):
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

        write_atomic(conn_dir / file_name, write)
        report.written.append(conn_dir / file_name)
        old = json.loads(_meta(node, "synweave_params")) if _meta(node, "synweave_params") else {}
        params = {k: v for k, v in old.items() if k in ("seed", "autapses")}
        params.update(connectivity="from_file", file=file_name, receptor_type="current",
                      receptor="excitatory" if receptor == "exc" else "inhibitory",
                      delay=float(arrays["delay"].min()) if arrays["delay"].size else dt_ms)
        made = add(f"{origin}->{target}", "synapse.projection", params, node)
        graph.connect(ids[grp["src"]], "spikes", made.id, "pre")
        graph.connect(made.id, "post", ids[grp["post"]], "input")
    # outputs -> spike monitors
    for key, kind in kinds.items():
        if kind != "Output":
            continue
        for src in pred[key]:
            src_id = ids.get(synapse_li.get(src, (src,))[0])
            if src_id is None:
                continue
            mon = graph.add_node("monitor.spikes", graph.unique_label(f"{graph.node(src_id).label} output"),
                                 node_id=graph.new_node_id("monitor.spikes"))
            graph.connect(src_id, "spikes", mon.id, "source")
            ids[key] = mon.id
    _layout(graph, keep=all(_meta(g.nodes[k], "synweave_position") for k in g.nodes
                            if kinds[k] in (*NEURON_KINDS, "Input")))
    return project, report


def _layout(graph, keep: bool) -> None:
    """Left-to-right columns by data flow (recurrent wires ignored), unless positions came with the file.

    Monitors created for Output nodes always go to a last column right of what they watch.
    """
    from engine.exporters.svg import node_geometry

    nodes = graph.nodes
    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    for e in graph.edges:
        g.add_edge(e.src, e.dst)
    if keep:
        # positions restored from metadata; only place nodes that have none (monitors)
        placed = [n for n in nodes.values() if n.position != (0.0, 0.0)]
        right = max((n.position[0] + node_geometry(n)[0] for n in placed), default=0.0) + 80.0
        y = min((n.position[1] for n in placed), default=0.0)
        moves = {}
        for nid, n in nodes.items():
            if n.position == (0.0, 0.0) and n.category.value == "Monitors":
                moves[nid] = (right, y)
                y += node_geometry(n)[1] + 40.0
        if moves:
            graph.move(moves)
        return
    dag = g.copy()
    while True:
        try:
            cycle = nx.find_cycle(dag)
        except nx.NetworkXNoCycle:
            break
        dag.remove_edge(*cycle[-1][:2])
    columns = [sorted(gen, key=list(nodes).index) for gen in nx.topological_generations(dag)]
    moves = {}
    for i, column in enumerate(columns):
        y = 0.0
        for nid in column:
            moves[nid] = (i * 300.0, y)
            y += node_geometry(nodes[nid])[1] + 40.0
    graph.move(moves)
