"""Serial driver for the NeuroCoreX board.

:class:`NeuroCoreXDriver` uploads a :class:`~hardware.neurocorex.protocol.BoardImage`, verifies
the FF weights by read-back, and runs event lists, decoding the spike stream while it arrives.

The link has no acknowledgements and no length fields, so the driver derives every answer's
length from what it sent: a run's stream is ``stream_bytes_for_run(r_last)`` bytes after the
``0xFF`` marker, a read-back is 9215 bytes. Every read is bounded twice: by ``timeout`` seconds
of silence, and by a deadline for the whole answer that holds however many bytes keep arriving
(a babbling or mis-programmed device, a wrong baud rate). When either runs out, the board sends
bytes the protocol does not allow, or the port disappears, the driver closes the port and raises
a :class:`~hardware.errors.HardwareError` subclass that says what happened, what was received and
what to do. It never hangs and never leaves the port open after such an error.
"""

from __future__ import annotations

import errno
import os
import time
from typing import Callable, Iterator, Sequence

import numpy as np
import serial

from hardware.errors import (
    BoardConfigError,
    BoardDisconnectedError,
    BoardTimeoutError,
    HardwareError,
    PortInUseError,
    PortOpenError,
    ProtocolError,
    VerifyError,
)
from hardware.neurocorex import protocol as p
from hardware.neurocorex.discovery import describe_port_users, port_users

ProgressCallback = Callable[[int, int, str], None]
"""``progress(bytes_done, bytes_total, stage)``; ``stage`` names the block being sent."""

_POLL_S = 0.02  # pyserial read timeout: how often the driver re-checks its own deadlines
_WRITE_CHUNK = 1024  # upload granularity for progress reports
_MAX_IN_FLIGHT = p.QUEUE_CAPACITY - 64  # keep the board's event queue from overflowing
_STAGES = {
    p.WriteDebug: "bias/debug",
    p.WriteAAWeights: "recurrent (AA) weights",
    p.WriteFFWeights: "feed-forward (FF) weights",
    p.WriteSTDPEnable: "STDP enable bits",
    p.WriteParameters: "parameters",
}


def _describe_bytes(data: bytes | bytearray, shown: int = 8) -> str:
    """Say what a byte string held, for error messages: ``"all 0x00"`` or its first bytes in hex."""
    if not data:
        return "nothing"
    if len(set(data)) == 1:
        return f"all 0x{data[0]:02X}"
    head = " ".join(f"{b:02X}" for b in data[:shown])
    return f"starting {head}{' ...' if len(data) > shown else ''}"


def _describe_ff_entry(row: int, column: int) -> str:
    """What an FF weight RAM entry feeds, in board terms, without meaningless derived indices."""
    slot = row - p.FF_ROW_OFFSET
    if p.FIRST_NEURON <= slot <= p.LAST_NEURON:
        return f"input address {column} onto board neuron {slot}"
    return f"input address {column}; no board neuron reads row {row}"


