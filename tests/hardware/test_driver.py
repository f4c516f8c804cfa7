"""The serial driver against a virtual board on a real pseudo-terminal (no mocks)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from hardware.errors import (
    HardwareError,
    BoardConfigError,
    BoardDisconnectedError,
    BoardTimeoutError,
    PortOpenError,
    ProtocolError,
    VerifyError,
)
from hardware.neurocorex import protocol as p
from hardware.neurocorex.driver import NeuroCoreXDriver
from hardware.neurocorex.twin import NeuroCoreXTwin
from hardware.neurocorex.virtual_board import VirtualBoard

from . import _vectors

TINY_EVENTS = _vectors.load("tiny").runs[0]
TINY_SPIKES = [(2, 4), (4, 6), (5, 4), (7, 6)]
TIMEOUT = 0.5
STREAM_BYTES = {0: 11, 1: 22, 3: 44, 7: 89, 11: 134}  # (90 * (r_last + 1) - 1) // 8, spec §5
MARGIN = 1.0  # scheduling slack on a busy 2-core machine


def reference_run(image, events):
    return NeuroCoreXTwin(image).run(events)


# ------------------------------------------------------------------ normal operation


def test_upload_verify_and_run(fast_board, tiny_image):
    reports = []
    with NeuroCoreXDriver(fast_board.device_path, timeout=TIMEOUT) as driver:
        driver.upload(tiny_image, progress=lambda done, total, stage: reports.append((done, total, stage)))
        readback = driver.verify_ff()
        result = driver.run(TINY_EVENTS)
    assert not driver.is_open
    assert reports[-1][0] == reports[-1][1] == len(tiny_image.to_bytes())
    stages = list(dict.fromkeys(stage for _, _, stage in reports))
    assert stages == ["bias/debug", "recurrent (AA) weights", "feed-forward (FF) weights", "parameters"]
    assert np.array_equal(readback[:95], tiny_image.ff_weights[:95])
    assert result.spikes() == TINY_SPIKES and result.n_steps == 9
    assert np.array_equal(fast_board.twin.ff_weights, tiny_image.ff_weights)


def test_verify_failure_names_row_column_expected_and_got(fast_board, tiny_image):
    with NeuroCoreXDriver(fast_board.device_path, timeout=TIMEOUT) as driver:
        driver.upload(tiny_image)
        driver.verify_ff()
        fast_board.poke_ff_weight(8, 4, 99)  # the board's RAM no longer holds the upload
        with pytest.raises(VerifyError, match=r"row 8, column 4 \(input address 4 onto board neuron 6\): "
                                              r"expected 100, got 99") as info:
            driver.verify_ff()
        assert info.value.mismatches == [(8, 4, 100, 99)]
        assert driver.is_open  # a verify failure is not a link failure


def test_extra_steps_and_step_timing(fast_board, tiny_image):
    with NeuroCoreXDriver(fast_board.device_path, timeout=TIMEOUT) as driver:
        driver.upload(tiny_image)
        # (release_step, address): the last real input (3 at step 8) is applied thanks to the dummy
        steps = [(0, 2), (1, 3), (2, 4), (3, 2), (4, 3), (5, 4), (8, 3)]
        result = driver.run(steps, timing="step", extra_steps=3)
        assert result.events[:-1] == TINY_EVENTS[:-1]
        assert result.n_steps == 8 + 3 + 1  # frames up to 3 steps after the last real release
        assert result.spikes() == TINY_SPIKES
        # a silent address of the image is used for the dummy
        assert result.events[-1][1] in p.silent_addresses(tiny_image)
        with pytest.raises(BoardConfigError, match="serialise simultaneous inputs"):
            driver.run([(0, 2), (0, 3)], timing="step")
        with pytest.raises(BoardConfigError, match="at least one event"):
            driver.run([])


def test_iter_run_yields_frames_in_order_and_can_stop_early(fast_board, tiny_image):
    with NeuroCoreXDriver(fast_board.device_path, timeout=TIMEOUT) as driver:
        driver.upload(tiny_image)
        frames = list(driver.iter_run(TINY_EVENTS))
        assert [step for step, _ in frames] == list(range(9))
        assert p.frames_to_spikes(np.array([f for _, f in frames])) == TINY_SPIKES
        long_run = driver.iter_run([(0, 2), (250, 0)])
        step, _ = next(long_run)
        assert step == 0
        long_run.close()  # abandon it: the rest of its stream is drained before the next command
        assert driver.run(TINY_EVENTS).spikes() == TINY_SPIKES


def test_runs_longer_than_the_event_queue_are_fed_as_events_leave(fast_board, tiny_image):
    rng = np.random.default_rng(5)
    events = [(int(dt), int(a)) for dt, a in zip(rng.integers(0, 2, 1500), rng.choice([0, 2, 3, 4, 9], 1500))]
    with NeuroCoreXDriver(fast_board.device_path, timeout=TIMEOUT) as driver:
        driver.upload(tiny_image)
        result = driver.run(events)
    reference = reference_run(tiny_image, events)
    assert result.n_steps == int(p.release_steps(events)[-1])
    assert np.array_equal(result.frames, reference.frames)
    assert fast_board.twin.dropped_events == 0


def test_open_ended_streaming_run(fast_board, tiny_image):
    with NeuroCoreXDriver(fast_board.device_path, timeout=TIMEOUT) as driver:
        driver.upload(tiny_image)
        received = []
        with driver.stream() as live:
            for event in TINY_EVENTS[:-1]:
                live.send([event])
                received += live.poll(0.01)
            assert len(received) >= 1  # frames arrive while the run is still open
            received += live.finish(extra_steps=2)
        steps = [s for s, _ in received]
        assert steps == list(range(len(steps)))
        spikes = p.frames_to_spikes(np.array([f for _, f in received]))
        assert spikes == TINY_SPIKES
        assert driver.run(TINY_EVENTS).spikes() == TINY_SPIKES  # the link is in step afterwards


def test_power_up_byte_is_flushed_on_open(fast_board, tiny_image):
    assert fast_board.board_bytes <= 1  # the 0x00 was sent (or is about to be)
    with NeuroCoreXDriver(fast_board.device_path, timeout=TIMEOUT, settle_s=0.1) as driver:
        driver.upload(tiny_image)
        assert driver.run(TINY_EVENTS).spikes() == TINY_SPIKES


def test_pyserial_object_can_be_passed_in(fast_board, tiny_image):
    import serial

    port = serial.serial_for_url(fast_board.device_path, baudrate=p.BAUDRATE, do_not_open=True)
    with NeuroCoreXDriver(port, timeout=TIMEOUT) as driver:
        driver.upload(tiny_image)
        assert driver.run(TINY_EVENTS).spikes() == TINY_SPIKES
    assert not port.is_open


def test_real_timing_board(tiny_image):
    with VirtualBoard(fast=False) as board, NeuroCoreXDriver(board.device_path, timeout=TIMEOUT) as driver:
        start = time.monotonic()
        driver.upload(tiny_image)
        driver.verify_ff()  # answers only after the board consumed the upload at line rate
        configure_s = time.monotonic() - start
        start = time.monotonic()
        result = driver.run([(0, 2), (0, 3), (0, 4), (0, 2), (0, 3), (0, 4), (2, 3), (40, 3)])
        run_s = time.monotonic() - start
    assert board.error is None
    assert result.spikes() == TINY_SPIKES and result.n_steps == 49
    line_time = len(tiny_image.to_bytes()) * p.BYTE_TIME_S + p.READBACK_BYTES * p.READBACK_BYTE_INTERVAL_S
    assert configure_s > 0.8 * line_time  # 1 Mbaud upload, read-back bytes 21 us apart
    assert run_s > 49 * p.TIMESTEP_S * 0.9  # 0.96 ms per timestep


# ------------------------------------------------------------------ faults


def expect_failure(board, error_type, match, action, timeout=TIMEOUT):
    driver = NeuroCoreXDriver(board.device_path, timeout=timeout)
    driver.upload(_vectors.scratch_image())
    start = time.monotonic()
    with pytest.raises(error_type, match=match) as info:
        action(driver)
    elapsed = time.monotonic() - start
    assert elapsed < timeout + MARGIN
    assert not driver.is_open  # the port is released
    with pytest.raises(BoardDisconnectedError, match="closed"):
        driver.run(TINY_EVENTS)
    return info.value


def test_peer_closes_mid_run(fast_board):
    fast_board.inject_fault("disconnect", after_bytes=30)
    expect_failure(fast_board, BoardDisconnectedError, "lost the connection .* during a run",
                   lambda d: d.run([(0, 2), (200, 0)]))
    assert not os.path.exists(fast_board.device_path)  # the port vanished like an unplugged board


def test_board_goes_silent_before_the_marker(fast_board):
    fast_board.inject_fault("silent", after_bytes=0)
    error = expect_failure(fast_board, BoardTimeoutError, "did not start the run: no start marker",
                           lambda d: d.run(TINY_EVENTS))
    assert error.received == 0


def test_board_goes_silent_mid_stream(fast_board):
    fast_board.inject_fault("silent", after_bytes=40)
    error = expect_failure(fast_board, BoardTimeoutError, r"stopped after 39 of 2261 bytes \(frame 3 of 200\)",
                           lambda d: d.run([(0, 2), (199, 0)]))
    assert (error.received, error.expected) == (39, 2261)


def test_board_sends_garbage(fast_board):
    fast_board.inject_fault("garbage", after_bytes=0)
    error = expect_failure(fast_board, ProtocolError, "got 0x3A at byte 0 of the spike stream.*another program",
                           lambda d: d.run(TINY_EVENTS))
    assert (error.offset, error.value) == (0, 0x3A)


def test_truncated_stream(fast_board):
    fast_board.inject_fault("truncate", after_bytes=20)
    expect_failure(fast_board, BoardTimeoutError, r"stopped after 19 of 112 bytes",
                   lambda d: d.run(TINY_EVENTS))


def test_truncated_readback(fast_board):
    fast_board.inject_fault("truncate", target="readback", after_bytes=5000)
    expect_failure(fast_board, BoardTimeoutError, r"received 5000 of 9215 bytes of the FF weight read-back",
                   lambda d: d.verify_ff())


def test_board_unplugged_before_a_command(fast_board):
    def unplug_then_run(driver):
        fast_board.disconnect()
        driver.run(TINY_EVENTS)

    expect_failure(fast_board, BoardDisconnectedError, "lost the connection", unplug_then_run)


def test_garbage_waiting_before_a_run_is_reported(fast_board):
    def garbage_then_run(driver):
        fast_board.send_raw(b"\x00\x12\x34")
        time.sleep(0.05)
        driver.run(TINY_EVENTS)

    expect_failure(fast_board, ProtocolError, r"3 unexpected byte\(s\) .*0x12 at byte 1", garbage_then_run)


def test_open_errors_say_what_to_do(fast_board, tmp_path):
    with pytest.raises(PortOpenError, match="no such port; run `synweave board list`"):
        NeuroCoreXDriver(str(tmp_path / "ttyUSB9"))
    with NeuroCoreXDriver(fast_board.device_path, timeout=TIMEOUT):
        with pytest.raises(PortOpenError, match="busy"):
            NeuroCoreXDriver(fast_board.device_path, timeout=TIMEOUT)


def test_real_timing_streaming_run_keeps_stepping_while_the_queue_is_empty(tiny_image):
    with VirtualBoard(fast=False) as board, NeuroCoreXDriver(board.device_path, timeout=TIMEOUT) as driver:
        driver.upload(tiny_image)
        with driver.stream() as live:
            live.send([(0, 2)])
            # ~250 timesteps pass with an empty queue: frames keep coming (less the ~50 ms the
            # board still needs to consume the upload at 1 Mbaud)
            idle = live.poll(0.25)
            assert len(idle) > 100
            tail = live.finish(extra_steps=2)
    frames = np.array([f for _, f in idle + tail])
    spikes = p.frames_to_spikes(frames)
    # Input 2 fires neuron 4 two steps after its release. In real timing the release step depends
    # on when the bytes reach the board (steps keep running with an empty queue), so only the
    # lower bound and the single spike are fixed.
    assert [k for _, k in spikes] == [4] and spikes[0][0] >= 2
    assert len(frames) > len(idle)


@pytest.mark.parametrize("r_last", [0, 1, 3, 7, 11])
def test_every_stream_length_leaves_the_link_in_step(fast_board, tiny_image, r_last):
    # (r_last + 1) divisible by 4 (3, 7, 11): the board sends one byte fewer than 90 (r_last + 1) / 8.
    # The driver expects exactly that many, so it neither waits for a byte that never comes
    # nor leaves one behind.
    with NeuroCoreXDriver(fast_board.device_path, timeout=TIMEOUT) as driver:
        driver.upload(tiny_image)
        before = driver.bytes_received
        assert driver.run([(r_last, 0)]).n_steps == r_last
        assert driver.bytes_received - before == 1 + STREAM_BYTES[r_last]  # the marker and the stream
        assert driver.run(TINY_EVENTS).spikes() == TINY_SPIKES


# ------------------------------------------------------------------ a babbling device


class BabblingDevice:
    """A pseudo-terminal whose far end never stops sending: a mis-programmed FPGA, a wrong baud rate.

    It swallows what the host sends. ``on_first_host_byte`` (if given) is sent once the host has
    sent something, before the endless ``babble``; otherwise the babble starts at once. With
    ``interval`` the babble drips in one byte at a time, that many seconds apart.
    """

    def __init__(self, babble: bytes, on_first_host_byte: bytes | None = None, interval: float = 0.0):
        import fcntl
        import threading
        import tty

        self.babble = babble[:1] if interval else babble * 512
        self.prefix, self.interval = on_first_host_byte, interval
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        flags = fcntl.fcntl(self.master, fcntl.F_GETFL)
        fcntl.fcntl(self.master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        self.path = os.ttyname(self.slave)
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        heard = self.prefix is None
        pending = b""
        while not self._stop.is_set():
            try:
                if os.read(self.master, 65536) and not heard:
                    heard, pending = True, self.prefix
            except (BlockingIOError, OSError):
                pass
            if not heard:
                time.sleep(0.001)
                continue
            try:
                data = pending or self.babble
                written = os.write(self.master, data)
                pending = data[written:] if data is pending else b""
                self.sent += written
                if self.interval:
                    time.sleep(self.interval)
            except BlockingIOError:
                time.sleep(0.0005)  # the host's input buffer is full: it is not reading fast enough
            except OSError:
                time.sleep(0.001)

    def close(self):
        self._stop.set()
        self._thread.join(2)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def babbler(request):
    devices = []

    def make(babble, on_first_host_byte=None, interval=0.0):
        devices.append(BabblingDevice(babble, on_first_host_byte, interval))
        return devices[-1]

    yield make
    for device in devices:
        device.close()


def test_a_device_that_sends_zeros_forever_ends_a_run_within_its_timeout(babbler):
    device = babbler(b"\x00")  # never a marker: the old driver read these forever
    driver = NeuroCoreXDriver(device.path, timeout=TIMEOUT)
    start = time.monotonic()
    with pytest.raises(BoardTimeoutError, match=r"kept sending \([\d,]+ bytes in [\d.]+ s, all 0x00\) but "
                                                r"never the run's start marker 0xFF.*baud rate") as info:
        driver.run(TINY_EVENTS)
    assert time.monotonic() - start < TIMEOUT + MARGIN
    assert info.value.received > 1000 and device.sent > 1000  # bytes kept coming all the while
    assert not driver.is_open


def test_a_device_that_streams_past_the_run_is_caught_within_the_timeout(babbler):
    device = babbler(b"\x55", on_first_host_byte=b"\xff")  # a marker, then data without end
    driver = NeuroCoreXDriver(device.path, timeout=TIMEOUT)
    start = time.monotonic()
    with pytest.raises(ProtocolError, match=r"bytes after the marker, 112 were expected|unexpected byte\(s\)"):
        driver.run(TINY_EVENTS)  # 112 bytes are taken as the run (they decode as spikes) ...
        driver.run(TINY_EVENTS)  # ... and what follows is reported before the next command at the latest
    assert time.monotonic() - start < 2 * (TIMEOUT + MARGIN)
    assert not driver.is_open


def test_a_streaming_run_on_a_babbling_device_ends_within_its_timeout(babbler):
    device = babbler(b"\x55", on_first_host_byte=b"\xff")
    driver = NeuroCoreXDriver(device.path, timeout=TIMEOUT)
    live = driver.stream()
    live.send([(0, 2), (3, 4)])
    live.poll(0.05)
    start = time.monotonic()
    with pytest.raises(BoardTimeoutError, match=r"kept sending after the end of the streaming run: "
                                                r"[\d,]+ bytes after the marker, 67 expected for 5 steps"):
        live.finish(extra_steps=0)
    assert time.monotonic() - start < TIMEOUT + MARGIN
    assert not driver.is_open


def test_a_read_back_that_drips_in_ends_at_its_deadline(babbler):
    # one byte every 2 ms, never a silence as long as the timeout: the 9215 bytes would take 18 s
    device = babbler(b"\x00", on_first_host_byte=b"\x00", interval=0.002)
    driver = NeuroCoreXDriver(device.path, timeout=TIMEOUT)
    start = time.monotonic()
    with pytest.raises(BoardTimeoutError, match=r"received only \d+ of 9215 bytes of the FF weight read-back "
                                                r"in [\d.]+ s, all 0x00; .*baud rate"):
        driver.read_back_ff()
    budget = TIMEOUT + p.READBACK_BYTES * p.READBACK_BYTE_INTERVAL_S * 2
    assert time.monotonic() - start < budget + MARGIN
    assert not driver.is_open


# ------------------------------------------------------------------ another program on the port

HOLD_PORT = """
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)  # plain open: no lock, like a serial monitor
print("open", flush=True)
while True:
    os.read(fd, 4096)  # and it reads, taking bytes meant for whoever else has the port
