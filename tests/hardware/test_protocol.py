"""Number formats, encoders, the host-stream parser and the board-to-host decoders."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hardware.errors import BoardConfigError, ProtocolError
from hardware.neurocorex import protocol as p

# ------------------------------------------------------------------ Q7.10 and 18-bit packing


def test_q710_known_values():
    assert p.q710_encode(1.0) == 1024
    assert p.q710_encode(-1.0) == -1024
    assert p.q710_encode(127.99) == 131062  # the recorded vectors' "silent" threshold
    assert p.q710_encode(p.Q_MAX) == p.Q_MAX_RAW
    assert p.q710_encode(128.0) == p.Q_MIN_RAW  # wraps like the 18-bit register
    assert p.q710_encode(-130.0) == p.q710_encode(126.0)  # -128 wraps to +127.x (leak quirk)
    assert p.q710_decode(p.Q_MIN_RAW) == -128.0
    assert p.q710_decode(0x3FFFF) == -1 / 1024  # an unsigned 18-bit pattern is read as signed


@given(st.integers(min_value=-(1 << 40), max_value=1 << 40))
def test_wrap18_is_modular_and_in_range(raw):
    wrapped = p.wrap18(raw)
    assert p.Q_MIN_RAW <= wrapped <= p.Q_MAX_RAW
    assert (wrapped - raw) % p.Q_MODULUS == 0
    assert p.wrap18(np.array([raw]))[0] == wrapped


@given(st.integers(min_value=p.Q_MIN_RAW, max_value=p.Q_MAX_RAW))
def test_q710_round_trip_of_raw_values(raw):
    assert p.q710_encode(p.q710_decode(raw)) == raw
    assert p.unpack_u18(p.pack_u18([raw]))[0] == raw & p.U18_MAX


def test_pack_u18_layout():
    # byte 2 carries bits 17..16 in its two low bits, least significant byte first
    assert p.pack_u18([0x2ABCD]) == bytes([0xCD, 0xAB, 0x02])
    assert p.pack_u18([-1]) == bytes([0xFF, 0xFF, 0x03])


def test_q710_check_names_the_neuron():
    values = np.zeros(96)
    values[17] = 200.0
    with pytest.raises(BoardConfigError, match="neuron k 17.*200"):
        p.q710_check(values, "threshold", "neuron k")


# ------------------------------------------------------------------ encoders


def test_weight_block_layout_and_trailer():
    weights = np.zeros((96, 96), dtype=np.int8)
    weights[6, 2] = -5
    data = p.encode_ff_weights(weights, trailer=0xAB)
    assert len(data) == 9218 and data[0] == 0x00 and data[-1] == 0xAB
    assert data[1 + 6 * 96 + 2] == 0xFB  # row-major, int8
    assert p.encode_aa_weights(weights)[0] == 0x10


def test_weight_out_of_range_is_reported_not_wrapped():
    weights = np.zeros((96, 96), dtype=np.int16)
    weights[3, 4] = 200
    with pytest.raises(BoardConfigError, match=r"row, column \(3, 4\) is 200"):
        p.encode_ff_weights(weights)


def test_parameter_block_places_gain_leak_and_stdp_words():
    image = p.BoardImage.empty()
    image.gain, image.leak, image.refractory[0] = 7, 5.0, 99
    image.tpre_ff, image.tpost_ff, image.dw_pos, image.dw_neg = 3, 4, 5, 6
    data = [c for c in image.to_commands() if isinstance(c, p.WriteParameters)][0].encode()
    assert len(data) == 1 + 1152 and data[0] == 0x20
    raw = p.unpack_u18(data[1:])
    assert raw[96] == 7  # refractory entry 0 carries the gain, not refractory[0]
    assert raw[192 + 8] == 5 * 1024  # tau entry 8 is the leak
    assert raw[192:288].sum() == 5 * 1024  # every other tau entry is 0
    assert raw[288] == 4 << 8 | 3 and raw[290] == 6 << 8 | 5


def test_event_encoding_and_terminator():
    assert p.encode_events([(0, 2), (3, 95)]) == bytes([0x30, 0, 2, 0, 3, 95, 0, 0xFF, 0xFF, 0xFF])
    assert p.encode_events([(0, 2)], terminate=False) == bytes([0x30, 0, 2, 0])
    with pytest.raises(BoardConfigError, match="address 96"):
        p.encode_events([(0, 96)])
    with pytest.raises(BoardConfigError, match="dt 256"):
        p.encode_events([(256, 1)])


def test_stdp_enable_bits_are_msb_first_aa_then_ff():
    aa = np.zeros((96, 96), dtype=bool)
    ff = np.zeros((96, 96), dtype=bool)
    aa[0, 0] = True  # synapse index 0 -> bit 7 of the first AA byte
    ff[0, 9] = True  # synapse index 9 -> bit 6 of the second FF byte
    data = p.encode_stdp_enable(aa, ff)
    assert len(data) == 2306 and data[0] == 0x60
    assert data[1] == 0x80
    assert data[1 + 1152 + 1] == 0x40


def test_board_image_upload_order_follows_the_published_host_code():
    image = p.BoardImage.empty()
    assert [type(c) for c in image.to_commands()] == [p.WriteDebug, p.WriteAAWeights, p.WriteFFWeights,
                                                      p.WriteParameters]
    image.stdp_enable_ff[5, 5] = True
    assert [c.encode()[0] for c in image.to_commands()] == [0x40, 0x10, 0x00, 0x60, 0x20]
    assert len(image.to_bytes()) == 7 + 9218 + 9218 + 2306 + 1153


def test_board_image_validation_messages():
    with pytest.raises(BoardConfigError, match="threshold at neuron k 5"):
        p.BoardImage(thresholds=np.r_[np.zeros(5), 300.0, np.zeros(90)])
    with pytest.raises(BoardConfigError, match="gain"):
        p.BoardImage(gain=256).validate()
    with pytest.raises(BoardConfigError, match="shape"):
        p.BoardImage(ff_weights=np.zeros((90, 96)))


def test_board_image_round_trips_through_commands():
    image = p.BoardImage.empty()
    rng = np.random.default_rng(3)
    image.ff_weights = rng.integers(-128, 128, (96, 96)).astype(np.int8)
    image.aa_weights = rng.integers(-128, 128, (96, 96)).astype(np.int8)
    image.thresholds = rng.integers(-5000, 5000, 96) / 1024
    image.refractory = rng.integers(0, 10, 96)
    image.refractory[0] = image.gain = 3
    image.leak, image.bias, image.debug_index = 0.5, -2.25, 40
    image.tpre_aa, image.tpost_aa, image.dw_pos = 9, 8, 2
    image.stdp_enable_aa = rng.random((96, 96)) < 0.1
    image = p.BoardImage(**{k: getattr(image, k) for k in image.__dataclass_fields__})
    decoded = p.BoardImage.from_commands(p.parse_host_stream(image.to_bytes()))
    assert decoded == image


def test_silent_addresses_exclude_used_columns_and_stdp_rows():
    image = p.BoardImage.empty()
    image.ff_weights[10, 0] = 1
    image.stdp_enable_ff[1, 50] = True
    silent = p.silent_addresses(image)
    assert 0 not in silent and 1 not in silent and 2 in silent


# ------------------------------------------------------------------ host stream parser


command_strategy = st.one_of(
    st.builds(lambda seed, t: p.WriteFFWeights(np.random.default_rng(seed).integers(-128, 128, (96, 96)), t),
              st.integers(0, 2**32 - 1), st.integers(0, 255)),
    st.builds(lambda seed: p.WriteAAWeights(np.random.default_rng(seed).integers(-128, 128, (96, 96))),
              st.integers(0, 2**32 - 1)),
    st.builds(lambda b, d: p.WriteDebug(b / 1024, d), st.integers(p.Q_MIN_RAW, p.Q_MAX_RAW), st.integers(0, 255)),
    st.builds(lambda ev, term: p.Run(ev, term),
              st.lists(st.tuples(st.integers(0, 255), st.integers(0, 95)), max_size=20), st.booleans()),
    st.builds(lambda x: p.ReadBack(x), st.integers(0, 255)),
    st.builds(lambda h, x: p.UnusedCommand(h, x), st.integers(0x70, 0xFF), st.integers(0, 255)),
    st.builds(lambda seed: p.WriteParameters(np.random.default_rng(seed).integers(-2**17, 2**17, 96) / 1024,
                                             np.random.default_rng(seed).integers(0, 2**18, 96),
                                             np.zeros(96), np.arange(96)),
              st.integers(0, 2**32 - 1)),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(command_strategy, max_size=5), st.data())
def test_parse_then_encode_is_the_identity_for_any_command_sequence(commands, data):
    # An unterminated run swallows everything after it, so it may only come last.
    commands = [c for c in commands if not (isinstance(c, p.Run) and not c.terminated)] + \
        [c for c in commands if isinstance(c, p.Run) and not c.terminated][:1]
    stream = b"".join(c.encode() for c in commands)
    parsed = p.parse_host_stream(stream)
    assert b"".join(c.encode() for c in parsed) == stream
    # The incremental parser gives the same items for any chunking.
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    parser = p.HostStreamParser()
    items = []
    for a, b in zip([0] + cuts, cuts + [len(stream)]):
        items += parser.feed(stream[a:b])
    assert parser.pending == 0
    assert sum(isinstance(i, p.RunStart) for i in items) == sum(isinstance(c, p.Run) for c in commands)


def test_parser_reports_a_block_cut_short():
    with pytest.raises(ProtocolError, match=r"0x00 FF-weight block that starts at byte 7.*only 101"):
        p.parse_host_stream(p.encode_debug(0, 1) + bytes(101))
    assert p.parse_host_stream(bytes([0x00]) + bytes(100), strict=False) == []


def test_low_nibble_of_a_header_is_ignored_but_kept():
    stream = bytes([0x45]) + p.encode_debug(1.5, 7)[1:]
    (command,) = p.parse_host_stream(stream)
    assert isinstance(command, p.WriteDebug) and command.bias == 1.5 and command.header_low == 5
    assert command.encode() == stream


# ------------------------------------------------------------------ spike stream decoder


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**32 - 1), st.integers(0, 3), st.data())
def test_frames_decode_across_byte_boundaries_for_any_chunking(n_frames, seed, zeros, data):
    frames = np.random.default_rng(seed).random((n_frames, 90)) < 0.3
    frames[:, 0] |= frames[:, 1]  # make some bytes 0xFF-prone
    wire = bytes(zeros) + bytes([0xFF]) + p.pack_frames(frames)  # power-up zeros, marker, stream
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=12)))
    decoder = p.SpikeStreamDecoder()
    got = []
    for a, b in zip([0] + cuts, cuts + [len(wire)]):
        got += decoder.feed(wire[a:b])
    full = (len(wire) - zeros - 1) * 8 // 90  # the final partial byte is never sent
    assert len(got) == full == decoder.frames_decoded
    assert np.array_equal(np.array(got).reshape(-1, 90), frames[:full])
    assert decoder.skipped_zero_bytes == zeros


def test_marker_is_only_looked_for_at_the_start_of_a_run():
    frames = np.ones((4, 90), dtype=bool)  # all-ones frames: every data byte is 0xFF
    decoder = p.SpikeStreamDecoder()
    got = decoder.feed_array(bytes([0xFF]) + p.pack_frames(frames))  # 4 frames = 45 whole bytes
    assert got.shape == (4, 90) and got.all()


def test_unexpected_first_byte_names_offset_and_value():
    decoder = p.SpikeStreamDecoder()
    with pytest.raises(ProtocolError, match=r"got 0x3A at byte 2 of the spike stream; expected the start marker 0xFF"):
        decoder.feed(b"\x00\x00\x3a\xff")


def test_max_frames_stops_decoding_and_counts_the_tail():
    frames = np.zeros((5, 90), dtype=bool)
    frames[4, 7] = True
    decoder = p.SpikeStreamDecoder(max_frames=4)
    got = decoder.feed_array(b"\xff" + p.pack_frames(frames))
    assert got.shape == (4, 90) and decoder.done and decoder.excess_bits == 56 * 8 - 4 * 90


def test_feed_spikes_gives_step_and_neuron():
    frames = np.zeros((4, 90), dtype=bool)
    frames[1, 0] = frames[3, 89] = True
    decoder = p.SpikeStreamDecoder()
    wire = b"\xff" + p.pack_frames(frames)
    assert decoder.feed_spikes(wire[:25]) == [(1, 4)]  # 24 data bytes: frames 0 and 1
    assert decoder.feed_spikes(wire[25:]) == [(3, 93)]


# ------------------------------------------------------------------ read-back, timing helpers


def test_readback_decoding():
    weights = np.arange(9216).astype(np.int8).reshape(96, 96)
    got = p.decode_readback(weights.reshape(-1)[:9215].tobytes())
    assert np.array_equal(got.reshape(-1)[:9215], weights.reshape(-1)[:9215]) and got[95, 95] == 0
    with pytest.raises(ProtocolError, match="9215 bytes; got 100"):
        p.decode_readback(bytes(100))


def test_release_steps_and_step_conversion():
    events = [(0, 6), (0, 6), (4, 2), (10, 0)]
    assert list(p.release_steps(events)) == [0, 1, 6, 17]
    assert p.events_from_steps([(0, 6), (1, 6), (6, 2), (17, 0)]) == events
    with pytest.raises(BoardConfigError, match="serialise simultaneous inputs"):
        p.events_from_steps([(3, 1), (3, 2)])
    with pytest.raises(BoardConfigError, match="exceeds dt = 255"):
        p.events_from_steps([(0, 1), (600, 2)])
    bridged = p.events_from_steps([(0, 1), (600, 2)], filler_address=90)
    assert bridged == [(0, 1), (255, 90), (255, 90), (87, 2)]
    assert list(p.release_steps(bridged))[-1] == 600


def test_run_result_views():
    frames = np.zeros((4, 90), dtype=bool)
    frames[2, 0] = True
    result = p.RunResult(frames)
    assert result.spikes() == [(2, 4)] and result.spike_matrix()[2, 4] and result.spike_counts()[4] == 1
