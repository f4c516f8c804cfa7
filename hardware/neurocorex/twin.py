"""Bit-exact digital twin of the NeuroCoreX board (spec §2-§7).

:class:`NeuroCoreXTwin` consumes the bytes a host sends (incrementally, through
:class:`~hardware.neurocorex.protocol.HostStreamParser`) and produces the bytes the board would
send back: the power-up ``0x00``, the ``0xFF`` run marker, the packed 90-bit frames, and the
9215-byte FF weight read-back. Fed the recorded stimulus of ``shared/specs/vectors`` it gives the
recorded board bytes exactly.

All arithmetic is on raw integers as on the board: membrane, threshold, leak, bias and synaptic
currents are signed 18-bit Q7.10 values that **wrap** (no saturation anywhere); weights are int8.
One timestep updates all 96 slots with a handful of numpy operations.

Board quirks reproduced (each is marked in the code where it happens)
--------------------------------------------------------------------
* Index offsets: FF/AA weight row of neuron ``k`` is ``k + 2``, AA pre column ``j + 1``, output
  frame bit ``k - 4``; only ``k = 4..93`` can fire.
* FF synaptic gain ``G`` is refractory entry 0, bits 7..0; the leak is tau entry 8 and is a
  global *subtractive* constant with no floor, so idle neurons drift down, wrap from -128 to
  about +127 and fire (with leak 5 at step 26).
* The threshold test uses the previous membrane plus bias, before this step's input: an input
  released at step ``t`` changes the membrane at ``t + 1`` and can make the neuron fire at ``t + 2``.
* Reset to 0 on a spike; input arriving in the firing step is lost. After a spike a neuron
  cannot fire for ``max(Tref, 1)`` steps (minimum inter-spike interval 2, even with Tref 0) but
  keeps integrating. Refractory counters are *not* cleared between runs.
* Adjacent-neuron artefact: when neuron ``k`` fires, the FF input of ``k + 1`` in that step is zeroed.
* Recurrent current accumulates while other neurons keep spiking and is dropped after a step in
  which no *other* neuron spiked.
* Bias goes to neuron ``k = debug_index + 3``.
* Event queue: one event released per step (``dt = 0`` means the next step); the run ends when the
  last event leaves the queue (step ``r_last``) and that event is never applied. The board stops
  *before* it processes step ``r_last``: steps ``0 .. r_last - 1`` are computed and sent as full
  frames, followed by an 89-bit partial frame (sent as zeros) whose final partial byte is never
  sent, so a run's stream is ``(90 * (r_last + 1) - 1) // 8`` bytes. Neuron state, refractory
  counters included, carries into the next run as it stood after step ``r_last - 1``. The queue
  holds 1024 events.
* STDP as built (§7): FF passes address the FF RAM transposed; FF LTP counts an input released
  1..``tpre_FF`` steps before the post spike; FF LTD is written in the step the input is released
  and lands in row 3; AA LTP as read from the RTL; AA LTD addresses a row past the RAM and
  changes nothing.

Modes
-----
``auto_advance=True`` (default): the twin is untimed; it steps a run as far as the bytes received
so far determine it (as if the host were infinitely fast compared with the 0.96 ms timestep,
which is what the recorded vectors show). ``auto_advance=False``: nothing steps until
:meth:`NeuroCoreXTwin.tick` is called, one call per board timestep, so a timed emulator can
reproduce wall-clock effects (an empty queue pausing the ``dt`` count in open-ended runs, a
read-back interrupting a run).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from hardware.neurocorex import protocol as p

_NEVER = -(1 << 40)  # "this trace was never set": every gap test fails
_HALF = 1 << (p.Q_BITS - 1)
_MASK = p.Q_MODULUS - 1

# Output chunk kinds returned by NeuroCoreXTwin.take_output_chunks().
POWER_UP = "power_up"
MARKER = "marker"
FRAMES = "frames"
READBACK = "readback"


def _wrap(x: np.ndarray) -> np.ndarray:
    """Signed 18-bit wrap of an int64 array (two's complement arithmetic of the board)."""
    return ((x + _HALF) & _MASK) - _HALF


def _wrap8(x: np.ndarray) -> np.ndarray:
    return (((x + 128) & 0xFF) - 128).astype(np.int8)


def _add_where_enabled(weights: np.ndarray, enable: np.ndarray, ix, dw: int) -> bool:
    """LTP on a block: ``weights[ix] += dw`` (8-bit wrap) where the enable bit is set."""
    enabled = enable[ix]
    if not enabled.any():
        return False
    block = weights[ix]
    weights[ix] = np.where(enabled, _wrap8(block.astype(np.int64) + dw), block)
    return True


class NeuroCoreXTwin:
    """Digital twin of one NeuroCoreX board.

    Parameters
    ----------
    image : BoardImage, optional
        Configuration to load at power-up (as if the host had uploaded it, STDP enables
        included). Default: the board's power-up defaults.
    power_up_byte : bool
        Emit the stray ``0x00`` the board sends once at power-up (first output byte).
    auto_advance : bool
        Step runs as far as the received bytes determine (untimed); see the module docstring.

    Examples
    --------
    >>> twin = NeuroCoreXTwin()
    >>> twin.feed(image.to_bytes() + encode_events(events))      # doctest: +SKIP
    >>> board_bytes = twin.take_output()                          # doctest: +SKIP
    """

    def __init__(self, image: p.BoardImage | None = None, *, power_up_byte: bool = True,
                 auto_advance: bool = True) -> None:
        self.auto_advance = auto_advance
        self._parser = p.HostStreamParser()
        self._output: list[tuple[str, bytes]] = []
        if power_up_byte:
            self._output.append((POWER_UP, bytes([p.POWER_UP_BYTE])))

        defaults = p.BoardImage()
        # Configuration, raw board units.
        self._thresholds = p.q710_encode(defaults.thresholds)
        self._refractory = defaults.wire_refractory()  # entry 0 doubles as the FF gain
        self._tau = p.q710_encode(defaults.wire_tau())
        self._stdp_words = defaults.stdp_words
        self._bias = 0
        self._debug_index = 0
        self._ff = defaults.ff_weights.copy()
        self._aa = defaults.aa_weights.copy()
        self._enable_ff = np.zeros((p.N_SLOTS, p.N_INPUTS), dtype=bool)
        self._enable_aa = np.zeros((p.N_SLOTS, p.N_SLOTS), dtype=bool)
        self._stdp_any = False
        self._weights_changed()

        # Neuron state. The refractory counter persists across runs (quirk, §5).
        self._v = np.zeros(p.N_SLOTS, dtype=np.int64)
        self._isyn = np.zeros(p.N_SLOTS, dtype=np.int64)
        self._refr = np.zeros(p.N_SLOTS, dtype=np.int64)
        self._prev_spikes = np.zeros(p.N_SLOTS, dtype=bool)
        self._applied_input: int | None = None  # address released in the previous step
        self._can_fire = np.zeros(p.N_SLOTS, dtype=bool)
        self._can_fire[p.FIRST_NEURON:p.LAST_NEURON + 1] = True

        # Run state.
        self._run_active = False
        self._queue: deque[tuple[int, int]] = deque()
        self._counter = 0
        self._armed = False
        self._step_index = 0
        self._runs_started = 0
        self._bit_backlog = np.zeros(0, dtype=np.uint8)
        self._pending_frames: list[np.ndarray] = []
        self._run_frames: list[np.ndarray] = []
        self.dropped_events = 0

        # STDP traces: time of the last pre/post spike on a clock that advances once per step.
        self._clock = 0
        self._ff_pre_last = np.full(p.N_INPUTS, _NEVER, dtype=np.int64)
        self._aa_pre_last = np.full(p.N_SLOTS, _NEVER, dtype=np.int64)
        self._post_last = np.full(p.N_SLOTS, _NEVER, dtype=np.int64)

        if image is not None:
            self.feed(image.to_bytes(include_stdp_enable=True))

    # ------------------------------------------------------------------------------------
    # Public API
    # ------------------------------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Consume host bytes (any chunking). Output accumulates; see :meth:`take_output`."""
        for item in self._parser.feed(data):
            self._handle(item)
            if self.auto_advance:
                self._advance()
        self._flush_frames()

    def take_output(self) -> bytes:
        """Return and clear every byte the board has sent since the last call."""
        return b"".join(chunk for _, chunk in self.take_output_chunks())

    def take_output_chunks(self) -> list[tuple[str, bytes]]:
        """Return and clear the output as ``(kind, bytes)`` chunks.

        ``kind`` is ``"power_up"``, ``"marker"``, ``"frames"`` or ``"readback"``, so an emulator
        can pace each kind the way the board does.
        """
        self._flush_frames()
        out, self._output = self._output, []
        return out

    def tick(self) -> bool:
        """Advance the active run by one timestep (timed mode). Returns False when no run is active.

        Unlike the untimed mode, a step is taken even when the queue is empty (the ``dt`` count
        pauses, §5) or holds only the last event of an open-ended run (it is released and applied).
        """
        if not self._run_active:
            return False
        self._step()
        self._flush_frames()
        return True

    def run(self, events, terminate: bool = True) -> p.RunResult:
        """Convenience: send one run of ``(dt, address)`` events and decode the board's answer.

        Returns the frames exactly as a host decodes them: ``r_last`` full frames, the steps
        ``0 .. r_last - 1`` the board computed (it stops before step ``r_last``).
        """
        events = [(int(dt), int(a)) for dt, a in events]
        self._flush_frames()
        start = len(self._output)  # earlier output stays queued for take_output()
        self.feed(p.encode_events(events, terminate=terminate))
        chunks = [c for kind, c in self._output[start:] if kind in (MARKER, FRAMES)]
        del self._output[start:]
        steps = p.release_steps(events)
        r_last = int(steps[-1]) if len(steps) else 0
        decoder = p.SpikeStreamDecoder(max_frames=r_last if terminate else None)
        frames = decoder.feed_array(b"".join(chunks))
        return p.RunResult(frames=frames, events=events, release_steps=steps)

    def poke_ff_weight(self, row: int, column: int, value: int) -> None:
        """Overwrite one cell of the FF weight RAM directly (test hook: a corrupted RAM cell)."""
        self._ff[int(row), int(column)] = np.int8(int(value))
        self._weights_changed()

    @property
    def run_active(self) -> bool:
        """True between a run's ``0x30`` and its end."""
        return self._run_active

    @property
    def runs_started(self) -> int:
        """How many runs have started since power-up."""
        return self._runs_started

    @property
    def step_index(self) -> int:
        """Timesteps computed in the current (or last) run."""
        return self._step_index

    @property
    def queued_events(self) -> int:
        """Events waiting in the board's queue."""
        return len(self._queue)

    @property
    def last_run_frames(self) -> np.ndarray:
        """Every frame computed in the current or last run, ``[steps, 90]`` bool.

        After a run has ended this is ``r_last`` frames: the board never computes step ``r_last``.
        """
        if not self._run_frames:
            return np.zeros((0, p.FRAME_BITS), dtype=bool)
        return np.array(self._run_frames, dtype=bool)

    @property
    def ff_weights(self) -> np.ndarray:
        """The FF weight RAM (a copy); STDP may have changed it."""
        return self._ff.copy()

    @property
    def aa_weights(self) -> np.ndarray:
        """The AA weight RAM (a copy)."""
        return self._aa.copy()

    @property
    def membrane(self) -> np.ndarray:
        """Membrane potentials of the 96 slots in membrane units (float)."""
        return self._v / p.Q_SCALE

    @property
    def refractory_counters(self) -> np.ndarray:
        """The per-slot refractory counters (0 = may fire)."""
        return self._refr.copy()

    @property
    def image(self) -> p.BoardImage:
        """The configuration the board holds now, as a :class:`BoardImage`."""
        words = self._stdp_words
        return p.BoardImage(
            thresholds=p.q710_decode(self._thresholds),
            refractory=self._refractory.copy(),
            gain=int(self._refractory[p.GAIN_REFRACTORY_ENTRY]) & 0xFF,
            leak=float(p.q710_decode(int(self._tau[p.LEAK_TAU_ENTRY]))),
            bias=float(p.q710_decode(int(self._bias))),
            debug_index=self._debug_index & 0xFF,
            ff_weights=self._ff,
            aa_weights=self._aa,
            tpre_ff=int(words[0] & 0xFF), tpost_ff=int(words[0] >> 8 & 0xFF),
            tpre_aa=int(words[1] & 0xFF), tpost_aa=int(words[1] >> 8 & 0xFF),
            dw_pos=int(words[2] & 0xFF), dw_neg=int(words[2] >> 8 & 0xFF),
            stdp_enable_ff=self._enable_ff,
            stdp_enable_aa=self._enable_aa,
        )

    # ------------------------------------------------------------------------------------
    # Command handling
    # ------------------------------------------------------------------------------------

    def _handle(self, item) -> None:
        if isinstance(item, p.RunStart):
            if not self._run_active:
                self._start_run()
            # A second 0x30 while a run is still stepping (only possible when timed): the
            # board has one event queue, so its events join the running run (unverified guess).
        elif isinstance(item, p.EventRecord):
            if not self._run_active:
                return
            if len(self._queue) >= p.QUEUE_CAPACITY:
                self.dropped_events += 1  # the board drops events silently when its queue is full
            else:
                self._queue.append((item.dt, item.address))
        elif isinstance(item, p.RunTerminator):
            if self._run_active:
                self._armed = True
                if not self._queue:
                    # Only reachable with no events at all, or when a timed open-ended run's
                    # queue already ran dry: nothing is left to leave the queue, so stop now.
                    self._end_run()
        elif isinstance(item, p.ReadBack):
            if self._run_active:
                # §5 [verified]: a read-back during a run switches to read-back at once; the
                # spike stream stops (the partial byte is lost) and no marker precedes the weights.
                self._end_run()
            self._output.append((READBACK, self._ff.reshape(-1)[: p.READBACK_BYTES].view(np.uint8).tobytes()))
        elif isinstance(item, p.WriteFFWeights):
            self._ff = np.array(item.weights, dtype=np.int8)
            self._weights_changed()
        elif isinstance(item, p.WriteAAWeights):
            self._aa = np.array(item.weights, dtype=np.int8)
            self._aa_pre_last[:] = _NEVER  # loading AA weights clears the recurrent STDP traces (§2)
            self._weights_changed()
        elif isinstance(item, p.WriteParameters):
            self._thresholds = p.q710_encode(item.thresholds)
            self._refractory = np.asarray(item.refractory, dtype=np.int64).copy()
            self._tau = p.q710_encode(item.tau)
            self._stdp_words = np.asarray(item.stdp_words, dtype=np.int64).copy()
        elif isinstance(item, p.WriteDebug):
            self._bias = int(p.q710_encode(float(item.bias)))
            self._debug_index = int(item.debug_index)
        elif isinstance(item, p.WriteSTDPEnable):
            # The board applies these slowly and only between runs; the twin applies them at once.
            self._enable_aa = np.array(item.aa_enable, dtype=bool)
            self._enable_ff = np.array(item.ff_enable, dtype=bool)
            self._stdp_any = bool(self._enable_aa.any() or self._enable_ff.any())
        # UnusedCommand: the board drops the header and the next byte; so do we.

    def _weights_changed(self) -> None:
        """Rebuild the per-slot views of the weight RAMs used by the datapath.

        ``ff_view[k, a] = W_FF[k + 2, a]`` and ``aa_view[k, j] = W_AA[k + 2, j + 1]`` (index
        offsets, §4); slots whose row or column falls outside the RAM get 0.
        """
        ff_view = np.zeros((p.N_SLOTS, p.N_INPUTS), dtype=np.int64)
        ff_view[: p.N_SLOTS - p.FF_ROW_OFFSET] = self._ff[p.FF_ROW_OFFSET:]
        aa_view = np.zeros((p.N_SLOTS, p.N_SLOTS), dtype=np.int64)
        aa_view[: p.N_SLOTS - p.FF_ROW_OFFSET, : p.N_SLOTS - p.AA_COLUMN_OFFSET] = \
            self._aa[p.FF_ROW_OFFSET:, p.AA_COLUMN_OFFSET:]
        self._ff_view = ff_view
        self._aa_view = aa_view

    # ------------------------------------------------------------------------------------
    # Runs
    # ------------------------------------------------------------------------------------

    def _start_run(self) -> None:
        # Between runs membrane and synaptic state are cleared; the refractory counters,
        # weights, parameters and STDP traces persist (§5, verified).
        self._run_active = True
        self._runs_started += 1
        self._v[:] = 0
        self._isyn[:] = 0
        self._prev_spikes[:] = False
        self._applied_input = None
        self._queue.clear()
        self._counter = 0
        self._armed = False
        self._step_index = 0
        self._bit_backlog = np.zeros(0, dtype=np.uint8)
        self._pending_frames = []
        self._run_frames = []
        self._output.append((MARKER, bytes([p.START_MARKER])))

    def _end_run(self) -> None:
        self._flush_frames()
        # The board never sends the final partial byte (§3).
        self._bit_backlog = np.zeros(0, dtype=np.uint8)
        self._run_active = False
        self._queue.clear()
        self._armed = False

    def _can_step_untimed(self) -> bool:
        """Whether the next step is fully determined by the bytes received so far."""
        if not self._run_active:
            return False
        if not self._queue:
            return False  # open-ended run waiting for events (an armed run has already ended)
        dt, _ = self._queue[0]
        if self._counter == dt and len(self._queue) == 1 and not self._armed:
            # Releasing the only queued event: whether it is the run's last one (never applied)
            # depends on whether a terminator or another event follows; wait for more bytes.
            return False
        return True

    def _advance(self) -> None:
        while self._can_step_untimed():
            self._step()

    def _step(self) -> None:
        """Compute one timestep of the active run: queue, neurons, STDP, output bits."""
        # --- Event queue (§5): at most one release per step; dt counts the steps in between.
        released: int | None = None
        if self._queue:
            dt, address = self._queue[0]
            if self._counter == dt:
                self._queue.popleft()
                self._counter = 0
                if not self._queue and self._armed:
                    # §5 [verified]: the last event ends the run and is never applied, and the
                    # board stops *before* processing this step (r_last): no neuron update, no
                    # STDP; the state stays as it stood after step r_last - 1. What follows on
                    # the wire is a partial frame one bit short of 90 (its content is discarded
                    # by every host; the twin sends zeros, as in every recorded vector).
                    self._pending_frames.append(np.zeros(p.PARTIAL_FRAME_BITS, dtype=bool))
                    self._end_run()
                    return
                released = address
            else:
                self._counter += 1
        # (queue empty: the dt count pauses)

        # --- Neurons (§6).
        fire = self._neuron_update()
        if self._stdp_any:
            self._stdp_update(fire, released)
        self._clock += 1

        frame = fire[p.FIRST_NEURON:p.LAST_NEURON + 1].copy()
        self._pending_frames.append(frame)
        self._run_frames.append(frame)
        self._prev_spikes = fire
        # An input released now reaches the neurons in the next step.
        self._applied_input = released
        self._step_index += 1

    def _neuron_update(self) -> np.ndarray:
        """One step of every slot; returns the spike vector (bool, 96)."""
        v = self._v
        u = v.copy()
        bias_slot = (self._debug_index & 0xFF) + 3  # bias on k = debug_index + 3
        if bias_slot < p.N_SLOTS:
            u[bias_slot] += self._bias
        u = _wrap(u)

        # Threshold test on the previous membrane plus bias, before this step's input.
        fire = self._can_fire & (u >= self._thresholds) & (self._refr == 0)

        # Feed-forward current from the input released in the previous step, times the gain.
        a = self._applied_input
        if a is not None and 0 <= a < p.N_INPUTS:
            gain = int(self._refractory[p.GAIN_REFRACTORY_ENTRY]) & 0xFF
            i_ff = self._ff_view[:, a] * (gain * p.Q_SCALE)
            # Adjacent-neuron artefact [verified]: a spike of k zeroes the FF input of k + 1.
            i_ff[1:][fire[:-1]] = 0
        else:
            i_ff = 0

        # Recurrent current [verified]: accumulates while some *other* neuron spiked in the
        # previous step, otherwise it is dropped. No decay (delta synapses), AA gain 1.
        prev = self._prev_spikes
        n_prev = int(prev.sum())
        if n_prev:
            drive = self._aa_view[:, prev].sum(axis=1) * p.Q_SCALE
            others = (n_prev - prev) > 0
            self._isyn = np.where(others, _wrap(self._isyn + drive), 0)
        else:
            self._isyn[:] = 0

        leak = int(self._tau[p.LEAK_TAU_ENTRY])  # global subtractive leak, no floor
        integrated = _wrap(u - leak + self._isyn + i_ff)
        # Reset to 0 on a spike; input arriving in the firing step is lost.
        self._v = np.where(fire, 0, integrated)

        # Refractory counter: 1 on a spike, counts up to Tref, then 0. A neuron may fire only at
        # 0, so even Tref = 0 blocks the step after a spike (minimum ISI 2).
        r = self._refr
        tref = self._refractory
        counting = (r >= 1) & (r < tref)
        self._refr = np.where(fire, 1, np.where(counting, r + 1, np.where(r >= tref, 0, r)))
        return fire

    def _stdp_update(self, fire: np.ndarray, pre_input: int | None) -> None:
        """STDP as built (§7). Runs after the neuron update of the step; windows count 1..max.

        ``pre_input`` is the address released in *this* step: for STDP an input's spike time is
        its release step (its current reaches the membranes one step later, §6). A neuron's
        spike time is the step of its output bit.

        * FF LTP [verified]: for a spike of ``k`` and an input ``a`` released 1..tpre_FF steps
          earlier (a gap of one step counts, ``tpre_FF + 1`` does not), in the step of the
          spike, ``W_FF[a, k + 1] += dw_pos`` if enable bit ``FF[a, k + 1]`` is set (the RAM is
          addressed *transposed*: the synapse in use, ``W_FF[k + 2, a]``, is not touched).
          int8 wrap-around: 127 + 1 becomes -128 (the cap compares wrapped sums).
        * FF LTD [verified]: in the step input ``a`` is released, for every ``k`` that spiked
          1..tpost_AA steps earlier: ``W_FF[3, k + 1] = max(W_FF[a, k + 1] - dw_neg, -1)`` if
          enable bit ``FF[a, k + 1]`` is set: it reads row ``a`` but writes row 3.
          ``tpost_FF`` is unused.
        * AA LTP (from the RTL, unverified): for a spike of ``k`` and a neuron ``j`` that spiked
          1..tpre_AA steps earlier, ``W_AA[k + 2, j + 1] += dw_pos`` if enabled, int8 wrap.
        * AA LTD (from the RTL, unverified): the pass addresses row 96, one past the RAM, so it
          changes nothing on the board; the twin does nothing.
        """
        words = self._stdp_words
        tpre_ff = int(words[0] & 0xFF)
        tpre_aa, tpost_aa = int(words[1] & 0xFF), int(words[1] >> 8 & 0xFF)
        dw_pos, dw_neg = int(words[2] & 0xFF), int(words[2] >> 8 & 0xFF)
        now = self._clock
        fired = np.flatnonzero(fire)
        changed = False

        if fired.size and tpre_ff:
            gap = now - self._ff_pre_last
            pres = np.flatnonzero((gap >= 1) & (gap <= tpre_ff))
            cols = fired + 1
            cols = cols[cols < p.N_SLOTS]
            if pres.size and cols.size:
                changed |= _add_where_enabled(self._ff, self._enable_ff, np.ix_(pres, cols), dw_pos)

        if pre_input is not None and 0 <= pre_input < p.N_INPUTS and tpost_aa:
            gap = now - self._post_last
            posts = np.flatnonzero((gap >= 1) & (gap <= tpost_aa))
            cols = posts + 1
            cols = cols[cols < p.N_SLOTS]
            enabled = self._enable_ff[pre_input, cols]
            if enabled.any():
                cols = cols[enabled]
                source = self._ff[pre_input, cols].astype(np.int64)
                self._ff[3, cols] = np.maximum(source - dw_neg, -1).astype(np.int8)  # row-3 quirk
                changed = True

        if fired.size and tpre_aa:
            gap = now - self._aa_pre_last
            pres = np.flatnonzero((gap >= 1) & (gap <= tpre_aa))
            rows = fired + p.FF_ROW_OFFSET
            rows = rows[rows < p.N_SLOTS]
            cols = pres + p.AA_COLUMN_OFFSET
            cols = cols[cols < p.N_SLOTS]
            if rows.size and cols.size:
                changed |= _add_where_enabled(self._aa, self._enable_aa, np.ix_(rows, cols), dw_pos)

        if pre_input is not None and 0 <= pre_input < p.N_INPUTS:
            self._ff_pre_last[pre_input] = now
        self._post_last[fired] = now
        self._aa_pre_last[fired] = now
        if changed:
            self._weights_changed()

    # ------------------------------------------------------------------------------------
    # Output
    # ------------------------------------------------------------------------------------

    def _flush_frames(self) -> None:
        """Pack pending frame bits, LSB first and unaligned, into whole bytes of output."""
        if not self._pending_frames:
            return
        bits = np.concatenate([self._bit_backlog, np.concatenate(self._pending_frames).astype(np.uint8)])
        self._pending_frames = []
        n_bytes = bits.size // 8
        if n_bytes:
            self._output.append((FRAMES, np.packbits(bits[: n_bytes * 8], bitorder="little").tobytes()))
        self._bit_backlog = bits[n_bytes * 8:]
