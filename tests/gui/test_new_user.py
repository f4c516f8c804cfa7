"""What a new user meets (issue 9): relative data files, wheel edits, first start, silent
networks, status text, inspector width, node faces, crash recovery."""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtWidgets import QApplication

from engine.compiler import compile_graph
from tests.gui.conftest import example_path

ROOT = Path(__file__).resolve().parents[2]


def _wait_run(qtbot, win, timeout=120_000):
    qtbot.waitUntil(lambda: not win.run.running, timeout=timeout)
    QApplication.processEvents()


# -- 1. relative file paths ------------------------------------------------------------------
def test_example_with_a_relative_data_file_runs_and_deploys_from_the_gui(make_window, qtbot, dialogs):
    win = make_window()
    assert win.open_example(example_path("neurocorex_digits"))
    win.doc.set_setting("duration", 30.0)
    assert win.start_run()
    _wait_run(qtbot, win)
    assert win.run.error is None and not dialogs.errors()
    assert win.progress_bar.format().startswith("Finished")
    # the deploy path compiles what the hardware panel is given
    assert compile_graph(win.hardware._project_getter()).projections


def test_opened_project_resolves_files_next_to_it(make_window, qtbot, dialogs, tmp_path):
    src = example_path("neurocorex_digits")
    shutil.copy(src, tmp_path / src.name)
    shutil.copy(src.parent / "neurocorex_digits_weights.npz", tmp_path)
    win = make_window()
    assert win.open_path(tmp_path / src.name)
    win.doc.set_setting("duration", 30.0)
    assert win.start_run()
    _wait_run(qtbot, win)
    assert win.run.error is None and not dialogs.errors()


# -- 2. the mouse wheel over the inspector ----------------------------------------------------
def _wheel(widget, steps=-1):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent

    centre = QPointF(widget.rect().center())
    event = QWheelEvent(centre, QPointF(widget.mapToGlobal(centre.toPoint())), QPoint(0, 0),
                        QPoint(0, 120 * steps), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)
    QApplication.processEvents()


def test_wheel_over_a_drop_down_scrolls_instead_of_editing(window, qtbot):
    nid = window.add_node_at_centre("synapse.projection")
    window.scene.select_nodes([nid])
    window.inspector_dock.setFocus()
    combo = window.inspector.editors["connectivity"].editor
    assert not combo.hasFocus()
    before = window.doc.graph.node(nid).connectivity
    window.doc.undo_stack.setClean()
    _wheel(combo)
    assert window.doc.graph.node(nid).connectivity == before == combo.currentText()
    assert not window.doc.modified
    # with focus (clicked or tabbed into) the wheel still chooses
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    combo.setFocus()
    qtbot.waitUntil(combo.hasFocus, timeout=5000)
    _wheel(combo)
    assert window.doc.graph.node(nid).connectivity != before


