"""Fixtures for the board-layer tests: virtual boards on real pseudo-terminals."""

from __future__ import annotations

import pytest

from hardware.neurocorex.virtual_board import VirtualBoard

from . import _vectors


@pytest.fixture
def fast_board():
    board = VirtualBoard(fast=True).start()
    yield board
    board.stop()
    assert board.error is None, f"the virtual board's thread failed: {board.error!r}"


@pytest.fixture
def tiny_image():
    return _vectors.scratch_image()
