"""NeuroCoreX wire protocol: constants, number formats, command encoders and decoders.

Everything here is pure (no I/O, no threads): it turns configurations into the exact bytes the
board's UART decoder expects, turns host byte streams back into command objects (the digital twin
and the vector tests use that), and decodes what the board sends back (spike stream, FF weight
read-back). The facts come from ``shared/specs/NEUROCOREX.md``; section numbers (§) refer to it.

Index conventions used throughout (spec §4)
------------------------------------------
* ``k`` is a *parameter slot* 0..95 (threshold/refractory/tau index). Only ``k = 4..93`` can fire.
* FF and AA weight rows of neuron ``k`` are ``k + 2``; the AA column of pre neuron ``j`` is ``j + 1``;
  FF columns are input addresses ``a`` 0..95.
* Output frame bit ``j`` is neuron ``k = j + 4``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from hardware.errors import BoardConfigError, ProtocolError

# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------

BAUDRATE = 1_000_000
BYTE_TIME_S = 10e-6  # 10 bits per byte (start, 8 data, stop) at 1 Mbaud
TIMESTEP_S = 0.96e-3  # fixed by the board clock; the host cannot pace it (§5)
READBACK_BYTE_INTERVAL_S = 21e-6  # the read-back is slower than the line rate (§3)
STDP_ENABLE_BYTE_TIME_S = 16e-6  # the board applies enable bytes slowly (§2)

N_SLOTS = 96  # parameter slots k = 0..95
N_INPUTS = 96  # input addresses 0..95
FIRST_NEURON = 4  # lowest slot that can fire
LAST_NEURON = 93  # highest slot that can fire
N_NEURONS = LAST_NEURON - FIRST_NEURON + 1  # 90
FRAME_BITS = N_NEURONS  # one bit per neuron per timestep
FF_ROW_OFFSET = 2  # FF/AA weight row of neuron k is k + 2
AA_COLUMN_OFFSET = 1  # AA weight column of pre neuron j is j + 1
FRAME_BIT_OFFSET = FIRST_NEURON  # frame bit j is neuron j + 4

OP_FF_WEIGHTS = 0x00
OP_AA_WEIGHTS = 0x10
OP_PARAMETERS = 0x20
OP_EVENTS = 0x30
OP_DEBUG = 0x40
OP_READBACK = 0x50
OP_STDP_ENABLE = 0x60

WEIGHT_BLOCK_BYTES = N_SLOTS * N_INPUTS  # 9216
PARAMETER_RECORDS = 4 * N_SLOTS  # 384: thresholds, refractory, tau, STDP words
PARAMETER_BYTES = 3 * PARAMETER_RECORDS  # 1152
DEBUG_BYTES = 6  # two 18-bit records
STDP_ENABLE_BYTES = 2 * WEIGHT_BLOCK_BYTES // 8  # 2304: 1152 for AA, then 1152 for FF
READBACK_BYTES = WEIGHT_BLOCK_BYTES - 1  # 9215: the last weight (95, 95) is never sent
EVENT_RECORD_BYTES = 3
EVENT_TERMINATOR = b"\xff\xff\xff"
START_MARKER = 0xFF
POWER_UP_BYTE = 0x00
QUEUE_CAPACITY = 1024  # events sent while the board's queue is full are dropped silently
LEAK_TAU_ENTRY = 8  # only tau entry 8 is used, as the global subtractive leak
GAIN_REFRACTORY_ENTRY = 0  # refractory entry 0, bits 7..0, is the FF gain

Q_FRAC_BITS = 10
Q_SCALE = 1 << Q_FRAC_BITS  # 1024: a raw value of 1024 is 1.0
Q_BITS = 18
Q_MODULUS = 1 << Q_BITS
Q_MIN_RAW = -(1 << (Q_BITS - 1))  # -131072 = -128.0
Q_MAX_RAW = (1 << (Q_BITS - 1)) - 1  # 131071 = 127.9990234375
Q_MIN = Q_MIN_RAW / Q_SCALE
Q_MAX = Q_MAX_RAW / Q_SCALE
U18_MAX = Q_MODULUS - 1

# Board power-up defaults when a block is never sent (§2).
DEFAULT_THRESHOLD = 0.5
DEFAULT_REFRACTORY = 4
DEFAULT_FF_WEIGHT = 1
DEFAULT_AA_WEIGHT = 6
SILENT_THRESHOLD = 127.99  # threshold of unused neurons in the published host code and vectors


# --------------------------------------------------------------------------------------------
# Number formats
# --------------------------------------------------------------------------------------------


def wrap18(raw):
    """Wrap integers to signed 18-bit two's complement, as every adder on the board does.

    Parameters
    ----------
    raw : int or array_like of int
        Any integers.

    Returns
    -------
    int or numpy.ndarray
        Values in ``-131072 .. 131071``; ``131072`` becomes ``-131072``.
    """
    if np.isscalar(raw):
        value = int(raw) & U18_MAX
        return value - Q_MODULUS if value > Q_MAX_RAW else value
    arr = np.asarray(raw, dtype=np.int64) & U18_MAX
    return np.where(arr > Q_MAX_RAW, arr - Q_MODULUS, arr)


def q710_encode(value):
    """Convert membrane units to raw signed Q7.10, rounding to the nearest 1/1024 and wrapping.

    Out-of-range values wrap exactly as the board's 18-bit registers would (128.0 becomes
    -128.0). Use :func:`q710_check` first when wrapping would be a user error.

    Parameters
    ----------
    value : float or array_like of float

    Returns
    -------
    int or numpy.ndarray of int64
        Signed raw values in ``-131072 .. 131071``.
    """
    if np.isscalar(value):
        return wrap18(int(np.rint(float(value) * Q_SCALE)))
    return wrap18(np.rint(np.asarray(value, dtype=np.float64) * Q_SCALE).astype(np.int64))


def q710_decode(raw):
    """Convert raw Q7.10 (signed, or an unsigned 18-bit pattern) to membrane units (float).

    Parameters
    ----------
    raw : int or array_like of int
        Bit 17 is the sign; higher bits are ignored, as on the board.

    Returns
    -------
    float or numpy.ndarray of float64
    """
    wrapped = wrap18(raw)
    if np.isscalar(wrapped):
        return wrapped / Q_SCALE
    return wrapped.astype(np.float64) / Q_SCALE


def q710_check(values, name: str, index_name: str = "index") -> None:
    """Raise :class:`BoardConfigError` if a value lies outside Q7.10 (-128 .. +127.999).

    Parameters
    ----------
    values : float or array_like of float
    name : str
        What the values are ("threshold"), used in the message.
    index_name : str
        What an array index means ("neuron k"), used in the message.
    """
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    raw = np.rint(arr * Q_SCALE)
    bad = np.flatnonzero(~np.isfinite(arr) | (raw < Q_MIN_RAW) | (raw > Q_MAX_RAW))
    if bad.size:
        i = int(bad[0])
        where = f" at {index_name} {i}" if np.ndim(values) else ""
        raise BoardConfigError(
            f"{name}{where} is {arr[i]!r}, outside the board's Q7.10 range {Q_MIN:g} .. {Q_MAX:.6g}; "
            "scale the model (weights and thresholds together) so that every value fits"
        )


def pack_u18(values) -> bytes:
    """Pack 18-bit values into 3 bytes each, least significant byte first (§2).

    Negative values are written in two's complement; byte 2 carries bits 17..16 in its two low
    bits and zeros above.
    """
    arr = np.asarray(values, dtype=np.int64).ravel() & U18_MAX
    out = np.empty((arr.size, 3), dtype=np.uint8)
    out[:, 0] = arr & 0xFF
    out[:, 1] = (arr >> 8) & 0xFF
    out[:, 2] = (arr >> 16) & 0x03
    return out.tobytes()


def unpack_u18(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Unpack 3-byte little-endian records into unsigned 18-bit values (board ignores bits 23..18)."""
    arr = np.frombuffer(bytes(data), dtype=np.uint8).reshape(-1, 3).astype(np.int64)
    return arr[:, 0] | (arr[:, 1] << 8) | ((arr[:, 2] & 0x03) << 16)


