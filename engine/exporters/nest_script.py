"""A standalone, readable PyNEST script of a project (``export --format nest``).

The script builds the network with NEST's own connection rules where one matches (so it scales out
under ``mpirun -np N`` with an MPI-enabled NEST: every rank creates only its local connections),
records spikes with ``spike_recorder`` devices writing ASCII files (one per virtual process, the
MPI-safe way) and membrane traces with ``multimeter`` devices, and prints the spike count of its rank.

Mapping (units: NEST uses ms, mV, pA, pF, nS):

==========================  ==================================================================
Synweave                    NEST
==========================  ==================================================================
LIF, exponential synapses   ``iaf_psc_exp``, ``C_m = tau_m / R`` (ms / GOhm = pF)
LIF, delta synapses         ``iaf_psc_delta`` (weight = jump in mV)
adaptive LIF                ``aeif_psc_exp`` / ``aeif_psc_delta`` with ``Delta_T = 0`` (a_w, b_w,
                            tau_w); threshold adaptation is reported as not mapped
conductance LIF             ``iaf_cond_exp``, ``g_L = 1/R`` (nS), weights ``w g_L`` (nS; inhibitory
                            negative)
Izhikevich                  ``izhikevich`` (``consistent_integration`` off for the 2003 scheme)
Poisson source (n)          one ``poisson_generator`` -> n ``parrot_neuron`` (n independent trains,
                            each shared by all its targets, as in Synweave)
spike trains, data sets,    ``spike_generator`` per channel -> ``parrot_neuron``; the spikes are
event streams               encoded by Synweave and saved next to the script (``*_inputs.npz``)
currents                    ``dc_generator`` / ``step_current_generator`` / ``ac_generator`` /
                            ``noise_generator``
all_to_all, one_to_one,     ``all_to_all``, ``one_to_one``, ``pairwise_bernoulli``,
fixed_probability,          ``fixed_indegree``; weights / delays constant or ``nest.random``
fixed_indegree              distributions
distance, small world,      explicit lists drawn by Synweave with the project seed, saved next to the
from file                   script (``*_connections.npz``) and connected ``one_to_one``
spike / rate monitors       ``spike_recorder`` (ASCII files)
state monitors              ``multimeter`` (ASCII files)
==========================  ==================================================================

Synapses follow the table of :mod:`engine.exporters.nest_mapping`, shared with the NEST backend:
short-term plasticity -> ``tsodyks2_synapse``, pair STDP -> ``stdp_synapse`` /
``stdp_nn_symm_synapse``, triplet STDP -> ``stdp_triplet_synapse``, reward STDP ->
``stdp_dopamine_synapse`` with a ``volume_transmitter`` fed by the Reward node (listed rewards: a
``spike_generator`` replaying them; random rewards: a ``poisson_generator`` at the node's rate, drawn
by NEST). The final weights of plastic projections are written to ``<model>-rank<R>.csv``. What the
mapping refuses (other rules, tripartite and NALSM astrocytes, threshold adaptation), readouts and
weight / branching monitors are named in the report. Random streams differ from Synweave's (NEST
draws its own), so runs agree statistically, not spike for spike.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from engine.exporters import ExportReport, write_atomic
from engine.exporters.nest_mapping import (TRIPARTITE_REFUSAL, NotMapped, adaptive_lif, adaptive_lif_problem,
                                           synapse_mapping)

NEST_MODEL = {"neuron.lif": None, "neuron.alif": "aeif_psc_exp", "neuron.cobalif": "iaf_cond_exp",
              "neuron.izhikevich": "izhikevich"}
NOT_MAPPED = {
    "Plasticity": "plasticity rule: not mapped to a NEST synapse model (mapped: pair, triplet and reward STDP); "
                  "static synapses used",
    "modulator.tripartite_astrocyte": TRIPARTITE_REFUSAL + "; its synapses are plain Tsodyks-Markram synapses in "
                                                         "the script",
    "modulator.nalsm_astrocyte": "the NALSM astrocyte (a global plasticity controller) has no NEST counterpart",
    "Modulators": "modulator: drives no mapped rule",
    "Readouts": "readout: trained readouts have no NEST counterpart; use the spike files",
    "Training": "training phase: the script runs one plain simulation of the graph, not sample by sample",
}


def _ident(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "node"
    if base[0].isdigit():
        base = "n_" + base
    name, i = base, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def _num(x: float) -> str:
    return repr(float(x)) if not float(x).is_integer() else f"{float(x):.1f}"


def _neuron(node, dt: float, report: ExportReport, seed: int = 0) -> tuple[str, dict, list[str]]:
    """(NEST model, parameters, extra statements) of a population; statements use ``{var}``."""
    extra = []
    if node.type_id == "neuron.izhikevich":
        if node.is_heterogeneous():
            from engine.compiler import node_seed
            from nodes.neurons import IZHIKEVICH_RANDOM_PRESETS

            # the engine's r: numpy's generator on the same integer seed
            extra.append(f"r = np.random.default_rng({node_seed(seed, node, 'izhikevich_r')}).random({node.n})"
                         "  # r-dependent a, b, c, d (Izhikevich 2003)")
            for name, (k0, k1, k2) in zip("abcd", IZHIKEVICH_RANDOM_PRESETS[node.preset]):
                extra.append(f"{name}_r = np.broadcast_to({_num(k0)} + {_num(k1)} * r + {_num(k2)} * r ** 2, "
                             "r.shape).tolist()")
            extra.append("{var}.set(a=a_r, b=b_r, c=c_r, d=d_r, U_m=[-65.0 * x for x in b_r])")
            a, b, c, d = node.abcd(0.0)
        else:
            a, b, c, d = node.abcd()
        params = dict(a=a, b=b, c=c, d=d, I_e=node.I_e, V_th=30.0, V_m=-65.0, U_m=b * -65.0,
                      consistent_integration=node.scheme != "split_2003")
        if node.scheme == "split_2003" and dt != 1.0:
            report.note(node.label, "the 2003 split-step scheme is meant for dt = 1 ms")
        return "izhikevich", params, extra
    common = dict(E_L=node.E_L, V_th=node.V_th, V_reset=node.V_reset, t_ref=node.t_ref, I_e=node.I_e)
    if node.type_id == "neuron.cobalif":
        g_l = 1.0 / node.R  # nS
        params = dict(common, g_L=g_l, C_m=node.tau_m * g_l, E_ex=node.E_exc, E_in=node.E_inh,
                      tau_syn_ex=node.tau_exc, tau_syn_in=node.tau_inh)
        model = "iaf_cond_exp"
    elif node.type_id == "neuron.alif":
        model, aeif = adaptive_lif(lambda key: node.get(key), node.synapse == "delta")
        params = dict(common, **{k: float(v) for k, v in aeif.items()})
        if model == "aeif_psc_exp":
            params.update(tau_syn_ex=node.tau_syn_exc, tau_syn_in=node.tau_syn_inh)
        problem = adaptive_lif_problem(lambda key: node.get(key))
        if problem:
            report.dropped(node.label, problem + "; the script runs it without")
        report.converted(node.label, f"adaptive LIF -> NEST {model} with Delta_T = 0")
    elif node.synapse == "delta":
        params = dict(common, tau_m=node.tau_m, C_m=node.tau_m / node.R)
        model = "iaf_psc_delta"
    else:
        params = dict(common, tau_m=node.tau_m, C_m=node.tau_m / node.R, tau_syn_ex=node.tau_syn_exc,
                      tau_syn_in=node.tau_syn_inh)
        model = "iaf_psc_exp"
    if node.V_init == "uniform":
        extra.append(f"{{var}}.V_m = nest.random.uniform({_num(node.V_init_low)}, {_num(node.V_init_high)})")
    else:
        params["V_m"] = node.E_L
    return model, params, extra


def _distribution(kind: str, mean: float, low: float, high: float, std: float, sign: float = 1.0) -> str:
    """A NEST parameter expression for a constant / uniform / normal / lognormal value."""
    if kind == "constant":
        return _num(sign * mean)
    if kind == "uniform":
        a, b = sorted((sign * low, sign * high))
        return f"nest.random.uniform({_num(a)}, {_num(b)})"
    if kind == "normal":
        return f"nest.random.normal({_num(sign * mean)}, {_num(std)})"
    sigma2 = math.log1p((std / mean) ** 2)
    mu = math.log(mean) - 0.5 * sigma2
    expr = f"nest.random.lognormal({_num(mu)}, {_num(math.sqrt(sigma2))})"
    return expr if sign > 0 else f"-{expr}"


def _header(project, dt: float, duration: float, threads: int, script_name: str) -> list[str]:
    doc = project.metadata.get("description", "")
    return [
        "#!/usr/bin/env python3",
        f'"""{project.name} - a PyNEST script exported by Synweave.',
        "",
        *([doc, ""] if doc else []),
        "Run it with NEST 3.6 or newer:",
        "",
        f"    python {script_name} [--threads N] [--duration MS] [--seed S] [--out FOLDER]",
        f"    mpirun -np 4 python {script_name} --threads 2      (an MPI-enabled NEST)",
        "",
        "Spikes go to ASCII files FOLDER/<recorder label>-<node id>-<virtual process>.dat with the",
        "columns `sender time_ms`; senders are NEST node ids, the first neuron of a population is",
        "printed at the start (neuron index = sender - first id). Membrane traces go to multimeter",
        "files the same way. On a shared or oversubscribed machine set OMP_WAIT_POLICY=PASSIVE: NEST's",
        "threads otherwise spin while they wait for each other.",
        '"""',
        "",
        "import argparse",
        "import os",
        "",
        "import numpy as np",
        "import nest",
        "",
        f"DT = {_num(dt)}  # ms, simulation resolution",
        f"DURATION = {_num(duration)}  # ms",
        f"SEED = {int(project.settings.seed)}",
        f"HERE = os.path.dirname(os.path.abspath(__file__))",
        "",
        "parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])",
        f"parser.add_argument('--threads', type=int, default={int(threads)}, help='local threads per MPI process')",
        "parser.add_argument('--duration', type=float, default=DURATION, help='model time in ms')",
        "parser.add_argument('--seed', type=int, default=SEED, help='NEST random seed')",
        f"parser.add_argument('--out', default=os.path.join(HERE, {Path(script_name).stem + '_spikes'!r}),",
        "                    help='folder for the spike and state files')",
        "args = parser.parse_args()",
        "os.makedirs(args.out, exist_ok=True)",
        "",
        "nest.ResetKernel()",
        "try:",
        "    nest.verbosity = nest.VerbosityLevel.ERROR  # NEST 3.10 and newer",
        "except AttributeError:",
        "    nest.set_verbosity('M_ERROR')",
        "nest.SetKernelStatus({'resolution': DT, 'rng_seed': args.seed, 'local_num_threads': args.threads,",
        "                      'data_path': args.out, 'overwrite_files': True})",
        "",
    ]