"""


@pytest.fixture
def other_program():
    import subprocess
    import sys

    procs = []

    def start(path):
        proc = subprocess.Popen([sys.executable, "-c", HOLD_PORT, path], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "open"
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(5)


def test_a_port_held_open_by_a_program_that_does_not_lock_it_is_named_at_connect(fast_board, other_program):
    from hardware.errors import PortInUseError

    proc = other_program(fast_board.device_path)
    with pytest.raises(PortInUseError, match=rf"already open in another program that does not lock it "
                                             rf"\(pid {proc.pid} \(python[\d.]*\)\)"):
        NeuroCoreXDriver(fast_board.device_path, timeout=TIMEOUT)


def test_a_program_that_opens_the_port_later_is_named_not_called_a_disconnect(fast_board, other_program, tiny_image):
    driver = NeuroCoreXDriver(fast_board.device_path, timeout=TIMEOUT)
    driver.upload(tiny_image)
    proc = other_program(fast_board.device_path)
    with pytest.raises(HardwareError) as info:
        for _ in range(50):  # the other program takes some of the board's bytes sooner or later
            driver.run(TINY_EVENTS)
    message = str(info.value)
    assert f"pid {proc.pid}" in message and "another program" in message
    assert "Check the USB cable" not in message
    assert os.path.exists(fast_board.device_path)  # nothing was unplugged


def test_the_board_emulator_holding_its_own_pty_is_not_another_program():
    from hardware.neurocorex.discovery import port_users

    from .test_cli import start_emulator

    proc, path = start_emulator("--fast")
    try:
        assert port_users(path) == []  # the emulator holds the master side: it is the board
        with NeuroCoreXDriver(path, timeout=1.0) as driver:
            driver.upload(_vectors.scratch_image())
    finally:
        proc.terminate()
        proc.wait(5)


def test_a_verify_failure_in_a_row_no_neuron_reads_shows_no_made_up_index(fast_board, tiny_image):
    with NeuroCoreXDriver(fast_board.device_path, timeout=TIMEOUT) as driver:
        driver.upload(tiny_image)
        driver.verify_ff()  # the board has taken the whole upload
        fast_board.poke_ff_weight(0, 4, 7)
        with pytest.raises(VerifyError,
                           match=r"row 0, column 4 \(input address 4; no board neuron reads row 0\)") as info:
            driver.verify_ff()
    assert "k=" not in str(info.value) and "-2" not in str(info.value)
