"""What a new user meets (issue 9): relative data files, wheel edits, first start, silent
networks, status text, inspector width, node faces, crash recovery."""

from __future__ import annotations

import shutil

from PySide6.QtWidgets import QApplication

from engine.compiler import compile_graph
from tests.gui.conftest import example_path


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