def export_nest_script(project, out: Path, duration_ms: float | None = None, threads: int = 1,
                       **_ignored) -> ExportReport:
    """Write a PyNEST script of ``project`` to ``out`` (.py), plus ``*_inputs.npz`` /
    ``*_connections.npz`` next to it when explicit spikes or connection lists are needed."""
    from engine.compiler import compile_graph, projection_plan_name

    out = Path(out)
    report = ExportReport("NEST")
    plan = compile_graph(project)
    dt = plan.dt
    duration = float(duration_ms or project.settings.duration)
    graph = project.graph
    taken: set[str] = {"nest", "np", "os", "args", "parser", "inputs", "connections", "DT", "DURATION",
                       "SEED", "HERE", "argparse", "recorders", "n_local", "r", "a_r", "b_r", "c_r", "d_r"}
    var: dict[str, str] = {}
    lines = _header(project, dt, duration, threads, out.name)
    inputs: dict[str, np.ndarray] = {}
    connections: dict[str, np.ndarray] = {}
    sources_by_name = {s.name: s for s in plan.sources}
    synapses = _SynapseModels(graph, plan, taken, report)  # NEST synapse models, volume transmitters

    lines.append("# --- neuron populations " + "-" * 70)
    for node in graph.nodes.values():
        if node.category.value != "Neurons":
            continue
        name = var[node.id] = _ident(node.label, taken)
        model, params, extra = _neuron(node, dt, report, int(project.settings.seed))
        text = ", ".join(f"{k!r}: {_num(v) if isinstance(v, float) else repr(v)}" for k, v in params.items())
        lines.append(f"# {node.label}: {node.title}, {node.n} neurons")
        lines.append(f"{name} = nest.Create({model!r}, {node.n}, params={{{text}}})")
        lines += [e.format(var=name) for e in extra]
        if getattr(node, "layout", "none") != "none":
            report.note(node.label, f"spatial layout '{node.layout}': only used through explicit connection lists")
    lines.append("")
    lines.append("# --- inputs " + "-" * 82)
    for node in graph.nodes.values():
        if node.category.value != "Inputs":
            continue
        if node.type_id == "input.current":
            _current_source(node, graph, var, taken, lines, report)
            continue
        name = var[node.id] = _ident(node.label, taken)
        n = node.size()
        lines.append(f"# {node.label}: {node.title}, {n} channels relayed by parrot neurons")
        lines.append(f"{name} = nest.Create('parrot_neuron', {n})")
        if node.type_id == "input.poisson":
            start, stop = node.start, node.stop
            gen_params = {"rate": node.rate}
            if start:
                gen_params["start"] = start
            if stop:
                gen_params["stop"] = stop
            text = ", ".join(f"{k!r}: {_num(v)}" for k, v in gen_params.items())
            lines.append(f"{name}_generator = nest.Create('poisson_generator', params={{{text}}})")
            lines.append(f"nest.Connect({name}_generator, {name}, 'all_to_all')"
                         "  # one independent train per parrot")
            taken.add(f"{name}_generator")
        else:
            src = sources_by_name[node.id]
            # a spike emitted in step k leaves the generator at (k + 1) dt: NEST cannot emit at t = 0
            inputs[f"{name}_steps"] = np.asarray(src.steps, np.int64)
            inputs[f"{name}_indices"] = np.asarray(src.indices, np.int64)
            lines += [
                f"{name}_generator = nest.Create('spike_generator', {n})",
                f"steps, channels = inputs[{name + '_steps'!r}], inputs[{name + '_indices'!r}]",
                f"{name}_generator.set([{{'spike_times': ((steps[channels == i] + 1) * DT).tolist()}} "
                f"for i in range({n})])",
                f"nest.Connect({name}_generator, {name}, 'one_to_one')",
            ]
            taken.add(f"{name}_generator")
            report.converted(node.label, f"{node.title}: its {src.steps.size:,} spikes, encoded by Synweave, are "
                                         f"stored in {out.stem}_inputs.npz and replayed by spike generators")
    lines.append("")
    lines.append("# --- projections " + "-" * 77)
    for node in graph.nodes.values():
        if node.type_id != "synapse.projection":
            continue
        ups = graph.upstream(node.id, "pre")
        if not ups or ups[0][0].id not in var:
            continue
        pre = ups[0][0]
        for post, _ in graph.downstream(node.id, "post"):
            if post.id not in var:
                continue
            _projection(node, pre, post, plan, projection_plan_name(node, post), var, lines, connections,
                        out.stem, dt, report, [r for r, _ in graph.upstream(node.id, "rule")], synapses)
    lines.append("")
    lines.append("# --- recording " + "-" * 79)
    lines.append("recorders = {}")
    for node in graph.nodes.values():
        cat = node.category.value
        if node.type_id in ("monitor.spikes", "monitor.rate", "monitor.state"):
            _monitor(node, graph, var, plan, lines, report)
        elif node.category.value == "Monitors":
            report.dropped(node.label, f"{node.title}: not recorded by the NEST script yet")
        elif (node.id not in synapses.mapped and (node.type_id in NOT_MAPPED or cat in NOT_MAPPED)
              and not report.about(node.label)):  # one reason per node: the specific one when given
            report.dropped(node.label, NOT_MAPPED.get(node.type_id, NOT_MAPPED.get(cat)))
    plastic = sorted(synapses.plastic)
    lines += [
        "",
        "# --- run " + "-" * 85,
        "nest.Simulate(args.duration)",
        *(f"np.savetxt(os.path.join(args.out, f'{m}-rank{{nest.Rank()}}.csv'), np.column_stack([np.atleast_1d("
          f"nest.GetConnections(synapse_model={m!r}).get(k)) for k in ('source', 'target', 'weight')]), "
          f"delimiter=',', header='source,target,weight', comments='')  # final plastic weights"
          for m in plastic),
        "n_local = {label: int(np.sum(rec.get('n_events'))) for label, rec in recorders.items()}",
        "print(f'rank {nest.Rank()} of {nest.NumProcesses()}: ' + ', '.join(",
        "      f'{label} {count} spikes' for label, count in n_local.items()) + f', files in {args.out}')",
        "",
    ]
    if inputs:
        path = out.with_name(out.stem + "_inputs.npz")
        _save_npz(path, inputs)
        report.written.append(path)
        lines.insert(lines.index("# --- neuron populations " + "-" * 70),
                     f"inputs = np.load(os.path.join(HERE, {path.name!r}))  # spikes encoded by Synweave")
    if connections:
        path = out.with_name(out.stem + "_connections.npz")
        _save_npz(path, connections)
        report.written.append(path)
        lines.insert(lines.index("# --- neuron populations " + "-" * 70),
                     f"connections = np.load(os.path.join(HERE, {path.name!r}))  # lists drawn by Synweave")
    text = "\n".join(lines)
    compile(text, str(out), "exec")  # a generated syntax error is our bug: fail here, not on the cluster
    write_atomic(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    report.written.insert(0, out)
    report.note("script", f"dt = {dt:g} ms, {duration:g} ms; NEST draws its own random numbers, so it "
                          "agrees with Synweave statistically, not spike for spike")
    return report


def _save_npz(path: Path, arrays: dict) -> None:
    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    write_atomic(path, write)


def _current_source(node, graph, var, taken, lines, report) -> None:
    targets = [t for t, _ in graph.downstream(node.id, "current") if t.id in var]
    if not targets:
        return
    name = var[node.id] = _ident(node.label, taken)
    w = node.waveform
    if w == "dc":
        lines.append(f"{name} = nest.Create('dc_generator', params={{'amplitude': {_num(node.amplitude)}}})")
    elif w == "step":
        lines.append(f"{name} = nest.Create('step_current_generator', params={{'amplitude_times': "
                     f"[{_num(max(node.onset, 0.1))}, {_num(max(node.offset, 0.2))}], 'amplitude_values': "
                     f"[{_num(node.amplitude)}, 0.0]}})")
    elif w == "sine":
        lines.append(f"{name} = nest.Create('ac_generator', params={{'amplitude': {_num(node.amplitude)}, "
                     f"'offset': {_num(node.offset_current)}, 'frequency': {_num(node.frequency)}, "
                     f"'phase': {_num(node.phase)}}})")
    else:
        lines.append(f"{name} = nest.Create('noise_generator', params={{'mean': {_num(node.offset_current)}, "
                     f"'std': {_num(node.amplitude)}, 'dt': DT}})  # a new value per neuron and step")
        report.converted(node.label, "noise current: NEST's noise_generator draws its own stream")
    for t in targets:
        lines.append(f"nest.Connect({name}, {var[t.id]})")


def _projection(node, pre, post, plan, plan_name, var, lines, connections, stem, dt, report, rules,
                synapses) -> None:
    src, dst = var[pre.id], var[post.id]
    conductance = post.type_id == "neuron.cobalif"
    sign = -1.0 if node.receptor == "inhibitory" else 1.0
    scale = (1.0 / post.R) if conductance else 1.0  # Synweave conductances are in units of g_L
    rule = node.connectivity
    lines.append(f"# {node.label}: {pre.label} -> {post.label}, {rule.replace('_', ' ')}, {node.receptor}")
    model = synapses.model(node, rules, post, dst, scale, plan_name, lines)
    conn = {"all_to_all": "{'rule': 'all_to_all', 'allow_autapses': %s}" % (node.autapses or pre.id != post.id),
            "fixed_probability": "{'rule': 'pairwise_bernoulli', 'p': %s, 'allow_autapses': %s}" % (
                _num(node.p), node.autapses or pre.id != post.id),
            "fixed_indegree": "{'rule': 'fixed_indegree', 'indegree': %d, 'allow_autapses': %s}" % (
                node.indegree, node.autapses or pre.id != post.id),
            "one_to_one": "'one_to_one'"}.get(rule)
    if conn is not None and rule == "one_to_one" and pre.size() != post.size():
        m = min(pre.size(), post.size())
        src, dst = f"{src}[:{m}]", f"{dst}[:{m}]"
    if conn is not None:
        if node.weight_init == "constant":
            weight = _num(sign * abs(node.weight) * scale)
        else:
            weight = _distribution(node.weight_init, abs(node.weight) * scale, abs(node.weight_low) * scale,
                                   abs(node.weight_high) * scale, node.weight_std * scale, sign)
            if node.weight_init == "normal":
                report.converted(node.label, "normal weights: NEST draws N(±mean, std) without Synweave's "
                                             "|w| folding")
        if node.delay_init == "constant":
            delay = _num(max(1, round(node.delay / dt)) * dt)
        else:
            delay = _distribution(node.delay_init, node.delay, node.delay_low, node.delay_high, node.delay_std)
            report.converted(node.label, "random delays are rounded to the time grid by NEST (at least one dt)")
        lines.append(f"nest.Connect({src}, {dst}, {conn},")
        lines.append(f"             {{'synapse_model': {model!r}, 'weight': {weight}, 'delay': {delay}}})")
        return
    # distance, small world, from file: the exact lists Synweave draws with the project seed
    prj = next(p for p in plan.projections if p.name == plan_name)
    key = re.sub(r"[^A-Za-z0-9_]+", "_", plan_name)
    weights = prj.weights.astype(np.float64) * scale
    if conductance and node.receptor == "inhibitory":
        weights = -weights
    connections[f"{key}_pre"] = prj.pre_indices().astype(np.int64)
    connections[f"{key}_post"] = prj.indices.astype(np.int64)
    connections[f"{key}_weight"] = weights
    connections[f"{key}_delay"] = prj.delays.astype(np.float64) * dt
    lines += [
        f"pre, post = connections[{key + '_pre'!r}], connections[{key + '_post'!r}]",
        f"nest.Connect({src}[0].global_id + pre, {dst}[0].global_id + post, 'one_to_one',  # node id arrays",
        f"             {{'synapse_model': {model!r}, 'weight': connections[{key + '_weight'!r}],",
        f"              'delay': connections[{key + '_delay'!r}]}})",
    ]
    report.converted(node.label, f"{rule.replace('_', ' ')}: {prj.n_synapses:,} synapses drawn by Synweave, stored "
                                 f"in {stem}_connections.npz")


class _SynapseModels:
    """The NEST synapse model of each projection, from the shared table
    (:func:`engine.exporters.nest_mapping.synapse_mapping`), written into the script; the volume
    transmitters of reward signals are created once, where first needed."""

    def __init__(self, graph, plan, taken: set, report: ExportReport):
        self.graph, self.plan, self.taken, self.report = graph, plan, taken, report
        self.rewards = {m.name: m for m in plan.modulators}
        self.mapped: set[str] = set()  # rule and reward nodes the script carries
        self.plastic: set[str] = set()  # NEST models whose weights learn
        self.transmitters: dict[str, str] = {}
        self.post_params: dict[str, dict] = {}

    def model(self, node, rules, post, post_var, scale, plan_name, lines) -> str:
        """NEST model name for the synapses of projection node ``node`` onto ``post`` (lines added)."""
        prj = next(p for p in self.plan.projections if p.name == plan_name)
        who = rules[0].label if rules else node.label
        try:
            mapping = synapse_mapping(prj, self.plan.population(prj.post), scale, self.rewards)
        except NotMapped as exc:
            self.report.dropped(who, f"{exc}; static synapses used")
            return "static_synapse"
        for key, value in mapping.post_params.items():
            if self.post_params.setdefault(post.id, {}).setdefault(key, value) != value:
                self.report.dropped(who, f"two plasticity rules with different {key} onto {post.label} (NEST keeps "
                                         f"{key} in the postsynaptic neuron); static synapses used")
                return "static_synapse"
        if mapping.base == "static_synapse":
            return mapping.base
        key = re.sub(r"[^A-Za-z0-9_]+", "_", plan_name)
        name = ("stdp_" if mapping.plastic else "stp_") + key
        text = ", ".join(f"{k!r}: {_num(v)}" for k, v in mapping.params.items())
        if mapping.reward is not None:
            text += f", 'volume_transmitter': {self._transmitter(mapping.reward, lines)}"
        lines.append(f"nest.CopyModel({mapping.base!r}, {name!r}, {{{text}}})  # {who}")
        if mapping.post_params:
            post_text = ", ".join(f"{k!r}: {_num(v)}" for k, v in mapping.post_params.items())
            lines.append(f"{post_var}.set({{{post_text}}})  # NEST keeps the post traces in the neuron")
        if mapping.plastic:
            self.plastic.add(name)
        self.mapped.update(r.id for r in rules)
        self.report.converted(who, mapping.summary)
        for note in mapping.notes:
            self.report.note(who, note)
        return name

    def _transmitter(self, reward_id: str, lines) -> str:
        """The volume transmitter of a Reward node: its rewards as spikes, relayed by a parrot (NEST
        connects no device to a volume transmitter) to arrive at the reward's step."""
        if reward_id in self.transmitters:
            return self.transmitters[reward_id]
        node = self.graph.node(reward_id)
        name = _ident(node.label, self.taken)
        self.taken.update({f"{name}_source", f"{name}_relay"})
        lines.append(f"# {node.label}: {node.title}, one volume-transmitter spike per reward")
        if node.mode == "random":
            lines.append(f"{name}_source = nest.Create('poisson_generator', params={{'rate': {_num(node.rate)}}})"
                         "  # NEST draws the reward times")
            self.report.converted(node.label, f"random rewards: NEST draws its own reward times at {node.rate:g} Hz")
        else:
            steps = np.asarray(self.rewards[reward_id].steps, np.int64)
            times, counts = np.unique(np.maximum(steps - 2, 1), return_counts=True)
            lines.append(f"{name}_source = nest.Create('spike_generator', params={{"
                         f"'spike_times': [{', '.join(f'{int(t)} * DT' for t in times)}], "
                         f"'spike_multiplicities': {counts.tolist()}}})")
        lines += [f"{name}_relay = nest.Create('parrot_neuron')",
                  f"{name} = nest.Create('volume_transmitter')",
                  f"nest.Connect({name}_source, {name}_relay, syn_spec={{'delay': DT}})",
                  f"nest.Connect({name}_relay, {name}, syn_spec={{'delay': DT}})"]
        self.mapped.add(reward_id)
        self.transmitters[reward_id] = name
        return name


def _monitor(node, graph, var, plan, lines, report) -> None:
    port = "population" if node.type_id == "monitor.state" else "source"
    ups = graph.upstream(node.id, port)
    if not ups or ups[0][0].id not in var:
        report.dropped(node.label, "watches a node the script does not build")
        return
    target = ups[0][0]
    tvar = var[target.id]
    label = re.sub(r"[^A-Za-z0-9_]+", "_", node.label).strip("_") or node.id
    if node.type_id == "monitor.state":
        nest_var = {"V": "V_m", "I_exc": "I_syn_ex", "I_inh": "I_syn_in", "g_exc": "g_ex", "g_inh": "g_in",
                    "u": "U_m", "w": "w"}.get(node.variable)
        if nest_var is None:
            report.dropped(node.label, f"state variable {node.variable!r} has no NEST recordable here")
            return
        idx = ", ".join(str(i) for i in node.indices)
        lines += [
            f"{label}_meter = nest.Create('multimeter', params={{'record_from': [{nest_var!r}], 'interval': "
            f"{_num(node.every * plan.dt)}, 'record_to': 'ascii', 'label': {label!r}}})",
            f"nest.Connect({label}_meter, {tvar}[[{idx}]])",
        ]
        return
    mon = next((m for m in plan.monitors if m.name == node.id), None)
    lines.append(f"recorders[{label!r}] = nest.Create('spike_recorder', params={{'record_to': 'ascii', "
                 f"'label': {label!r}}})")
    if mon is not None and mon.indices is not None:
        idx = ", ".join(str(int(i)) for i in mon.indices)
        lines.append(f"nest.Connect({tvar}[[{idx}]], recorders[{label!r}])")
    else:
        lines.append(f"nest.Connect({tvar}, recorders[{label!r}])")
    lines.append("if nest.Rank() == 0:")
    lines.append(f"    print(f'{label}: recording {target.label}, neuron index = sender - {{{tvar}[0].global_id}}')")
    if node.type_id == "monitor.rate":
        report.converted(node.label, "rate monitor: recorded as spikes (bin them to get the rate)")