# -- 3. first start, second start --------------------------------------------------------------
def test_first_start_flag_survives_a_new_process(data_dir):
    import os
    import subprocess
    import sys

    from app import appdata

    assert appdata.is_first_start()
    appdata.mark_started()
    env = dict(os.environ, SYNWEAVE_DATA_DIR=str(data_dir))
    out = subprocess.run([sys.executable, "-c", "from app import appdata; print(appdata.is_first_start())"],
                         env=env, capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert out.stdout.strip() == "False", out.stderr


def test_second_start_reopens_the_last_project(qtbot, tmp_path):
    from app import appdata, main_window
    from engine import examples

    appdata.mark_started()
    saved = examples.cuba().save(tmp_path / "mine.swproj")
    appdata.add_recent_file(saved)
    wins = main_window.open_initial_windows()
    for w in wins:
        qtbot.addWidget(w)
    try:
        assert len(wins) == 1 and wins[0].doc.path == saved.resolve()
    finally:
        for w in wins:
            w.close()
    saved.unlink()  # a recent file that is gone: an empty canvas
    wins = main_window.open_initial_windows()
    for w in wins:
        qtbot.addWidget(w)
    try:
        assert len(wins) == 1 and len(wins[0].doc.graph) == 0 and wins[0].doc.path is None
    finally:
        for w in wins:
            w.close()


# -- 5. status text ---------------------------------------------------------------------------
def _small_project(monitor=True, duration=20.0):
    from engine.project import Project

    project = Project()
    project.settings.duration = duration
    g = project.graph
    src = g.add_node("input.poisson", n=20)
    prj = g.add_node("synapse.projection")
    pop = g.add_node("neuron.lif", n=20)
    g.connect(src.id, "spikes", prj.id, "pre")
    g.connect(prj.id, "post", pop.id, "input")
    if monitor:
        mon = g.add_node("monitor.spikes")
        g.connect(pop.id, "spikes", mon.id, "source")
    return project


def test_run_text_without_a_spike_monitor_and_after_new_or_open(make_window, qtbot, tmp_path):
    win = make_window(_small_project(monitor=False))
    assert win.start_run()
    _wait_run(qtbot, win)
    text = win.progress_bar.format()
    assert text.startswith("Finished") and "no spike monitor" in text and "0 spikes" not in text
    win.file_new()
    assert win.progress_bar.format() == "Ready" and win.progress_bar.value() == 0
    win.set_project(_small_project())
    assert win.start_run()
    _wait_run(qtbot, win)
    assert win.progress_bar.format().startswith("Finished") and " spikes" in win.progress_bar.format()
    path = _small_project().save(tmp_path / "other.swproj")
    assert win.open_path(path)
    assert win.progress_bar.format() == "Ready"


def test_paused_run_says_paused_without_time_left(make_window, qtbot):
    win = make_window(_small_project(duration=600_000.0))
    assert win.start_run()
    qtbot.waitUntil(lambda: win.run.chunk_count >= 3, timeout=120_000)
    win.toggle_pause()
    QApplication.processEvents()
    text = win.progress_bar.format()
    assert text.startswith("Paused") and "left" not in text and "Running" not in text
    win.toggle_pause()
    win.stop_run()
    _wait_run(qtbot, win)


def test_run_refuses_an_invalid_dt_and_points_at_the_field(window, qtbot):
    window.set_project(_small_project())
    field = window.setting_fields["dt"]
    field.edit.setText("0.1x")
    field.edit.editingFinished.emit()   # typed, then focus moved elsewhere
    assert not window.start_run()
    assert not window.run.running
    assert "dt" in window.progress_bar.format() and "dt" in window.statusBar().currentMessage()
    assert field.edit.property("invalid") and window.doc.project.settings.dt == 0.1
    field.edit.setText("0.5")
    assert window.start_run()
    _wait_run(qtbot, window)
    assert window.doc.project.settings.dt == 0.5


# -- 6. the inspector fits its dock -------------------------------------------------------------
def test_inspector_is_not_cut_off_for_any_node_type(window, qtbot):
    import nodes
    from PySide6.QtCore import QPoint

    ins = window.inspector
    for cls in nodes.all_node_types():
        nid = window.add_node_at_centre(cls.type_id)
        window.scene.select_nodes([nid])
        QApplication.processEvents()
        width = ins.viewport().width()
        assert ins.widget().minimumSizeHint().width() <= width, cls.type_id
        assert ins.widget().width() <= width, cls.type_id
        for name, editor in ins.editors.items():
            if editor.isHidden():
                continue
            right = editor.mapTo(ins.viewport(), QPoint(editor.width(), 0)).x()
            assert right <= width, (cls.type_id, name, right, width)


# -- 7. node faces show what is simulated ---------------------------------------------------------
def test_projection_face_shows_the_weight_distribution(window):
    from engine.graph import Compound, SetParam

    nid = window.add_node_at_centre("synapse.projection")
    item = window.scene.node_items[nid]
    assert "weight 300 w.u." in item.summary
    window.doc.apply(Compound([SetParam(nid, "weight_init", "uniform"), SetParam(nid, "weight_low", 0.0),
                               SetParam(nid, "weight_high", 0.01)]), "uniform weights")
    assert "weight U(0, 0.01) w.u." in item.summary
    assert not any(line.startswith("weight 300") for line in item.summary)
    window.doc.apply(SetParam(nid, "receptor", "inhibitory"))
    assert "weight −|U(0, 0.01)| w.u." in item.summary
    window.doc.undo_stack.undo()
    window.doc.undo_stack.undo()
    assert "weight 300 w.u." in item.summary


def test_song_stdp_example_face_shows_uniform_weights(make_window):
    win = make_window()
    win.open_example(example_path("song_stdp"))
    from tests.gui.conftest import node_by_label

    item = win.scene.node_items[node_by_label(win, "Plastic inputs")]
    assert "weight U(0, 0.01) w.u." in item.summary


# -- 8. crash recovery ----------------------------------------------------------------------------
def test_recovery_copy_follows_each_edit_and_undo(window, qtbot):
    saver = window.autosaver
    saver.timer.setInterval(50)
    assert not saver.path.exists()
    window.scene.add_node("neuron.lif", (0, 0))
    qtbot.waitUntil(saver.path.exists, timeout=5000)  # no 30-s wait
    first = saver.writes
    window.doc.set_setting("duration", 123.0)
    qtbot.waitUntil(lambda: saver.writes > first, timeout=5000)
    assert '"duration": 123.0' in saver.path.read_text()
    window.doc.undo_stack.undo()
    window.doc.undo_stack.undo()   # back to the saved state
    assert not saver.path.exists()  # at once, not at the next tick
    window.doc.undo_stack.redo()
    qtbot.waitUntil(saver.path.exists, timeout=5000)


KILLED = """
import os, sys, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
sys.path.insert(0, {root!r})
import app
from PySide6.QtWidgets import QApplication
qa = QApplication([])
from app.main_window import MainWindow
win = MainWindow()
win.scene.add_node("neuron.lif", (0, 0))
deadline = time.monotonic() + 20
while not win.autosaver.path.exists() and time.monotonic() < deadline:
    qa.processEvents()
    time.sleep(0.02)
print("written" if win.autosaver.path.exists() else "nothing", flush=True)
time.sleep(120)
"""


def test_restart_right_after_a_kill_offers_the_work(data_dir):
    import os
    import signal
    import subprocess
    import sys

    from app import recovery

    env = dict(os.environ, SYNWEAVE_DATA_DIR=str(data_dir))
    child = subprocess.Popen([sys.executable, "-c", KILLED.format(root=str(ROOT))], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert child.stdout.readline().strip() == "written"
        os.kill(child.pid, signal.SIGKILL)
        # not reaped yet: the dead process is a zombie whose pid still "exists"
        deadline = __import__("time").monotonic() + 10
        entries = recovery.orphaned_files()
        while not entries and __import__("time").monotonic() < deadline:
            entries = recovery.orphaned_files()
        assert len(entries) == 1 and entries[0].path.name.startswith(f"{child.pid}-")
        entries[0].discard()
        recovery.orphaned_files()  # the dead owner's lock goes with its last file
        assert not (data_dir / "recovery" / f"{child.pid}.lock").exists()
    finally:
        child.kill()
        child.wait(30)


# -- run-time inputs in the GUI ---------------------------------------------------------------------
def test_gui_refuses_a_network_that_does_not_fit_in_memory(make_window, dialogs):
    project = _small_project()
    g = project.graph
    g.node("poisson_1").n = 99_999_999
    g.node("lif_1").n = 99_999_999
    g.node("projection_1").connectivity = "all_to_all"
    win = make_window(project)
    assert not win.start_run() and not win.run.running
    (error,) = dialogs.errors()
    assert "not enough memory" in error[3] and "PiB" in error[3] and "available" in error[3]
    assert win.progress_bar.format() == "Not enough memory"


def test_problems_panel_checks_data_files_next_to_the_project(make_window, tmp_path):
    import os

    project = _small_project()
    g = project.graph
    g.node("projection_1").connectivity = "from_file"
    g.node("projection_1").file = "pipe.npz"
    os.mkfifo(tmp_path / "pipe.npz")
    path = project.save(tmp_path / "net.swproj")
    win = make_window()
    assert win.open_path(path)
    win.problems.refresh()
    errors = [p for p in win.problems.problems if p.severity == "error"]
    assert len(errors) == 1 and "FIFO" in errors[0].message and errors[0].field == "file"
    assert not win.start_run()


# -- 9. polish ---------------------------------------------------------------------------------------
def test_spikes_dropped_on_a_population_offer_a_projection(window, dialogs):
    from engine.graph import Edge
    from tests.gui.conftest import drag, port_point

    a = window.scene.add_node("input.poisson", (0, 0))
    b = window.scene.add_node("neuron.lif", (420, 0))
    window.view.fit_all()
    QApplication.processEvents()
    steps = window.doc.undo_stack.count()
    drag(window.view, port_point(window, a, "spikes", "out"), port_point(window, b, "input", "in"))
    assert dialogs.asked[-1][0] == "confirm" and "Insert a Projection" in dialogs.asked[-1][1]
    (prj,) = [n for n in window.doc.graph.nodes.values() if n.type_id == "synapse.projection"]
    assert sorted(window.doc.graph.edges) == sorted([Edge(a, "spikes", prj.id, "pre"),
                                                     Edge(prj.id, "post", b, "input")])
    assert window.doc.undo_stack.count() == steps + 1
    window.doc.undo_stack.undo()
    assert len(window.doc.graph) == 2 and window.doc.graph.edges == []


def test_save_question_names_what_comes_next(window, dialogs):
    window.scene.add_node("neuron.lif", (0, 0))
    window.open_example(example_path("cuba"))
    assert "before opening the example “cuba”?" in dialogs.save_question
    window.scene.add_node("neuron.lif", (0, 0))
    window.file_new()
    assert "before starting a new project?" in dialogs.save_question


def test_file_parameters_have_a_browse_button(window):
    from PySide6.QtWidgets import QToolButton

    nid = window.add_node_at_centre("input.event_stream")
    window.scene.select_nodes([nid])
    button = window.inspector.findChild(QToolButton, "browse_file")
    assert button is not None and button.text() == "Browse…" and button.isVisibleTo(window.inspector)


def test_memory_estimate_is_shown_before_a_run(window):
    from engine.info import human_bytes, summarize

    window.set_project(_small_project())
    window.problems.refresh()
    expected = human_bytes(summarize(window.doc.project).total_bytes)
    assert window.memory_label.text() == f"memory ≈ {expected}"
    assert "synapses" in window.memory_label.toolTip()
    from engine.graph import SetParam

    window.doc.apply(SetParam("projection_1", "connectivity", "all_to_all"))
    window.doc.apply(SetParam("lif_1", "n", 99_999_999))
    window.doc.apply(SetParam("poisson_1", "n", 99_999_999))
    window.problems.refresh()
    assert "PiB >" in window.memory_label.text() and window.memory_label.property("state") == "error"


def test_torch_backend_is_offered_and_runs_a_small_project(window, qtbot):
    """torch is registered now: offered in the toolbar (only unregistered backends are disabled)
    and a project without plasticity runs on it."""
    combo = window.backend_combo
    assert combo.model().item(combo.findText("torch")).isEnabled()
    assert combo.model().item(combo.findText("numba")).isEnabled()
    nest = combo.findText("nest")  # listed; run from the command line (see test_run.py)
    assert nest >= 0 and not combo.model().item(nest).isEnabled()
    window.set_project(_small_project())
    window.doc.set_setting("backend", "torch")
    assert window.start_run()
    qtbot.waitUntil(lambda: not window.run.running, timeout=60_000)
    assert window.run.results is not None and window.run.results.settings["backend"] == "torch"
    assert window.run.results.n_steps == 200 and not window.run.results.stopped


# -- first run: background compile -----------------------------------------------------------------
def _kernel_of(project):
    """The step-loop kernel variant a Run of ``project`` uses (numba backend)."""
    from engine.backends.numba_backend import NumbaBackend
    from engine.compiler import compile_graph

    return NumbaBackend(compile_graph(project, dict(project.settings.values_json(), duration=1.0)))._run_chunk


def test_background_warmup_compiles_the_kernels(monkeypatch, make_window):
    """The warm-up compiles the open project's kernel variant and the CUBA example's."""
    from app import warmup
    from engine import examples

    monkeypatch.delenv("SYNWEAVE_GENERAL_KERNEL", raising=False)  # what users get: per-project variants
    monkeypatch.setenv(warmup.DISABLE_ENV, "1")
    assert warmup.start() is None
    monkeypatch.delenv(warmup.DISABLE_ENV)
    project = examples.izhikevich_network()  # Izhikevich and current sources: a variant of its own
    win = make_window(project)
    kernels = [_kernel_of(project), _kernel_of(examples.cuba())]
    assert kernels[0] is not kernels[1]
    thread = warmup.start(win)
    assert thread is not None and thread.daemon
    thread.join(600)
    assert not thread.is_alive()
    for kernel in kernels:
        assert kernel.signatures  # compiled (or loaded from the cache) in this process


def test_run_text_counts_spikes_of_a_rate_monitor(make_window, qtbot):
    project = _small_project(monitor=False, duration=200.0)
    g = project.graph
    g.node("poisson_1").n = 100  # 10 inputs per neuron: the defaults fire
    mon = g.add_node("monitor.rate")
    g.connect("lif_1", "spikes", mon.id, "source")
    win = make_window(project)
    assert win.start_run()
    _wait_run(qtbot, win)
    text = win.progress_bar.format()
    count = int(text.rsplit("·", 1)[1].split()[0].replace(",", ""))
    assert count > 0 and "no spike monitor" not in text
