"""Loading the recorded NeuroCoreX test vectors, and rebuilding their configurations from scratch.

The vectors (``*.stim.txt``, ``*.tx.txt``, ``*.events.json``) are copied from
``shared/specs/vectors`` into ``tests/hardware/vectors`` so the tests never depend on a checkout
of ``shared/`` beside the repository.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


from hardware.neurocorex import protocol as p

REPO_VECTORS = Path(__file__).resolve().parent / "vectors"
SHARED_VECTORS = Path(__file__).resolve().parents[2].parent / "shared/specs/vectors"
CASES = ("tiny", "multi")


@dataclass
class Vector:
    name: str
    host_bytes: bytes  # everything the host sent, gaps dropped
    board_bytes: bytes  # everything the board sent, times dropped
    board_times_ns: list[int]
    runs: list[list[tuple[int, int]]]  # (dt, address) events of each run


def read_stim(path: Path) -> bytes:
    """Parse ``B n hh ..`` lines into bytes; ``W``/``E`` idle gaps carry no bytes."""
    out = bytearray()
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "B":
            payload = bytes(int(x, 16) for x in fields[2:])
            assert len(payload) == int(fields[1]), f"{path}:{number}: count does not match"
            out += payload
        elif fields[0] not in ("W", "E"):
            raise ValueError(f"{path}:{number}: unknown line {line!r}")
    return bytes(out)


def read_tx(path: Path) -> tuple[list[int], bytes]:
    times, values = [], bytearray()
    for line in path.read_text().splitlines():
        if line.strip():
            t, value = line.split()
            times.append(int(t))
            values.append(int(value, 16))
    return times, bytes(values)


def load(name: str, directory: Path = REPO_VECTORS) -> Vector:
    times, board = read_tx(directory / f"{name}.tx.txt")
    runs_json = json.loads((directory / f"{name}.events.json").read_text())
    runs = [[(int(dt), int(a)) for dt, a in runs_json[key]] for key in sorted(runs_json)]
    return Vector(name, read_stim(directory / f"{name}.stim.txt"), board, times, runs)


def scratch_image() -> p.BoardImage:
    """The configuration shared by both cases, written as a user's deploy would write it."""
    image = p.BoardImage.empty()  # zero weights, silent thresholds 127.99, gain 1, debug index 1
    image.ff_weights[4 + 2, 2] = 60  # input 2 -> neuron 4
    image.ff_weights[5 + 2, 3] = 30  # input 3 -> neuron 5
    image.ff_weights[6 + 2, 4] = 100  # input 4 -> neuron 6
    image.thresholds[[4, 5, 6]] = 50.0
    image.tpre_ff = image.tpost_ff = image.tpre_aa = image.tpost_aa = 127
    image.dw_pos = image.dw_neg = 1  # STDP words set, but no enable bit: STDP stays off
    return image


def scratch_host_bytes(name: str) -> bytes:
    """Build the host byte stream of a case from BoardImage and the encoders only."""
    vector = load(name)
    image = scratch_image()
    if name == "tiny":
        return image.to_bytes() + p.encode_events(vector.runs[0])
    # multi: more synapses, then three runs with parameter/bias reloads in between.
    image.ff_weights[20 + 2, 5] = 40  # input 5 -> neuron 20
    image.ff_weights[30 + 2, 6] = 30  # input 6 -> neuron 30
    image.aa_weights[10 + 2, 4 + 1] = 20  # neuron 4 -> neuron 10
    image.thresholds[[10, 30]] = 50.0
    image.thresholds[20] = 100.0
    out = image.to_bytes() + p.encode_events(vector.runs[0])

    run2 = image.copy()
    run2.leak = 5.0
    run2.refractory[6] = 3
    params = [c for c in run2.to_commands() if isinstance(c, p.WriteParameters)]
    out += params[0].encode() + p.encode_debug(run2.bias, run2.debug_index) + p.encode_events(vector.runs[1])

    run3 = image.copy()
    run3.bias, run3.debug_index = 10.0, 20  # bias on neuron 23
    params = [c for c in run3.to_commands() if isinstance(c, p.WriteParameters)]
    out += params[0].encode() + p.encode_debug(run3.bias, run3.debug_index) + p.encode_events(vector.runs[2])
    return out


def split_runs(vector: Vector) -> list[bytes]:
    """The recorded spike stream of each run (after its marker), using the runs' known lengths.

    Data bytes may be 0xFF too, so markers are located from the expected stream lengths rather
    than by scanning.
    """
    data = vector.board_bytes
    assert data[0] == p.POWER_UP_BYTE
    pos, streams = 1, []
    for events in vector.runs:
        assert data[pos] == p.START_MARKER, f"no marker at byte {pos}"
        length = p.stream_bytes_for_run(int(p.release_steps(events)[-1]))
        streams.append(data[pos + 1:pos + 1 + length])
        pos += 1 + length
    assert pos == len(data), "recorded bytes left over after the last run"
    return streams