class NeuroCoreXDriver:
    """Talk to one NeuroCoreX board over a serial port.

    Parameters
    ----------
    port : str or serial.SerialBase
        Device path (``/dev/ttyUSB1``, ``COM5``, a virtual board's pty) or pyserial URL, or an
        already open pyserial object.
    baudrate : int
        1,000,000 for the board.
    timeout : float
        Longest silence (seconds) tolerated while the board owes bytes, and the write timeout.
    settle_s : float
        Pause after opening before the power-up byte is flushed.

    Raises
    ------
    PortOpenError
        The port does not exist, is busy, or access is denied.

    Notes
    -----
    One driver serves one thread: a GUI calls it from a worker thread and forwards progress
    callbacks and ``iter_run`` frames to the UI thread itself.

    Examples
    --------
    >>> with NeuroCoreXDriver("/dev/ttyUSB1") as board:             # doctest: +SKIP
    ...     board.upload(image, progress=print)
    ...     board.verify_ff()
    ...     result = board.run([(0, 2), (0, 3)], extra_steps=5)
    ...     result.spikes()
    """

    def __init__(self, port: str | serial.SerialBase, baudrate: int = p.BAUDRATE, timeout: float = 2.0,
                 *, settle_s: float = 0.02) -> None:
        self.timeout = float(timeout)
        self.bytes_sent = 0  # link counters, for status displays
        self.bytes_received = 0
        self._image: p.BoardImage | None = None
        self._owed_bytes = 0  # bytes of an abandoned run still to come before the next command
        if isinstance(port, serial.SerialBase):
            self._serial = port
            self.port = str(port.port)
            if not port.is_open:
                self._open_existing(port)
            port.timeout = _POLL_S
            port.write_timeout = self.timeout
        else:
            self.port = str(port)
            self._serial = self._open(self.port, baudrate)
        if settle_s:
            time.sleep(settle_s)
        self._discard_power_up()

    # ------------------------------------------------------------------------------------
    # Opening and closing
    # ------------------------------------------------------------------------------------

    def _open(self, port: str, baudrate: int) -> serial.SerialBase:
        options = dict(baudrate=baudrate, bytesize=8, parity="N", stopbits=1, timeout=_POLL_S,
                       write_timeout=self.timeout, xonxoff=False, rtscts=False, dsrdtr=False)
        if "://" not in port:
            options["exclusive"] = True  # a second program on the port would steal bytes
        try:
            opened = serial.serial_for_url(port, **options)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise PortOpenError(self._describe_open_failure(port, exc)) from exc
        # The exclusive lock only keeps out programs that lock too; one that opened the port
        # without locking would silently read the board's bytes away.
        users = port_users(port)
        if users:
            opened.close()
            raise PortInUseError(
                f"cannot use serial port {port!r}: it is already open in another program that does "
                f"not lock it ({describe_port_users(users)}), which would read the board's bytes "
                "away. Close that program (a serial monitor, a notebook), then connect again")
        return opened

    def _open_existing(self, port: serial.SerialBase) -> None:
        try:
            port.open()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise PortOpenError(self._describe_open_failure(self.port, exc)) from exc

    @staticmethod
    def _describe_open_failure(port: str, exc: BaseException) -> str:
        code = getattr(exc, "errno", None)
        text = str(exc)
        if code == errno.ENOENT or "No such file" in text:
            hint = "no such port; run `synweave board list` to see the connected boards"
        elif code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
            hint = ("permission denied; on Linux add your user to the 'dialout' group "
                    "(sudo usermod -aG dialout $USER, then log in again)")
        elif "exclusive" in text.lower() or code in (errno.EBUSY, errno.EAGAIN) or "busy" in text.lower():
            users = port_users(port)
            holders = f" ({describe_port_users(users)})" if users else ""
            hint = (f"the port is busy: another program holds it{holders}; close it (a notebook, a "
                    "serial monitor, another Synweave window)")
        else:
            hint = "check the cable and that this is the board's UART port"
        return f"cannot open serial port {port!r}: {hint} ({text})"

    @property
    def is_open(self) -> bool:
        """True while the serial port is open."""
        return bool(self._serial is not None and self._serial.is_open)

    @property
    def image(self) -> p.BoardImage | None:
        """The last image uploaded through this driver (None before the first upload)."""
        return self._image

    def close(self) -> None:
        """Release the serial port. Safe to call more than once."""
        if self._serial is not None:
            try:
                self._serial.close()
            except (serial.SerialException, OSError):
                pass

    def __enter__(self) -> "NeuroCoreXDriver":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------------
    # Low-level I/O with error translation
    # ------------------------------------------------------------------------------------

    def _fail(self, error: HardwareError) -> HardwareError:
        """Close the port and return ``error`` for raising: no port stays open after an error.

        When another program holds the port open too, the message leads with that: its reads take
        the board's bytes, which looks like a silent, garbled or unplugged board.
        """
        users = [] if isinstance(error, PortInUseError) else port_users(self.port)
        if users and error.args:
            error.args = (f"another program is using {self.port} at the same time "
                          f"({describe_port_users(users)}) and takes the board's bytes; close it, then "
                          f"connect again. What the driver saw: {error.args[0]}",) + error.args[1:]
        self.close()
        return error

    def _check_open(self) -> None:
        if not self.is_open:
            raise BoardDisconnectedError(
                f"the connection to {self.port} is closed (after an error or close()); "
                "open a new NeuroCoreXDriver to continue"
            )

    def _write(self, data: bytes, what: str) -> None:
        self._check_open()
        try:
            written = self._serial.write(data)
        except serial.SerialTimeoutException as exc:
            raise self._fail(BoardTimeoutError(
                f"the board stopped accepting data while the driver sent {what} (no progress for "
                f"{self.timeout:g} s). Is the FPGA programmed and running? Power-cycle the board and "
                "upload again", waited_s=self.timeout)) from exc
        except (serial.SerialException, OSError) as exc:
            raise self._fail(self._disconnected(f"while sending {what}", exc)) from exc
        self.bytes_sent += len(data) if written is None else int(written)
        if written is not None and written != len(data):
            raise self._fail(BoardTimeoutError(
                f"only {written} of {len(data)} bytes of {what} were accepted within "
                f"{self.timeout:g} s; power-cycle the board and upload again",
                received=written, expected=len(data), waited_s=self.timeout))

    def _disconnected(self, when: str, exc: BaseException) -> BoardDisconnectedError:
        """Name the cause of a failed read or write: another program on the port, or the cable."""
        users = port_users(self.port)
        if users:
            return PortInUseError(
                f"another program is using the board's port {self.port} at the same time "
                f"({describe_port_users(users)}); the read {when} failed because it took the "
                f"board's bytes ({exc}). Close that program, then connect again and upload")
        if "multiple access" in str(exc) and os.path.exists(self.port):
            # pyserial's "readiness to read but returned no data": the device node is still
            # there, so the cable is in; someone else (not visible to us) read the bytes.
            return PortInUseError(
                f"the read {when} found the board's bytes gone although {self.port} is still "
                f"connected: another program (perhaps another user's) is reading the port ({exc}). "
                "Close it, then connect again and upload")
        return BoardDisconnectedError(
            f"lost the connection to the board at {self.port} {when} ({exc}). Check the USB "
            "cable, reconnect, then open the port and upload again"
        )

    def _read_available(self, when: str) -> bytes:
        """Whatever arrives within one poll interval (possibly nothing)."""
        self._check_open()
        try:
            waiting = self._serial.in_waiting
            data = self._serial.read(waiting if waiting else 1)
        except (serial.SerialException, OSError) as exc:
            raise self._fail(self._disconnected(when, exc)) from exc
        self.bytes_received += len(data)
        return data

    def _in_waiting(self, when: str) -> int:
        self._check_open()
        try:
            return int(self._serial.in_waiting)
        except (serial.SerialException, OSError) as exc:
            raise self._fail(self._disconnected(when, exc)) from exc

    def _discard_power_up(self) -> None:
        """Drop the board's stray power-up ``0x00`` (and anything else already waiting)."""
        try:
            self._serial.reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            raise self._fail(self._disconnected("while flushing the input buffer", exc)) from exc

    def _settle_input(self, before: str) -> None:
        """Make sure no stray bytes wait before a command that expects an answer.

        Bytes still owed by an abandoned run are read and dropped first. Power-up ``0x00``
        bytes are harmless; anything else means the link is out of step.
        """
        if self._owed_bytes:
            self._read_exact(self._owed_bytes, "the rest of an abandoned run's spike stream")
            self._owed_bytes = 0
        stray = self._read_available(f"before {before}") if self._in_waiting(f"before {before}") else b""
        if any(stray):
            first = next(i for i, b in enumerate(stray) if b)
            raise self._fail(ProtocolError(
                f"{len(stray)} unexpected byte(s) were waiting before {before} (0x{stray[first]:02X} at "
                f"byte {first}); the board sent more than the protocol allows. Is another program "
                "using the port? Reconnect and upload again", offset=first, value=stray[first]))

    def _read_exact(self, count: int, what: str, deadline_s: float | None = None) -> bytes:
        """Read exactly ``count`` bytes within ``deadline_s`` (default: ``timeout`` plus line time).

        Silence longer than ``timeout`` raises :class:`BoardTimeoutError`; so does the deadline,
        which is checked after every read, whether bytes arrived or not.
        """
        out = bytearray()
        start = last = time.monotonic()
        deadline = start + (deadline_s if deadline_s is not None else self.timeout + count * 1e-4)
        while len(out) < count:
            chunk = self._read_available(f"while reading {what}")
            now = time.monotonic()
            if chunk:
                out += chunk
                last = now
            elif now - last > self.timeout:
                raise self._fail(BoardTimeoutError(
                    f"received {len(out)} of {count} bytes of {what}, then nothing for "
                    f"{now - last:.1f} s. Is the board powered and programmed? Reconnect and try again",
                    received=len(out), expected=count, waited_s=now - start))
            if len(out) < count and now > deadline:
                raise self._fail(BoardTimeoutError(
                    f"received only {len(out)} of {count} bytes of {what} in {now - start:.1f} s, "
                    f"{_describe_bytes(out)}; the board sends them far slower than it should. Check "
                    "the baud rate (1,000,000) and that this port is a NeuroCoreX board",
                    received=len(out), expected=count, waited_s=now - start))
        if len(out) > count:
            # Never expected: the board answers nothing unasked. Keep the link honest.
            raise self._fail(ProtocolError(
                f"the board sent {len(out) - count} byte(s) more than the {count} bytes of {what}; "
                "is another program using the port?", offset=count, value=out[count]))
        return bytes(out)

    # ------------------------------------------------------------------------------------
    # Configuration
    # ------------------------------------------------------------------------------------

    def upload(self, image: p.BoardImage, progress: ProgressCallback | None = None,
               include_stdp_enable: bool | None = None) -> None:
        """Send a complete configuration in the published order (§8).

        Parameters
        ----------
        image : BoardImage
        progress : callable, optional
            ``progress(bytes_done, bytes_total, stage)`` after every chunk.
        include_stdp_enable : bool or None
            ``None``: send the STDP enable block only when a bit is set. The board keeps enable
            bits across uploads, so pass ``True`` to clear bits an earlier upload set.
        """
        commands = image.to_commands(include_stdp_enable)
        blocks = [(c.encode(), _STAGES.get(type(c), type(c).__name__), type(c)) for c in commands]
        total = sum(len(b) for b, _, _ in blocks)
        self._settle_input("an upload")
        done = 0
        for data, stage, kind in blocks:
            # The board applies STDP enable bytes slower than the line rate; pace that block.
            pace = p.STDP_ENABLE_BYTE_TIME_S if kind is p.WriteSTDPEnable else 0.0
            block_start = time.monotonic()
            for offset in range(0, len(data), _WRITE_CHUNK):
                chunk = data[offset:offset + _WRITE_CHUNK]
                self._write(chunk, f"the {stage}")
                done += len(chunk)
                if pace:
                    lag = block_start + (offset + len(chunk)) * pace - time.monotonic()
                    if lag > 0:
                        time.sleep(lag)
                if progress is not None:
                    progress(done, total, stage)
        self._image = image.copy()

    def read_back_ff(self) -> np.ndarray:
        """Read the FF weight RAM (``[96, 96]`` int8; entry (95, 95) is never sent and reads 0).

        Only call it between runs: a read-back during a run stops the run.
        """
        self._settle_input("a weight read-back")
        self._write(p.encode_readback(), "the read-back request")
        budget = self.timeout + p.READBACK_BYTES * p.READBACK_BYTE_INTERVAL_S * 2
        data = self._read_exact(p.READBACK_BYTES, "the FF weight read-back", deadline_s=budget)
        return p.decode_readback(data)

    def verify_ff(self, image: p.BoardImage | None = None) -> np.ndarray:
        """Read back the FF weights and compare them with ``image`` (default: the last upload).

        Entry (95, 95) cannot be verified (the board never sends it). On-chip FF STDP rewrites the
        RAM during runs, so verify right after an upload.

        Returns
        -------
        ndarray
            The read-back weights.

        Raises
        ------
        VerifyError
            Naming the first differing row/column, the expected and the received value.
        """
        image = image if image is not None else self._image
        if image is None:
            raise BoardConfigError("nothing to verify against: upload an image first or pass one")
        got = self.read_back_ff()
        expected = image.ff_weights
        differs = got != expected
        differs[-1, -1] = False
        if differs.any():
            rows, cols = np.nonzero(differs)
            mismatches = [(int(r), int(c), int(expected[r, c]), int(got[r, c])) for r, c in zip(rows, cols)]
            r, c, want, have = mismatches[0]
            raise VerifyError(
                f"FF weight read-back differs from the upload at row {r}, column {c} "
                f"({_describe_ff_entry(r, c)}): expected {want}, got {have}; {len(mismatches)} "
                "entr{} differ in total. Upload again; if it persists power-cycle the board (an "
                "incomplete block misaligns its write counters)".format("y" if len(mismatches) == 1 else "ies"),
                mismatches,
            )
        return got

    # ------------------------------------------------------------------------------------
    # Runs
    # ------------------------------------------------------------------------------------

    def prepare_events(self, events: Sequence[Sequence[int]], *, timing: str = "dt",
                       extra_steps: int | None = None, dummy_address: int | None = None
                       ) -> list[tuple[int, int]]:
        """The ``(dt, address)`` list :meth:`run` sends for these arguments (see :meth:`run`)."""
        silent = p.silent_addresses(self._image) if self._image is not None else np.zeros(0, dtype=int)
        filler = int(silent[0]) if silent.size else None
        if timing == "dt":
            dt_events = [(int(dt), int(a)) for dt, a in events]
        elif timing == "step":
            dt_events = p.events_from_steps(events, filler_address=filler)
        else:
            raise BoardConfigError(f"timing must be 'dt' or 'step'; got {timing!r}")
        if extra_steps is not None:
            if extra_steps < 0:
                raise BoardConfigError(f"extra_steps must be >= 0; got {extra_steps}")
            if not dt_events:
                raise BoardConfigError("a run needs at least one input event before the extra steps")
            dummy = dummy_address if dummy_address is not None else (filler if filler is not None else 0)
            last = int(p.release_steps(dt_events)[-1])
            steps = [(int(s), a) for s, (_, a) in zip(p.release_steps(dt_events), dt_events)]
            # The dummy is the run's last event, so it is never applied: it only marks the end.
            dt_events = p.events_from_steps(steps + [(last + extra_steps + 1, dummy)], filler_address=filler)
        if not dt_events:
            raise BoardConfigError("a run needs at least one event (the last one only marks the end)")
        p.encode_event_records(dt_events)  # validates dt and address ranges before anything is sent
        return dt_events

    def run(self, events: Sequence[Sequence[int]], *, timing: str = "dt", extra_steps: int | None = None,
            dummy_address: int | None = None) -> p.RunResult:
        """Run the board on an event list and return its spikes.

        Parameters
        ----------
        events : sequence of (int, int)
            ``(dt, address)`` pairs (``timing="dt"``, the board's own form) or
            ``(release_step, address)`` pairs (``timing="step"``, steps strictly increasing:
            simultaneous inputs must already be serialised, one per timestep).
        timing : {"dt", "step"}
        extra_steps : int, optional
            ``None`` (default) sends the events as given: the last one then only marks the end
            of the run and is **never applied** (§5). An integer ``K`` appends a dummy event so
            every given event is applied and the result covers ``K`` steps after the last one's
            release step (its effect can first show as a spike 2 steps after release).
        dummy_address : int, optional
            Address of that dummy (default: a silent address of the uploaded image, else 0).

        Returns
        -------
        RunResult
            ``r_last`` frames, where ``r_last`` is the release step of the last event sent.
        """
        dt_events = self.prepare_events(events, timing=timing, extra_steps=extra_steps, dummy_address=dummy_address)
        steps = p.release_steps(dt_events)
        frames = [frame for _, frame in self._iter_run(dt_events)]
        array = np.array(frames, dtype=bool).reshape(len(frames), p.FRAME_BITS)
        return p.RunResult(frames=array, events=dt_events, release_steps=steps)

    def iter_run(self, events: Sequence[Sequence[int]], *, timing: str = "dt", extra_steps: int | None = None,
                 dummy_address: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Like :meth:`run`, but yield ``(step, frame)`` as each 90-bit frame arrives.

        ``frame`` is a bool array of 90 (bit ``j`` is neuron ``k = j + 4``). Stopping the
        iteration early is allowed: the rest of the stream is drained before the next command.
        """
        dt_events = self.prepare_events(events, timing=timing, extra_steps=extra_steps, dummy_address=dummy_address)
        return self._iter_run(dt_events)

    def _iter_run(self, dt_events: list[tuple[int, int]]) -> Iterator[tuple[int, np.ndarray]]:
        steps = p.release_steps(dt_events)
        r_last = int(steps[-1])
        expected = p.stream_bytes_for_run(r_last)
        self._settle_input("a run")
        # Send what fits in the board's queue; the rest follows as frames show events leaving it.
        first = min(len(dt_events), _MAX_IN_FLIGHT)
        message = p.encode_events(dt_events[:first], terminate=(first == len(dt_events)))
        self._write(message, "the run's events")
        sent = first
        decoder = p.SpikeStreamDecoder(max_frames=r_last)
        started = time.monotonic()
        last_byte = started
        # Deadline for the whole stream, checked whether bytes arrive or not: its board time
        # plus generous slack. Time the caller spends between two yielded frames is not counted.
        deadline = started + self.timeout + 2 * ((r_last + 2) * p.TIMESTEP_S + len(dt_events) * 3 * p.BYTE_TIME_S)
        complete = False
        try:
            while decoder.data_bytes < expected:
                chunk = self._read_available("during a run")
                now = time.monotonic()
                if chunk:
                    last_byte = now
                    try:
                        frames = decoder.feed_array(chunk)
                    except ProtocolError as exc:
                        raise self._fail(exc) from None
                    first_step = decoder.frames_decoded - len(frames)
                    for i, frame in enumerate(frames):
                        paused = time.monotonic()
                        yield first_step + i, frame
                        away = time.monotonic() - paused
                        deadline += away
                        last_byte += away
                        now += away
                    if sent < len(dt_events):
                        released = int(np.searchsorted(steps, decoder.frames_decoded, side="right"))
                        room = _MAX_IN_FLIGHT - (sent - released)
                        if room > 0:
                            batch = dt_events[sent:sent + room]
                            sent += len(batch)
                            tail = p.EVENT_TERMINATOR if sent == len(dt_events) else b""
                            self._write(p.encode_event_records(batch) + tail, "the run's events")
                elif now - last_byte > self.timeout:
                    raise self._fail(self._stream_timeout(decoder, expected, r_last, now - started))
                if decoder.data_bytes < expected and now > deadline:
                    raise self._fail(self._stream_overrun(decoder, expected, r_last, now - started))
                if chunk and len(chunk) < 32:
                    time.sleep(0.002)  # a paced stream: batch bytes instead of spinning per byte
            if decoder.data_bytes > expected:
                raise self._fail(ProtocolError(
                    f"the run's stream was {decoder.data_bytes} bytes after the marker, {expected} were "
                    "expected; is another program using the port?", offset=expected + 1))
            complete = True
        finally:
            if not complete and self.is_open:
                # The caller stopped iterating early. Let the run end normally (its remaining
                # events and terminator must still go out) and drain the rest of its stream
                # before the next command.
                try:
                    if sent < len(dt_events):
                        self._write(p.encode_event_records(dt_events[sent:]) + p.EVENT_TERMINATOR,
                                    "the rest of the run's events")
                    marker = 0 if decoder.started else 1
                    self._owed_bytes = max(expected - decoder.data_bytes, 0) + marker
                except HardwareError:
                    pass  # the port is closed already; nothing is owed any more

    def _stream_timeout(self, decoder: p.SpikeStreamDecoder, expected: int, r_last: int,
                        waited: float) -> BoardTimeoutError:
        """The board fell silent before the run's stream was complete."""
        if not decoder.started:
            return BoardTimeoutError(
                f"the board did not start the run: no start marker 0xFF within {waited:.1f} s after the "
                f"events were sent. Is the FPGA programmed, and is {self.port} its UART (on a Cmod A7 "
                "the second FTDI interface)?", received=0, expected=expected + 1, waited_s=waited)
        return BoardTimeoutError(
            f"the spike stream stopped after {decoder.data_bytes} of {expected} bytes (frame "
            f"{decoder.frames_decoded} of {r_last}) and the board was silent for {self.timeout:g} s; "
            "it may have been reset or unplugged. Reconnect and upload again",
            received=decoder.data_bytes, expected=expected, waited_s=waited)

    def _stream_overrun(self, decoder: p.SpikeStreamDecoder, expected: int, r_last: int,
                        waited: float) -> BoardTimeoutError:
        """Bytes kept arriving, but the run's stream was not complete by its deadline."""
        if not decoder.started:
            return BoardTimeoutError(
                f"the device on {self.port} kept sending ({decoder.skipped_zero_bytes:,} bytes in "
                f"{waited:.1f} s, all 0x00) but never the run's start marker 0xFF. A NeuroCoreX board "
                "sends one 0x00 at power-up, nothing more: check the baud rate (1,000,000), that the "
                "FPGA is programmed with NeuroCoreX, and that this is the board's UART port",
                received=decoder.bytes_fed, expected=expected + 1, waited_s=waited)
        return BoardTimeoutError(
            f"the run's spike stream was incomplete after {waited:.1f} s ({decoder.data_bytes} of "
            f"{expected} bytes, frame {decoder.frames_decoded} of {r_last}) although the board kept "
            "sending; it sends far slower than its 0.96 ms timestep allows. Check the baud rate "
            "(1,000,000) and that the FPGA runs NeuroCoreX",
            received=decoder.data_bytes, expected=expected, waited_s=waited)

    def stream(self) -> "StreamingRun":
        """Start an open-ended run (no terminator yet); see :class:`StreamingRun`."""
        return StreamingRun(self)


class StreamingRun:
    """An open-ended run: send events while frames come back, then :meth:`finish`.

    The board keeps the run going while events keep arriving (§5, read from the RTL). Frames
    are decoded as they come. When the event queue runs empty on a real board, timesteps go on
    while the ``dt`` count pauses, so keep sending ahead of time.

    Examples
    --------
    >>> with driver.stream() as live:                               # doctest: +SKIP
    ...     live.send([(0, 2), (3, 4)])
    ...     for step, frame in live.poll(0.1): ...
    ...     tail = live.finish(extra_steps=5)
    """

    def __init__(self, driver: NeuroCoreXDriver) -> None:
        self._driver = driver
        self._events: list[tuple[int, int]] = []
        self._decoder = p.SpikeStreamDecoder()
        self._finished = False
        self._backlog: list[tuple[int, np.ndarray]] = []
        self._started = time.monotonic()
        driver._settle_input("a streaming run")
        driver._write(bytes([p.OP_EVENTS]), "the start of a streaming run")

    @property
    def frames_received(self) -> int:
        """Full frames decoded so far."""
        return self._decoder.frames_decoded

    @property
    def events_sent(self) -> list[tuple[int, int]]:
        """Every ``(dt, address)`` event sent so far."""
        return list(self._events)

    def send(self, events: Sequence[Sequence[int]]) -> None:
        """Append ``(dt, address)`` events to the running run."""
        if self._finished:
            raise BoardConfigError("this streaming run has finished; start a new one with driver.stream()")
        events = [(int(dt), int(a)) for dt, a in events]
        record_bytes = p.encode_event_records(events)
        while self._in_flight() + len(events) > _MAX_IN_FLIGHT:
            self._pump(self._driver.timeout, require=True)  # wait for events to leave the queue
        self._driver._write(record_bytes, "streamed events")
        self._events += events

    def _in_flight(self) -> int:
        steps = p.release_steps(self._events)
        return len(self._events) - int(np.searchsorted(steps, self._decoder.frames_decoded, side="right"))

    def _decode(self, chunk: bytes) -> int:
        try:
            frames = self._decoder.feed_array(chunk)
        except ProtocolError as exc:
            raise self._driver._fail(exc) from None
        first = self._decoder.frames_decoded - len(frames)
        self._backlog += [(first + i, f) for i, f in enumerate(frames)]
        return len(frames)

    def _pump(self, wait_s: float, require: bool = False) -> None:
        """Read and decode for up to ``wait_s``; with ``require``, until at least one new frame."""
        end = time.monotonic() + wait_s
        while True:
            chunk = self._driver._read_available("during a streaming run")
            if chunk and self._decode(chunk) and require:
                return
            if time.monotonic() >= end:
                if require:
                    raise self._driver._fail(BoardTimeoutError(
                        f"the board's event queue is full and it sent no frame for {wait_s:g} s during a "
                        "streaming run; reconnect and retry", waited_s=wait_s))
                return

    def poll(self, wait_s: float = 0.0) -> list[tuple[int, np.ndarray]]:
        """Frames that arrived, waiting up to ``wait_s`` seconds; ``[(step, frame), ...]``."""
        self._pump(wait_s)
        out, self._backlog = self._backlog, []
        return out

    def finish(self, extra_steps: int = 0, dummy_address: int | None = None) -> list[tuple[int, np.ndarray]]:
        """End the run: a dummy event ``extra_steps`` after the last one, then ``FF FF FF``.

        Returns the frames that arrived since the last :meth:`poll`, up to the end of the run.
        """
        if self._finished:
            return []
        driver = self._driver
        if dummy_address is None:
            silent = p.silent_addresses(driver.image) if driver.image is not None else np.zeros(0, int)
            dummy_address = int(silent[0]) if silent.size else 0
        tail = [(int(extra_steps), int(dummy_address))] if self._events else []
        if extra_steps > 255:
            raise BoardConfigError("extra_steps of a streaming run must be 0..255")
        driver._write(p.encode_event_records(tail) + p.EVENT_TERMINATOR, "the end of a streaming run")
        self._events += tail
        self._finished = True
        r_last = int(p.release_steps(self._events)[-1]) if self._events else 0
        expected = p.stream_bytes_for_run(r_last)
        start = last = time.monotonic()
        # The rest of the run takes at most its remaining board time (an upper bound: all of
        # it); a device that keeps sending past this deadline is not a NeuroCoreX board.
        remaining_steps = max(r_last - self._decoder.frames_decoded, 0) + 2
        deadline = start + driver.timeout + 2 * remaining_steps * p.TIMESTEP_S
        while True:
            chunk = driver._read_available("at the end of a streaming run")
            now = time.monotonic()
            if chunk:
                last = now
                self._decode(chunk)
            silent_for = now - last
            if self._decoder.data_bytes >= expected and silent_for > 0.1:
                # The stream ended. A real board whose queue ran dry streamed extra idle frames
                # while the dt count paused; those are kept.
                out, self._backlog = self._backlog, []
                return out
            if silent_for > driver.timeout:
                raise driver._fail(driver._stream_timeout(self._decoder, expected, r_last, now - self._started))
            if now > deadline:
                if self._decoder.data_bytes < expected:
                    raise driver._fail(driver._stream_overrun(self._decoder, expected, r_last, now - start))
                raise driver._fail(BoardTimeoutError(
                    f"the board kept sending after the end of the streaming run: "
                    f"{self._decoder.data_bytes:,} bytes after the marker, {expected:,} expected for "
                    f"{r_last} steps, still arriving {now - start:.1f} s after the end was sent. Is "
                    "the FPGA running NeuroCoreX, at 1,000,000 baud?",
                    received=self._decoder.data_bytes, expected=expected, waited_s=now - start))

    def __enter__(self) -> "StreamingRun":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and not self._finished and self._driver.is_open:
            self.finish()