def _check_int_range(values, lo: int, hi: int, name: str, index_name: str = "index") -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise BoardConfigError(f"{name} must hold whole numbers; got {arr.ravel()[:5]}...")
    elif arr.dtype.kind not in "iub":
        raise BoardConfigError(f"{name} must be integers; got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    bad = np.argwhere((arr < lo) | (arr > hi))
    if bad.size:
        idx = tuple(int(i) for i in bad[0])
        where = f" at {index_name} {idx if len(idx) > 1 else idx[0]}" if arr.ndim else ""
        raise BoardConfigError(f"{name}{where} is {int(arr[tuple(bad[0])])}, outside {lo} .. {hi}")
    return arr


def _check_shape(arr: np.ndarray, shape: tuple[int, ...], name: str) -> None:
    if arr.shape != shape:
        raise BoardConfigError(f"{name} must have shape {shape}; got {arr.shape}")


def _byte(value: int, name: str) -> int:
    value = int(value)
    if not 0 <= value <= 0xFF:
        raise BoardConfigError(f"{name} must be a byte 0..255; got {value}")
    return value


def _header(opcode: int, low_nibble: int) -> bytes:
    if not 0 <= int(low_nibble) <= 0x0F:
        raise BoardConfigError(f"the low nibble of a header is 0..15; got {low_nibble}")
    return bytes([opcode | int(low_nibble)])


# --------------------------------------------------------------------------------------------
# Encoders (host -> board)
# --------------------------------------------------------------------------------------------


def _weight_block(weights, name: str) -> bytes:
    arr = _check_int_range(weights, -128, 127, name, "row, column")
    _check_shape(arr, (N_SLOTS, N_INPUTS), name)
    return arr.astype(np.int8).tobytes(order="C")


def encode_ff_weights(weights, trailer: int = 0, header_low: int = 0) -> bytes:
    """Encode command 0x00: the 96x96 feed-forward weights plus the byte that leaves the mode.

    Parameters
    ----------
    weights : array_like of int, shape (96, 96)
        ``weights[row, address]``, int8 range; the row of neuron ``k`` is ``k + 2``.
    trailer : int
        The extra byte after the payload (any value; the board swallows it to leave the mode).

    Returns
    -------
    bytes
        9218 bytes.
    """
    return _header(OP_FF_WEIGHTS, header_low) + _weight_block(weights, "FF weights") + bytes(
        [_byte(trailer, "trailing byte")]
    )


def encode_aa_weights(weights, trailer: int = 0, header_low: int = 0) -> bytes:
    """Encode command 0x10: the 96x96 recurrent weights (row = post ``k+2``, column = pre ``j+1``).

    Loading them also clears the board's recurrent STDP traces. Returns 9218 bytes.
    """
    return _header(OP_AA_WEIGHTS, header_low) + _weight_block(weights, "AA weights") + bytes(
        [_byte(trailer, "trailing byte")]
    )


def encode_parameters(thresholds, refractory, tau, stdp_words, header_low: int = 0) -> bytes:
    """Encode command 0x20: 96 thresholds, 96 refractory counts, 96 tau values, 96 STDP words.

    Parameters
    ----------
    thresholds : array_like of float, shape (96,)
        Membrane units, sent as Q7.10 (wraps beyond -128 .. 127.999).
    refractory : array_like of int, shape (96,)
        Unsigned 18-bit. Entry 0 bits 7..0 are the FF gain (the caller puts it there).
    tau : array_like of float, shape (96,)
        Q7.10. Only entry 8 is used (the global subtractive leak).
    stdp_words : array_like of int, shape (96,)
        Unsigned 18-bit; see :func:`stdp_words`.

    Returns
    -------
    bytes
        1153 bytes; the board leaves the mode by itself after 384 records.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    tau = np.asarray(tau, dtype=np.float64)
    _check_shape(thresholds, (N_SLOTS,), "thresholds")
    _check_shape(tau, (N_SLOTS,), "tau")
    refractory = _check_int_range(refractory, 0, U18_MAX, "refractory", "neuron k")
    words = _check_int_range(stdp_words, 0, U18_MAX, "STDP words", "word")
    _check_shape(refractory, (N_SLOTS,), "refractory")
    _check_shape(words, (N_SLOTS,), "STDP words")
    raw = np.concatenate([q710_encode(thresholds), refractory, q710_encode(tau), words])
    return _header(OP_PARAMETERS, header_low) + pack_u18(raw)


def encode_debug(bias: float, debug_index: int, header_low: int = 0) -> bytes:
    """Encode command 0x40: bias current (Q7.10) and debug index (the bias goes to ``k = index + 3``).

    Returns 7 bytes.
    """
    index = int(debug_index)
    if not 0 <= index <= U18_MAX:
        raise BoardConfigError(f"debug index must be 0..{U18_MAX} (the board uses the low 8 bits); got {index}")
    return _header(OP_DEBUG, header_low) + pack_u18([q710_encode(float(bias)), index])


def encode_event_records(events: Iterable[Sequence[int]], *, board_range: bool = True) -> bytes:
    """Encode ``(dt, address)`` events as 3-byte records ``dt, addr_lo, addr_hi`` (no header).

    Parameters
    ----------
    events : iterable of (int, int)
        ``dt`` 0..255 (``0`` = the next timestep), ``address`` 0..95.
    board_range : bool
        Check addresses against the 96 inputs (default). ``False`` allows any 16-bit address
        (for re-encoding streams that were parsed), but never the terminator ``FF FF FF``.
    """
    out = bytearray()
    max_addr = N_INPUTS - 1 if board_range else 0xFFFF
    for i, event in enumerate(events):
        try:
            dt, addr = (int(x) for x in event)
        except (TypeError, ValueError):
            raise BoardConfigError(f"event {i} must be a pair (dt, address); got {event!r}") from None
        if not 0 <= dt <= 255:
            raise BoardConfigError(
                f"event {i}: dt {dt} is outside 0..255; split long gaps with events on a silent address"
            )
        if not 0 <= addr <= max_addr:
            raise BoardConfigError(f"event {i}: address {addr} is outside 0..{max_addr}")
        if dt == 0xFF and addr == 0xFFFF:
            raise BoardConfigError(f"event {i}: (255, 65535) would be read as the end-of-run marker FF FF FF")
        out += bytes((dt, addr & 0xFF, addr >> 8))
    return bytes(out)


def encode_events(events: Iterable[Sequence[int]], terminate: bool = True, header_low: int = 0,
                  *, board_range: bool = True) -> bytes:
    """Encode command 0x30: start a run with ``(dt, address)`` events.

    Parameters
    ----------
    events : iterable of (int, int)
        See :func:`encode_event_records`.
    terminate : bool
        Append ``FF FF FF`` (default): the run ends when the last event leaves the queue, and that
        last event is never applied. ``False`` gives an open-ended run that keeps going while
        the host sends more records (:func:`encode_event_records`, then :data:`EVENT_TERMINATOR`).
    """
    body = encode_event_records(events, board_range=board_range)
    return _header(OP_EVENTS, header_low) + body + (EVENT_TERMINATOR if terminate else b"")


def encode_readback(payload: int = 0, header_low: int = 0) -> bytes:
    """Encode command 0x50 plus its one byte of any value; the board answers 9215 FF weights."""
    return _header(OP_READBACK, header_low) + bytes([_byte(payload, "read-back payload")])


def encode_stdp_enable(aa_enable, ff_enable, trailer: int = 0, header_low: int = 0) -> bytes:
    """Encode command 0x60: per-synapse STDP enable bits, AA then FF, bit 7 first in each byte.

    Parameters
    ----------
    aa_enable, ff_enable : array_like of bool, shape (96, 96)
        Indexed like the weight matrices ``[row, column]`` (row-major synapse order).
    trailer : int
        The extra byte after the payload.

    Returns
    -------
    bytes
        2306 bytes.
    """
    aa = np.asarray(aa_enable, dtype=bool)
    ff = np.asarray(ff_enable, dtype=bool)
    _check_shape(aa, (N_SLOTS, N_SLOTS), "AA STDP enable bits")
    _check_shape(ff, (N_SLOTS, N_INPUTS), "FF STDP enable bits")
    # bitorder="big": the board takes bit 7 first, so the lowest synapse index is the MSB.
    payload = np.packbits(aa.ravel(), bitorder="big").tobytes() + np.packbits(ff.ravel(), bitorder="big").tobytes()
    return _header(OP_STDP_ENABLE, header_low) + payload + bytes([_byte(trailer, "trailing byte")])


def stdp_words(tpre_ff: int = 0, tpost_ff: int = 0, tpre_aa: int = 0, tpost_aa: int = 0,
               dw_pos: int = 0, dw_neg: int = 0) -> np.ndarray:
    """Build the 96 STDP words of the 0x20 block from windows (timesteps) and amplitudes.

    Word 0 = ``tpost_ff << 8 | tpre_ff``, word 1 = ``tpost_aa << 8 | tpre_aa``,
    word 2 = ``dw_neg << 8 | dw_pos``; the other 93 words are unused and sent as 0.
    """
    names = ("tpre_ff", "tpost_ff", "tpre_aa", "tpost_aa", "dw_pos", "dw_neg")
    vals = [_byte(v, n) for v, n in zip((tpre_ff, tpost_ff, tpre_aa, tpost_aa, dw_pos, dw_neg), names)]
    words = np.zeros(N_SLOTS, dtype=np.int64)
    words[0] = vals[1] << 8 | vals[0]
    words[1] = vals[3] << 8 | vals[2]
    words[2] = vals[5] << 8 | vals[4]
    return words


# --------------------------------------------------------------------------------------------
# Command objects
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class WriteFFWeights:
    """Command 0x00: FF weights ``[row = k + 2, column = input address]``, int8."""

    weights: np.ndarray
    trailer: int = 0
    header_low: int = 0

    def encode(self) -> bytes:
        return encode_ff_weights(self.weights, self.trailer, self.header_low)


@dataclass(eq=False)
class WriteAAWeights:
    """Command 0x10: AA weights ``[row = post k + 2, column = pre j + 1]``, int8."""

    weights: np.ndarray
    trailer: int = 0
    header_low: int = 0

    def encode(self) -> bytes:
        return encode_aa_weights(self.weights, self.trailer, self.header_low)


@dataclass(eq=False)
class WriteParameters:
    """Command 0x20: thresholds (float), refractory (int), tau (float), STDP words (int), 96 each."""

    thresholds: np.ndarray
    refractory: np.ndarray
    tau: np.ndarray
    stdp_words: np.ndarray
    header_low: int = 0

    def encode(self) -> bytes:
        return encode_parameters(self.thresholds, self.refractory, self.tau, self.stdp_words, self.header_low)

    @property
    def gain(self) -> int:
        """FF synaptic gain: refractory entry 0, bits 7..0."""
        return int(self.refractory[GAIN_REFRACTORY_ENTRY]) & 0xFF

    @property
    def leak(self) -> float:
        """Global subtractive leak: tau entry 8."""
        return float(self.tau[LEAK_TAU_ENTRY])


@dataclass(eq=False)
class WriteDebug:
    """Command 0x40: bias current (membrane units) on neuron ``k = debug_index + 3``."""

    bias: float
    debug_index: int
    header_low: int = 0

    def encode(self) -> bytes:
        return encode_debug(self.bias, self.debug_index, self.header_low)


@dataclass(eq=False)
class Run:
    """Command 0x30: a run with ``(dt, address)`` events; ``terminated`` when ``FF FF FF`` followed."""

    events: list[tuple[int, int]]
    terminated: bool = True
    header_low: int = 0

    def encode(self) -> bytes:
        return encode_events(self.events, self.terminated, self.header_low, board_range=False)


@dataclass(eq=False)
class ReadBack:
    """Command 0x50 with its byte of any value."""

    payload: int = 0
    header_low: int = 0

    def encode(self) -> bytes:
        return encode_readback(self.payload, self.header_low)


@dataclass(eq=False)
class WriteSTDPEnable:
    """Command 0x60: STDP enable bits for AA and FF synapses, ``[row, column]`` like the weights."""

    aa_enable: np.ndarray
    ff_enable: np.ndarray
    trailer: int = 0
    header_low: int = 0

    def encode(self) -> bytes:
        return encode_stdp_enable(self.aa_enable, self.ff_enable, self.trailer, self.header_low)


@dataclass(eq=False)
class UnusedCommand:
    """Headers 0x70..0xF0: the board consumes the next byte and drops it."""

    header: int
    dropped: int = 0

    def encode(self) -> bytes:
        return bytes([_byte(self.header, "header"), _byte(self.dropped, "dropped byte")])


# Items the incremental parser yields for a run, so a run can start before its events are known.
@dataclass(frozen=True)
class RunStart:
    """The 0x30 header of a run was received (the board starts the run and sends ``0xFF``)."""

    header_low: int = 0


@dataclass(frozen=True)
class EventRecord:
    """One ``(dt, address)`` record of the running run."""

    dt: int
    address: int


@dataclass(frozen=True)
class RunTerminator:
    """``FF FF FF`` was received: the run ends when its last queued event leaves the queue."""


Command = (WriteFFWeights | WriteAAWeights | WriteParameters | WriteDebug | Run | ReadBack
           | WriteSTDPEnable | UnusedCommand)
StreamItem = (WriteFFWeights | WriteAAWeights | WriteParameters | WriteDebug | ReadBack
              | WriteSTDPEnable | UnusedCommand | RunStart | EventRecord | RunTerminator)


# --------------------------------------------------------------------------------------------
# Host stream parser (board-side decoder)
# --------------------------------------------------------------------------------------------

_FIXED_SIZES = {
    OP_FF_WEIGHTS: 1 + WEIGHT_BLOCK_BYTES + 1,
    OP_AA_WEIGHTS: 1 + WEIGHT_BLOCK_BYTES + 1,
    OP_PARAMETERS: 1 + PARAMETER_BYTES,
    OP_DEBUG: 1 + DEBUG_BYTES,
    OP_READBACK: 2,
    OP_STDP_ENABLE: 1 + STDP_ENABLE_BYTES + 1,
}
_COMMAND_NAMES = {
    OP_FF_WEIGHTS: "0x00 FF-weight block",
    OP_AA_WEIGHTS: "0x10 AA-weight block",
    OP_PARAMETERS: "0x20 parameter block",
    OP_DEBUG: "0x40 debug/bias block",
    OP_READBACK: "0x50 read-back request",
    OP_STDP_ENABLE: "0x60 STDP-enable block",
}


class HostStreamParser:
    """Incremental decoder of host-to-board bytes, mirroring the board's command decoder.

    Feed it any chunks; it returns the items completed so far. Configuration commands are
    returned whole once their last byte arrived; a run is returned as :class:`RunStart`, then
    one :class:`EventRecord` per 3-byte record as it arrives, then :class:`RunTerminator`, so an
    open-ended run can be served while it is still being sent. Like the board, it has no
    resynchronisation: a block cut short swallows whatever follows as payload.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._consumed = 0  # absolute offset of _buffer[0]
        self._in_run = False

    @property
    def offset(self) -> int:
        """Bytes fully consumed so far (absolute offset of the next unparsed byte)."""
        return self._consumed

    @property
    def in_run(self) -> bool:
        """True while event records are being read (after 0x30, before ``FF FF FF``)."""
        return self._in_run

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete item."""
        return len(self._buffer)

    def describe_pending(self) -> str | None:
        """Describe an incomplete trailing item, or ``None`` when the parser is between items."""
        if not self._buffer:
            return None
        if self._in_run:
            return (f"the stream ends inside an event record at byte {self._consumed} "
                    f"({len(self._buffer)} of 3 bytes)")
        op = self._buffer[0] & 0xF0
        need = _FIXED_SIZES.get(op, 2)
        name = _COMMAND_NAMES.get(op, f"unused command 0x{self._buffer[0]:02X}")
        return (f"the stream ends inside a {name} that starts at byte {self._consumed}: "
                f"it needs {need} bytes, only {len(self._buffer)} arrived")

    def feed(self, data: bytes | bytearray | memoryview) -> list[StreamItem]:
        """Consume bytes and return every item they complete, in order."""
        self._buffer += data
        buf = self._buffer
        items: list[StreamItem] = []
        pos = 0
        n = len(buf)
        while pos < n:
            if self._in_run:
                if n - pos < EVENT_RECORD_BYTES:
                    break
                record = bytes(buf[pos:pos + EVENT_RECORD_BYTES])
                pos += EVENT_RECORD_BYTES
                if record == EVENT_TERMINATOR:
                    items.append(RunTerminator())
                    self._in_run = False
                else:
                    items.append(EventRecord(record[0], record[1] | record[2] << 8))
                continue
            header = buf[pos]
            op = header & 0xF0
            low = header & 0x0F
            if op == OP_EVENTS:
                pos += 1
                self._in_run = True
                items.append(RunStart(low))
                continue
            size = _FIXED_SIZES.get(op, 2)
            if n - pos < size:
                break
            body = bytes(buf[pos + 1:pos + size])
            pos += size
            items.append(self._decode_block(header, op, low, body))
        del buf[:pos]
        self._consumed += pos
        return items

    @staticmethod
    def _decode_block(header: int, op: int, low: int, body: bytes) -> StreamItem:
        if op in (OP_FF_WEIGHTS, OP_AA_WEIGHTS):
            weights = np.frombuffer(body[:WEIGHT_BLOCK_BYTES], dtype=np.int8).reshape(N_SLOTS, N_INPUTS).copy()
            cls = WriteFFWeights if op == OP_FF_WEIGHTS else WriteAAWeights
            return cls(weights, trailer=body[-1], header_low=low)
        if op == OP_PARAMETERS:
            raw = unpack_u18(body)
            return WriteParameters(
                thresholds=q710_decode(raw[0:96]),
                refractory=raw[96:192].copy(),
                tau=q710_decode(raw[192:288]),
                stdp_words=raw[288:384].copy(),
                header_low=low,
            )
        if op == OP_DEBUG:
            raw = unpack_u18(body)
            return WriteDebug(bias=float(q710_decode(int(raw[0]))), debug_index=int(raw[1]), header_low=low)
        if op == OP_READBACK:
            return ReadBack(payload=body[0], header_low=low)
        if op == OP_STDP_ENABLE:
            bits = np.unpackbits(np.frombuffer(body[:STDP_ENABLE_BYTES], dtype=np.uint8), bitorder="big").astype(bool)
            half = WEIGHT_BLOCK_BYTES
            return WriteSTDPEnable(
                aa_enable=bits[:half].reshape(N_SLOTS, N_SLOTS),
                ff_enable=bits[half:].reshape(N_SLOTS, N_INPUTS),
                trailer=body[-1],
                header_low=low,
            )
        return UnusedCommand(header=header, dropped=body[0])


def parse_host_stream(data: bytes | bytearray, strict: bool = True) -> list[Command]:
    """Decode a complete host-to-board byte stream into command objects.

    Parameters
    ----------
    data : bytes
        Everything the host sent, in order (for example a recorded ``*.stim.txt``).
    strict : bool
        Raise :class:`ProtocolError` when the stream ends inside a block (default). A run
        without ``FF FF FF`` is not an error: it is returned with ``terminated=False``.

    Returns
    -------
    list of command objects
        Re-encoding them (``b"".join(c.encode() for c in commands)``) gives ``data`` back.
    """
    parser = HostStreamParser()
    commands: list[Command] = []
    current: Run | None = None
    for item in parser.feed(data):
        if isinstance(item, RunStart):
            current = Run(events=[], terminated=False, header_low=item.header_low)
            commands.append(current)
        elif isinstance(item, EventRecord):
            current.events.append((item.dt, item.address))
        elif isinstance(item, RunTerminator):
            current.terminated = True
            current = None
        else:
            commands.append(item)
    problem = parser.describe_pending()
    if problem and strict:
        raise ProtocolError(
            f"cannot decode the host stream: {problem}. A block cut short misaligns every later "
            "command on the board; always send complete blocks",
            offset=parser.offset,
        )
    return commands


# --------------------------------------------------------------------------------------------
# Board image
# --------------------------------------------------------------------------------------------


def _default_thresholds() -> np.ndarray:
    return np.full(N_SLOTS, DEFAULT_THRESHOLD)


def _default_refractory() -> np.ndarray:
    return np.full(N_SLOTS, DEFAULT_REFRACTORY, dtype=np.int64)


def _full(value: int) -> np.ndarray:
    return np.full((N_SLOTS, N_INPUTS), value, dtype=np.int8)


def _no_bits() -> np.ndarray:
    return np.zeros((N_SLOTS, N_INPUTS), dtype=bool)


@dataclass(eq=False)
class BoardImage:
    """Everything the host can configure on the board, in board units and board indices.

    ``BoardImage()`` is the board's power-up state (§2 defaults); :meth:`empty` is a clean
    starting point for a deploy (no weights, nothing fires). The mapper fills one of these in.

    Attributes
    ----------
    thresholds : ndarray of float, shape (96,)
        Firing threshold of slot ``k`` (membrane units, Q7.10).
    refractory : ndarray of int, shape (96,)
        Refractory count of slot ``k`` in timesteps. Entry 0 is not sent: that word carries
        :attr:`gain` (slot 0 cannot fire anyway).
    gain : int
        FF synaptic gain ``G`` (0..255) multiplying every FF weight.
    leak : float
        Global subtractive leak ``L`` per timestep (sent as tau entry 8). No floor: with
        ``leak > 0`` idle neurons wrap around from -128 to +127 and fire.
    bias : float
        Bias current added every step to neuron ``k = debug_index + 3``.
    debug_index : int
        Selects the bias neuron (low 8 bits used).
    ff_weights : ndarray of int8, shape (96, 96)
        ``[k + 2, address]``.
    aa_weights : ndarray of int8, shape (96, 96)
        ``[post k + 2, pre j + 1]``.
    tpre_ff, tpost_ff, tpre_aa, tpost_aa : int
        STDP windows in timesteps (0..255). ``tpost_ff`` is decoded by the board but unused.
    dw_pos, dw_neg : int
        STDP amplitudes (0..255).
    stdp_enable_ff, stdp_enable_aa : ndarray of bool, shape (96, 96)
        Per-synapse enable bits indexed like the weights.
    """

    thresholds: np.ndarray = field(default_factory=_default_thresholds)
    refractory: np.ndarray = field(default_factory=_default_refractory)
    gain: int = DEFAULT_REFRACTORY & 0xFF
    leak: float = 0.0
    bias: float = 0.0
    debug_index: int = 0
    ff_weights: np.ndarray = field(default_factory=lambda: _full(DEFAULT_FF_WEIGHT))
    aa_weights: np.ndarray = field(default_factory=lambda: _full(DEFAULT_AA_WEIGHT))
    tpre_ff: int = 0
    tpost_ff: int = 0
    tpre_aa: int = 0
    tpost_aa: int = 0
    dw_pos: int = 0
    dw_neg: int = 0
    stdp_enable_ff: np.ndarray = field(default_factory=_no_bits)
    stdp_enable_aa: np.ndarray = field(default_factory=_no_bits)

    def __post_init__(self) -> None:
        # Copy into canonical dtypes so callers can keep mutating their own arrays; check ranges
        # before the int8 cast so that 200 is reported instead of silently becoming -56.
        self.thresholds = np.array(self.thresholds, dtype=np.float64)
        self.refractory = _check_int_range(self.refractory, 0, U18_MAX, "refractory", "neuron k").copy()
        self.ff_weights = _check_int_range(self.ff_weights, -128, 127, "FF weights", "row, column").astype(np.int8)
        self.aa_weights = _check_int_range(self.aa_weights, -128, 127, "AA weights", "row, column").astype(np.int8)
        self.stdp_enable_ff = np.array(self.stdp_enable_ff, dtype=bool)
        self.stdp_enable_aa = np.array(self.stdp_enable_aa, dtype=bool)
        self.validate()

    @classmethod
    def empty(cls) -> "BoardImage":
        """A clean deploy starting point: zero weights, nothing fires, gain 1, no refractory.

        Thresholds sit at :data:`SILENT_THRESHOLD` (127.99, near the Q7.10 maximum) so unused
        neurons stay silent while ``leak == 0``, the convention of the recorded vectors; the
        debug index is 1 as in the published host code, with bias 0.
        """
        return cls(
            thresholds=np.full(N_SLOTS, SILENT_THRESHOLD),
            refractory=np.zeros(N_SLOTS, dtype=np.int64),
            gain=1,
            debug_index=1,
            ff_weights=_full(0),
            aa_weights=_full(0),
        )

    def copy(self) -> "BoardImage":
        """A deep copy."""
        return BoardImage(**{name: getattr(self, name) for name in self.__dataclass_fields__})

    def quantized(self) -> "BoardImage":
        """A copy with thresholds, leak and bias rounded to Q7.10, exactly as the board holds them."""
        image = self.copy()
        image.thresholds = q710_decode(q710_encode(self.thresholds))
        image.leak = float(q710_decode(q710_encode(self.leak)))
        image.bias = float(q710_decode(q710_encode(self.bias)))
        return image

    def validate(self) -> None:
        """Raise :class:`BoardConfigError` naming the first value the board cannot represent."""
        _check_shape(self.thresholds, (N_SLOTS,), "thresholds")
        _check_shape(self.refractory, (N_SLOTS,), "refractory")
        _check_shape(self.ff_weights, (N_SLOTS, N_INPUTS), "FF weights")
        _check_shape(self.aa_weights, (N_SLOTS, N_SLOTS), "AA weights")
        _check_shape(self.stdp_enable_ff, (N_SLOTS, N_INPUTS), "FF STDP enable bits")
        _check_shape(self.stdp_enable_aa, (N_SLOTS, N_SLOTS), "AA STDP enable bits")
        q710_check(self.thresholds, "threshold", "neuron k")
        q710_check(self.leak, "leak")
        q710_check(self.bias, "bias")
        _check_int_range(self.refractory, 0, U18_MAX, "refractory", "neuron k")
        _check_int_range(self.ff_weights, -128, 127, "FF weights", "row, column")
        _check_int_range(self.aa_weights, -128, 127, "AA weights", "row, column")
        for name in ("gain", "debug_index", "tpre_ff", "tpost_ff", "tpre_aa", "tpost_aa", "dw_pos", "dw_neg"):
            _byte(getattr(self, name), name)

    # -- wire form --------------------------------------------------------------------------

    @property
    def stdp_words(self) -> np.ndarray:
        """The 96 STDP words of the 0x20 block."""
        return stdp_words(self.tpre_ff, self.tpost_ff, self.tpre_aa, self.tpost_aa, self.dw_pos, self.dw_neg)

    @property
    def stdp_enabled(self) -> bool:
        """True when any synapse has its STDP enable bit set."""
        return bool(self.stdp_enable_ff.any() or self.stdp_enable_aa.any())

    def wire_refractory(self) -> np.ndarray:
        """Refractory table as sent: entry 0 replaced by the FF gain."""
        table = self.refractory.astype(np.int64).copy()
        table[GAIN_REFRACTORY_ENTRY] = int(self.gain)
        return table

    def wire_tau(self) -> np.ndarray:
        """Tau table as sent: zeros except the leak at entry 8."""
        tau = np.zeros(N_SLOTS)
        tau[LEAK_TAU_ENTRY] = self.leak
        return tau

    def to_commands(self, include_stdp_enable: bool | None = None) -> list[Command]:
        """The upload as command objects, in the order of the published host code (§8).

        ``0x40`` (bias, debug) -> ``0x10`` AA -> ``0x00`` FF -> ``0x60`` enables -> ``0x20`` parameters.

        Parameters
        ----------
        include_stdp_enable : bool or None
            ``None`` (default) sends the 0x60 block only when some enable bit is set. Enable
            bits persist on the board, so pass ``True`` to clear bits a previous upload set.
        """
        self.validate()
        send_enable = self.stdp_enabled if include_stdp_enable is None else include_stdp_enable
        commands: list[Command] = [
            WriteDebug(self.bias, self.debug_index),
            WriteAAWeights(self.aa_weights),
            WriteFFWeights(self.ff_weights),
        ]
        if send_enable:
            commands.append(WriteSTDPEnable(self.stdp_enable_aa, self.stdp_enable_ff))
        commands.append(WriteParameters(self.thresholds, self.wire_refractory(), self.wire_tau(), self.stdp_words))
        return commands

    def to_bytes(self, include_stdp_enable: bool | None = None) -> bytes:
        """The upload byte sequence (§8 order); see :meth:`to_commands`."""
        return b"".join(c.encode() for c in self.to_commands(include_stdp_enable))

    def apply(self, command: Command) -> None:
        """Update this image with one configuration command (runs and read-backs are ignored)."""
        if isinstance(command, WriteFFWeights):
            self.ff_weights = np.array(command.weights, dtype=np.int8)
        elif isinstance(command, WriteAAWeights):
            self.aa_weights = np.array(command.weights, dtype=np.int8)
        elif isinstance(command, WriteParameters):
            self.thresholds = np.array(command.thresholds, dtype=np.float64)
            self.refractory = np.array(command.refractory, dtype=np.int64)
            self.gain = command.gain
            self.leak = command.leak
            words = np.asarray(command.stdp_words, dtype=np.int64)
            self.tpre_ff, self.tpost_ff = int(words[0] & 0xFF), int(words[0] >> 8 & 0xFF)
            self.tpre_aa, self.tpost_aa = int(words[1] & 0xFF), int(words[1] >> 8 & 0xFF)
            self.dw_pos, self.dw_neg = int(words[2] & 0xFF), int(words[2] >> 8 & 0xFF)
        elif isinstance(command, WriteDebug):
            self.bias = float(command.bias)
            self.debug_index = int(command.debug_index) & 0xFF
        elif isinstance(command, WriteSTDPEnable):
            self.stdp_enable_aa = np.array(command.aa_enable, dtype=bool)
            self.stdp_enable_ff = np.array(command.ff_enable, dtype=bool)

    @classmethod
    def from_commands(cls, commands: Iterable[Command], base: "BoardImage | None" = None) -> "BoardImage":
        """Apply configuration commands, in order, to ``base`` (default: the power-up state)."""
        image = base.copy() if base is not None else cls()
        for command in commands:
            image.apply(command)
        return image

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BoardImage):
            return NotImplemented
        for name in self.__dataclass_fields__:
            a, b = getattr(self, name), getattr(other, name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if not np.array_equal(a, b):
                    return False
            elif a != b:
                return False
        return True

    __hash__ = None  # mutable


def silent_addresses(image: BoardImage) -> np.ndarray:
    """Input addresses that can never change any neuron: all-zero FF column, no FF STDP bits.

    Such an address is safe for dummy and filler events. FF STDP addresses the RAM transposed
    (row = input address), so row ``a`` of the FF enable bits must be clear too.
    """
    rows = slice(FIRST_NEURON + FF_ROW_OFFSET, N_SLOTS)  # rows of neurons that can fire
    zero_column = ~np.any(image.ff_weights[rows, :] != 0, axis=0)
    no_stdp = ~np.any(image.stdp_enable_ff, axis=1)
    return np.flatnonzero(zero_column & no_stdp)


# --------------------------------------------------------------------------------------------
# Run timing
# --------------------------------------------------------------------------------------------


def release_steps(events: Sequence[Sequence[int]]) -> np.ndarray:
    """Timesteps at which the board releases each event (§5).

    ``r_0 = dt_0`` and ``r_i = r_{i-1} + dt_i + 1``: at most one event per timestep and
    ``dt = 0`` means "the next timestep".
    """
    if len(events) == 0:
        return np.zeros(0, dtype=np.int64)
    dts = np.array([int(e[0]) for e in events], dtype=np.int64)
    return np.cumsum(dts + 1) - 1


def events_from_steps(step_events: Sequence[Sequence[int]], filler_address: int | None = None
                      ) -> list[tuple[int, int]]:
    """Convert ``(release_step, address)`` pairs into ``(dt, address)`` events.

    Parameters
    ----------
    step_events : sequence of (int, int)
        Release steps must increase strictly: the board releases one event per timestep, so
        simultaneous inputs must be serialised first (the mapper's job).
    filler_address : int, optional
        A silent address (see :func:`silent_addresses`). Gaps longer than 256 steps are bridged
        with events on it; without one such gaps raise :class:`BoardConfigError`.

    Returns
    -------
    list of (int, int)
    """
    out: list[tuple[int, int]] = []
    previous = -1
    for i, pair in enumerate(step_events):
        step, addr = int(pair[0]), int(pair[1])
        if step <= previous:
            raise BoardConfigError(
                f"event {i}: release step {step} is not after the previous one ({previous}); the board "
                "releases at most one event per timestep, so serialise simultaneous inputs first"
            )
        gap = step - previous - 1
        while gap > 255:
            if filler_address is None:
                raise BoardConfigError(
                    f"event {i}: the gap of {gap} steps before step {step} exceeds dt = 255; "
                    "insert an event on a silent address (all-zero weight column) to bridge it"
                )
            out.append((255, int(filler_address)))
            gap -= 256
        out.append((gap, addr))
        previous = step
    return out


#: Bits of the partial frame the board sends after the last full frame of a run (§5): one bit
#: short of a whole frame, so the run's stream never ends on a frame boundary.
PARTIAL_FRAME_BITS = FRAME_BITS - 1


def stream_bytes_for_run(r_last: int) -> int:
    """Bytes the board sends after the ``0xFF`` marker for a run whose last event leaves at ``r_last``.

    ``(90 * (r_last + 1) - 1) // 8`` (§5, verified): ``r_last`` full frames (steps
    ``0 .. r_last - 1``), then a partial frame of at most 89 bits to discard; the final partial
    byte is never sent. When ``r_last + 1`` is a multiple of 4 this is one byte fewer than
    ``90 * (r_last + 1) / 8``.
    """
    return (FRAME_BITS * int(r_last) + PARTIAL_FRAME_BITS) // 8


# --------------------------------------------------------------------------------------------
# Board-to-host decoders
# --------------------------------------------------------------------------------------------


def frame_neurons(frame: np.ndarray) -> np.ndarray:
    """Slots ``k`` that spiked in one 90-bit frame."""
    return np.flatnonzero(frame) + FRAME_BIT_OFFSET


def frames_to_spikes(frames: np.ndarray, first_step: int = 0) -> list[tuple[int, int]]:
    """``(step, k)`` pairs, in time order, of a ``[n_steps, 90]`` boolean frame array."""
    steps, bits = np.nonzero(np.asarray(frames))
    return [(int(s) + first_step, int(b) + FRAME_BIT_OFFSET) for s, b in zip(steps, bits)]


def pack_frames(frames: np.ndarray) -> bytes:
    """Pack frames the way the board sends them (LSB first, unaligned), dropping the partial byte."""
    bits = np.asarray(frames, dtype=np.uint8).reshape(-1)
    n_bytes = bits.size // 8
    return np.packbits(bits[: n_bytes * 8], bitorder="little").tobytes()


class SpikeStreamDecoder:
    """Incremental decoder of one run's spike stream.

    Feed it byte chunks of any size as they arrive. Before the run starts it skips the board's
    power-up/stray ``0x00`` bytes and expects the ``0xFF`` start marker; anything else raises
    :class:`ProtocolError` naming the byte. After the marker every byte is data (a data byte
    may be ``0xFF`` too): 90-bit frames, least significant bit first, not aligned to bytes.

    Parameters
    ----------
    expect_marker : bool
        ``False`` when the caller already consumed the marker.
    max_frames : int, optional
        Stop after this many frames; later bits are counted in :attr:`excess_bits` but not
        decoded (the end of a run: the last frame is never complete on the wire).
    """

    def __init__(self, expect_marker: bool = True, max_frames: int | None = None) -> None:
        self.started = not expect_marker
        self.max_frames = max_frames
        self.frames_decoded = 0
        self.bytes_fed = 0  # everything fed, including skipped zeros and the marker
        self.data_bytes = 0  # bytes after the marker
        self.skipped_zero_bytes = 0
        self.excess_bits = 0
        self._bits = np.zeros(0, dtype=np.uint8)

    @property
    def leftover_bits(self) -> int:
        """Bits of an incomplete frame held back (discarded when the run ends)."""
        return int(self._bits.size)

    @property
    def done(self) -> bool:
        """True once ``max_frames`` frames were decoded."""
        return self.max_frames is not None and self.frames_decoded >= self.max_frames

    def feed_array(self, chunk: bytes | bytearray | memoryview) -> np.ndarray:
        """Consume a chunk; return the newly completed frames as a ``[n, 90]`` bool array."""
        data = bytes(chunk)
        start = 0
        if not self.started:
            while start < len(data):
                value = data[start]
                if value == START_MARKER:
                    self.started = True
                    start += 1
                    break
                if value != POWER_UP_BYTE:
                    offset = self.bytes_fed + start
                    self.bytes_fed += start + 1
                    raise ProtocolError(
                        f"got 0x{value:02X} at byte {offset} of the spike stream; expected the start "
                        f"marker 0xFF (or the board's power-up byte 0x00). Is another program using "
                        f"the port, or is this not a NeuroCoreX board?",
                        offset=offset,
                        value=value,
                    )
                self.skipped_zero_bytes += 1
                start += 1
        self.bytes_fed += len(data)
        payload = data[start:] if self.started else b""
        self.data_bytes += len(payload)
        if not payload:
            return np.zeros((0, FRAME_BITS), dtype=bool)
        new_bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), bitorder="little")
        bits = np.concatenate([self._bits, new_bits]) if self._bits.size else new_bits
        n_frames = bits.size // FRAME_BITS
        if self.max_frames is not None:
            allowed = max(self.max_frames - self.frames_decoded, 0)
            if n_frames >= allowed:
                self.excess_bits += bits.size - allowed * FRAME_BITS
                frames = bits[: allowed * FRAME_BITS].reshape(allowed, FRAME_BITS).astype(bool)
                self._bits = np.zeros(0, dtype=np.uint8)
                self.frames_decoded += allowed
                return frames
        frames = bits[: n_frames * FRAME_BITS].reshape(n_frames, FRAME_BITS).astype(bool)
        self._bits = bits[n_frames * FRAME_BITS:].copy()
        self.frames_decoded += n_frames
        return frames

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[np.ndarray]:
        """Consume a chunk; return the newly completed frames (each a bool array of 90)."""
        return list(self.feed_array(chunk))

    def feed_spikes(self, chunk: bytes | bytearray | memoryview) -> list[tuple[int, int]]:
        """Consume a chunk; return ``(step, k)`` of every spike in the newly completed frames."""
        first = self.frames_decoded
        return frames_to_spikes(self.feed_array(chunk), first_step=first)


def decode_readback(data: bytes | bytearray, fill: int = 0) -> np.ndarray:
    """Decode the 9215-byte FF weight read-back into a ``[96, 96]`` int8 array.

    Parameters
    ----------
    data : bytes
        Exactly :data:`READBACK_BYTES` bytes, row-major int8.
    fill : int
        Value put in entry ``(95, 95)``, which the board never sends.
    """
    if len(data) != READBACK_BYTES:
        raise ProtocolError(
            f"a weight read-back is {READBACK_BYTES} bytes; got {len(data)}. The stream was cut "
            "short or the board was still running when the read-back was requested",
        )
    weights = np.empty(WEIGHT_BLOCK_BYTES, dtype=np.int8)
    weights[:READBACK_BYTES] = np.frombuffer(bytes(data), dtype=np.int8)
    weights[-1] = fill
    return weights.reshape(N_SLOTS, N_INPUTS)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class RunResult:
    """What one run produced, as the host sees it.

    Attributes
    ----------
    frames : ndarray of bool, shape (n_steps, 90)
        ``frames[t, j]``: neuron ``k = j + 4`` spiked in timestep ``t``. ``n_steps`` is
        ``r_last`` (the step at which the last event left the queue).
    events : list of (int, int)
        The ``(dt, address)`` events sent (including any dummy the driver appended).
    release_steps : ndarray of int
        Release step of each event.
    """

    frames: np.ndarray
    events: list[tuple[int, int]] = field(default_factory=list)
    release_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n_steps(self) -> int:
        return int(self.frames.shape[0])

    def spikes(self) -> list[tuple[int, int]]:
        """Every spike as ``(step, k)``, in time order."""
        return frames_to_spikes(self.frames)

    def spike_matrix(self) -> np.ndarray:
        """Spikes as a ``[n_steps, 96]`` bool array indexed by slot ``k`` (slots 0-3, 94-95 empty)."""
        out = np.zeros((self.n_steps, N_SLOTS), dtype=bool)
        out[:, FIRST_NEURON:LAST_NEURON + 1] = self.frames
        return out

    def spike_counts(self) -> np.ndarray:
        """Spike count of each slot ``k`` (length 96)."""
        return self.spike_matrix().sum(axis=0)
