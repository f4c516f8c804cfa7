"""The recorded RTL vectors: encoders, parser and twin must reproduce them byte for byte."""

from __future__ import annotations

import random

import pytest

from hardware.neurocorex import protocol as p
from hardware.neurocorex.twin import NeuroCoreXTwin

from . import _vectors as vec


@pytest.fixture(params=vec.CASES)
def vector(request) -> vec.Vector:
    return vec.load(request.param)


def test_repo_copy_matches_shared_vectors():
    if not vec.SHARED_VECTORS.is_dir():
        pytest.skip("shared/specs/vectors is not beside this checkout")
    for path in vec.SHARED_VECTORS.iterdir():
        assert (vec.REPO_VECTORS / path.name).read_bytes() == path.read_bytes(), path.name


def test_decoded_commands_re_encode_to_the_recorded_host_bytes(vector):
    commands = p.parse_host_stream(vector.host_bytes)
    assert b"".join(c.encode() for c in commands) == vector.host_bytes
    runs = [c for c in commands if isinstance(c, p.Run)]
    assert [r.events for r in runs] == vector.runs
    assert all(r.terminated for r in runs)


def test_recorded_configuration_decodes_to_board_images(vector):
    commands = p.parse_host_stream(vector.host_bytes)
    first_run = next(i for i, c in enumerate(commands) if isinstance(c, p.Run))
    image = p.BoardImage.from_commands(commands[:first_run])
    assert image.gain == 1 and image.leak == 0 and image.debug_index == 1 and image.bias == 0
    assert image.ff_weights[6, 2] == 60 and image.ff_weights[8, 4] == 100
    assert list(image.thresholds[4:7]) == [50.0, 50.0, 50.0]
    assert not image.stdp_enabled
    # Re-encoding the decoded image gives the recorded configuration bytes.
    assert image.to_bytes() == b"".join(c.encode() for c in commands[:first_run])


def test_encoders_from_scratch_give_the_recorded_host_bytes(vector):
    assert vec.scratch_host_bytes(vector.name) == vector.host_bytes


def test_twin_fed_the_recorded_host_bytes_gives_the_recorded_board_bytes(vector):
    twin = NeuroCoreXTwin()
    twin.feed(vector.host_bytes)
    assert twin.take_output() == vector.board_bytes


def test_twin_output_does_not_depend_on_chunking(vector):
    rng = random.Random(1234)
    twin = NeuroCoreXTwin()
    out = bytearray()
    pos = 0
    while pos < len(vector.host_bytes):
        size = rng.choice([1, 2, 3, 7, 64, 1000, 9218])
        twin.feed(vector.host_bytes[pos:pos + size])
        out += twin.take_output()
        pos += size
    assert bytes(out) == vector.board_bytes


def test_recorded_streams_decode_to_the_spikes_the_spec_describes():
    tiny = vec.split_runs(vec.load("tiny"))
    decoder = p.SpikeStreamDecoder(expect_marker=False, max_frames=9)
    assert p.frames_to_spikes(decoder.feed_array(tiny[0])) == [(2, 4), (4, 6), (5, 4), (7, 6)]
    multi = [p.SpikeStreamDecoder(expect_marker=False).feed_array(s) for s in vec.split_runs(vec.load("multi"))]
    # run 2: leak 5 -> every idle neuron with threshold 50 wraps around and fires at step 26
    assert sorted(k for s, k in p.frames_to_spikes(multi[1]) if s == 26) == [4, 5, 10, 30]
    assert [len(m) for m in multi] == [30, 37, 5]  # r_last full frames per run


def test_stream_length_rule_matches_every_recorded_run():
    for name in vec.CASES:
        vector = vec.load(name)
        lengths = [len(s) for s in vec.split_runs(vector)]  # asserts the total adds up
        expected = [(90 * (int(p.release_steps(r)[-1]) + 1) - 1) // 8 for r in vector.runs]  # §5
        assert lengths == expected
