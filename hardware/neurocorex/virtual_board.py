"""A virtual NeuroCoreX board on a pseudo-terminal, with the digital twin inside.

:class:`VirtualBoard` opens a pty pair, serves the board protocol on the master side from a
background thread and exposes the slave side as :attr:`VirtualBoard.device_path`, so the real
driver (pyserial) talks to it exactly as to a USB serial port. It can run

* ``fast=True``: answers as soon as the bytes are in (the twin steps untimed), for tests and
  for trying a deploy without hardware;
* ``fast=False`` (default): the board's timing, approximately: host bytes are consumed at
  1 Mbaud (10 us each), a run steps once per 0.96 ms of wall time (so an open-ended run whose
  queue runs dry keeps streaming idle frames, and a read-back can interrupt a run), and the
  read-back bytes come 21 us apart.

Faults can be injected for tests of the error paths: the peer closes the port in the middle of
a run, the board goes silent, sends garbage instead of a stream, or truncates a stream.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import select
import threading
import time
import tty
from collections import deque
from dataclasses import dataclass

from hardware.neurocorex import protocol as p
from hardware.neurocorex import twin as tw

FAULT_KINDS = ("disconnect", "silent", "garbage", "truncate")
FAULT_TARGETS = ("run", "readback")
_POLL_S = 0.002  # loop granularity: well under one timestep
_RX_BURST_BYTES = 4096  # most the timed board reads ahead in one go (its line rate still applies)


@dataclass
class _Fault:
    kind: str
    target: str  # "run" or "readback"
    after_bytes: int
    skip: int = 0  # answers of the target kind served intact before this one
    active: bool = False
    sent: int = 0


@dataclass
class _Outgoing:
    """Bytes waiting to be written to the host, released no faster than ``interval`` apart."""

    data: bytes
    start: float
    interval: float = 0.0
    sent: int = 0
    action: str | None = None  # "disconnect" / "silent": executed when this item is reached


class VirtualBoard:
    """Serve the NeuroCoreX protocol on a pseudo-terminal.

    Parameters
    ----------
    fast : bool
        Answer without the board's timing (see the module docstring).
    image : BoardImage, optional
        Configuration already on the board at power-up (default: the board's defaults).
    power_up_byte : bool
        Send the stray ``0x00`` of a real board's power-up as soon as the board starts.

    Examples
    --------
    >>> with VirtualBoard(fast=True) as board:                     # doctest: +SKIP
    ...     with NeuroCoreXDriver(board.device_path) as driver:
    ...         driver.upload(image)
    """

    def __init__(self, fast: bool = False, image: p.BoardImage | None = None, *,
                 power_up_byte: bool = True) -> None:
        self.fast = fast
        self.twin = tw.NeuroCoreXTwin(image, power_up_byte=power_up_byte, auto_advance=fast)
        self._lock = threading.RLock()
        self._master: int | None = None
        self._slave: int | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._outgoing: deque[_Outgoing] = deque()
        self._faults: list[_Fault] = []
        self._silent = False
        self._run_fault: _Fault | None = None
        self._run_t0 = 0.0
        self._run_steps_done = 0
        self._rx_credit = 0.0
        self._rx_clock = 0.0
        self.device_path: str | None = None
        self.host_bytes = 0  # bytes received from the host
        self.board_bytes = 0  # bytes written to the host
        self.error: BaseException | None = None  # an unexpected failure of the serving thread

    # ------------------------------------------------------------------------------------
    # Life cycle
    # ------------------------------------------------------------------------------------

    def start(self) -> "VirtualBoard":
        """Open the pseudo-terminal and start serving; :attr:`device_path` is then valid."""
        if self._thread is not None:
            return self
        master, slave = os.openpty()
        # Raw mode: no echo, no line editing, no CR/LF translation -- a plain 8-bit byte pipe.
        tty.setraw(slave)
        flags = fcntl.fcntl(master, fcntl.F_GETFL)
        fcntl.fcntl(master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        self._master, self._slave = master, slave  # holding the slave keeps the master alive between clients
        self.device_path = os.ttyname(slave)
        self._rx_clock = time.monotonic()
        self._collect_output(time.monotonic())
        self._thread = threading.Thread(target=self._serve, name=f"VirtualBoard {self.device_path}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the pseudo-terminal (the device path disappears)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._close_fds()

    @property
    def running(self) -> bool:
        """True while the serving thread is alive and the pty is open."""
        return self._thread is not None and self._thread.is_alive() and self._master is not None

    def __enter__(self) -> "VirtualBoard":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------
    # Fault injection (for tests of the driver's error handling)
    # ------------------------------------------------------------------------------------

    def inject_fault(self, kind: str, target: str = "run", after_bytes: int = 0, skip: int = 0) -> None:
        """Make the next run (or read-back) fail, or the one ``skip`` answers later.

        Parameters
        ----------
        kind : {"disconnect", "silent", "garbage", "truncate"}
            ``disconnect``: close the pty after ``after_bytes`` bytes (the cable was pulled);
            ``silent``: stop sending anything after ``after_bytes`` bytes, forever (host bytes are
            still accepted and ignored, as a hung FPGA behind a working USB chip would);
            ``garbage``: from byte ``after_bytes`` on, send random bytes instead (byte 0 is never
            a valid marker or power-up byte); ``truncate``: drop the rest of that stream only,
            the board keeps working.
        target : {"run", "readback"}
            Which answer to break. For a run the count includes the ``0xFF`` marker.
        after_bytes : int
            Bytes of that answer sent intact before the fault.
        skip : int
            Answers of that kind (runs or read-backs) to serve intact first.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; choose one of {', '.join(FAULT_KINDS)}")
        if target not in FAULT_TARGETS:
            raise ValueError(f"unknown fault target {target!r}; choose 'run' or 'readback'")
        if int(after_bytes) < 0 or int(skip) < 0:
            raise ValueError(f"after_bytes and skip must be >= 0; got {after_bytes} and {skip}")
        with self._lock:
            self._faults.append(_Fault(kind, target, int(after_bytes), int(skip)))

    def go_silent(self) -> None:
        """Stop answering from now on (host bytes are read and ignored)."""
        with self._lock:
            self._silent = True
            self._outgoing.clear()

    def disconnect(self) -> None:
        """Close the pty now, as if the USB cable were pulled."""
        with self._lock:
            self._close_fds()

    def send_raw(self, data: bytes) -> None:
        """Queue arbitrary bytes to the host (garbage on the line)."""
        with self._lock:
            self._outgoing.append(_Outgoing(bytes(data), time.monotonic()))

    def poke_ff_weight(self, row: int, column: int, value: int) -> None:
        """Change one cell of the FF weight RAM behind the host's back (a flipped RAM bit)."""
        with self._lock:
            self.twin.poke_ff_weight(row, column, value)

    # ------------------------------------------------------------------------------------
    # Serving thread
    # ------------------------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                with self._lock:
                    master = self._master
                if master is None:
                    return
                with self._lock:
                    now = time.monotonic()
                    want_write = self._has_due_output(now)
                    # Timed mode: only read once a useful amount of line time has passed, so the
                    # loop sleeps instead of spinning on a few bytes at a time.
                    want_read = self.fast or self._rx_credit + (now - self._rx_clock) / p.BYTE_TIME_S >= 64
                try:
                    readable, writable, _ = select.select([master] if want_read else [],
                                                          [master] if want_write else [], [], _POLL_S)
                except (OSError, ValueError):
                    return  # the fd was closed under us (disconnect)
                with self._lock:
                    if self._master is None:
                        return
                    now = time.monotonic()
                    if readable:
                        self._receive(now)
                    if not self.fast:
                        self._tick_run(now)
                    self._collect_output(now)
                    self._transmit(now)
        except BaseException as exc:  # keep the failure visible to tests instead of dying silently
            self.error = exc
            raise

    def _receive(self, now: float) -> None:
        if self.fast:
            limit = 1 << 16
        else:
            # The board's UART takes one byte per 10 us; reading slower than the host writes
            # makes the host's write() block, as on the real link.
            self._rx_credit = min(self._rx_credit + (now - self._rx_clock) / p.BYTE_TIME_S, _RX_BURST_BYTES)
            self._rx_clock = now
            limit = int(self._rx_credit)
            if limit <= 0:
                return
        try:
            data = os.read(self._master, limit)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:  # no client has the slave open: nothing to read
                return
            raise
        if not data:
            return
        if not self.fast:
            self._rx_credit -= len(data)
        self.host_bytes += len(data)
        if self._silent:
            return
        runs_before = self.twin.runs_started
        self.twin.feed(data)
        if self.twin.runs_started != runs_before:  # a run started: its timesteps count from now
            self._run_t0 = now
            self._run_steps_done = 0

    def _tick_run(self, now: float) -> None:
        """Timed mode: compute the run's steps that are due by the wall clock."""
        if self._silent or not self.twin.run_active:
            return
        due = int((now - self._run_t0) / p.TIMESTEP_S)
        while self._run_steps_done < due and self.twin.run_active:
            self.twin.tick()
            self._run_steps_done += 1

    def _collect_output(self, now: float) -> None:
        """Move the twin's output into the transmit queue, applying pacing and faults."""
        for kind, data in self.twin.take_output_chunks():
            if self._silent:
                continue
            if kind == tw.MARKER or kind == tw.READBACK:
                self._run_fault = None
                target = "run" if kind == tw.MARKER else "readback"
                for fault in self._faults:
                    if fault.target != target:
                        continue
                    if fault.skip:
                        fault.skip -= 1  # this answer goes out intact
                        break
                    self._faults.remove(fault)
                    fault.active = True
                    self._run_fault = fault
                    break
            elif kind == tw.POWER_UP:
                self._run_fault = None
            interval = p.READBACK_BYTE_INTERVAL_S if (kind == tw.READBACK and not self.fast) else 0.0
            fault = self._run_fault
            if fault is None:
                self._outgoing.append(_Outgoing(data, now, interval))
                continue
            intact = max(0, min(len(data), fault.after_bytes - fault.sent))
            fault.sent += len(data)
            if intact:
                self._outgoing.append(_Outgoing(data[:intact], now, interval))
            rest = len(data) - intact
            if rest <= 0 or fault.kind == "truncate":
                continue
            if fault.kind == "garbage":
                junk = bytearray(random.getrandbits(8) for _ in range(rest))
                if fault.sent - len(data) + intact == 0:  # the garbage starts the answer
                    junk[0] = 0x3A  # never a valid marker (0xFF) or power-up byte (0x00)
                self._outgoing.append(_Outgoing(bytes(junk), now, interval))
            else:  # disconnect / silent: act once the intact bytes are out
                self._outgoing.append(_Outgoing(b"", now, action=fault.kind))
                self._run_fault = None

    def _has_due_output(self, now: float) -> bool:
        if not self._outgoing:
            return False
        head = self._outgoing[0]
        return head.action is not None or head.interval == 0.0 or now >= head.start + head.sent * head.interval

    def _transmit(self, now: float) -> None:
        while self._outgoing and self._master is not None:
            item = self._outgoing[0]
            if item.action == "disconnect":
                self._outgoing.clear()
                self._close_fds()
                return
            if item.action == "silent":
                self._outgoing.clear()
                self._silent = True
                return
            end = len(item.data)
            if item.interval:
                end = min(end, int((now - item.start) / item.interval) + 1)
            if end <= item.sent:
                return
            try:
                written = os.write(self._master, item.data[item.sent:end])
            except BlockingIOError:
                return  # the host is not reading; try again later
            except OSError as exc:
                if exc.errno == errno.EIO:
                    return
                raise
            item.sent += written
            self.board_bytes += written
            if item.sent < len(item.data):
                return
            self._outgoing.popleft()

    def _close_fds(self) -> None:
        for name in ("_master", "_slave"):
            fd = getattr(self, name)
            if fd is not None:
                setattr(self, name, None)
                try:
                    os.close(fd)
                except OSError:
                    pass

