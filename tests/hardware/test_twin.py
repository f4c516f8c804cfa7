"""Each board quirk of spec §5-§7, reproduced by the digital twin."""

from __future__ import annotations

import numpy as np

from hardware.neurocorex import protocol as p
from hardware.neurocorex.twin import NeuroCoreXTwin


def make_twin(image: p.BoardImage) -> NeuroCoreXTwin:
    twin = NeuroCoreXTwin(image)
    twin.take_output()  # drop the power-up byte
    return twin


def base_image() -> p.BoardImage:
    image = p.BoardImage.empty()  # zero weights, thresholds 127.99, gain 1, refractory 0
    image.ff_weights[4 + 2, 2] = 60  # input 2 -> neuron 4
    image.ff_weights[5 + 2, 3] = 30  # input 3 -> neuron 5
    image.ff_weights[6 + 2, 4] = 100  # input 4 -> neuron 6
    image.thresholds[[4, 5, 6]] = 50.0
    return image


def spikes(result) -> list[tuple[int, int]]:
    return result.spikes()


def test_power_up_byte_and_marker():
    twin = NeuroCoreXTwin(base_image())
    assert twin.take_output() == b"\x00"
    twin.feed(p.encode_events([(0, 2), (0, 0)]))
    assert twin.take_output()[:1] == b"\xff"


def test_input_changes_membrane_next_step_and_fires_the_step_after():
    twin = make_twin(base_image())
    result = twin.run([(3, 2), (0, 4), (10, 0)])  # releases at 3, 4, 15
    assert list(result.release_steps) == [3, 4, 15]
    assert spikes(result) == [(5, 4), (6, 6)]
    assert result.n_steps == 15


def test_dt_zero_means_the_next_timestep():
    twin = make_twin(base_image())
    result = twin.run([(0, 2), (0, 4), (0, 0), (5, 0)])
    assert list(result.release_steps) == [0, 1, 2, 8]
    assert spikes(result) == [(2, 4), (3, 6)]


def test_last_event_is_never_applied():
    twin = make_twin(base_image())
    alone = twin.run([(0, 2)])
    # r_last = 0: the board stops before step 0, so no step is computed at all
    assert alone.n_steps == 0 and twin.last_run_frames.shape == (0, 90)
    assert twin.membrane[4] == 0
    # the same event followed by a dummy is applied
    assert spikes(twin.run([(0, 2), (5, 0)])) == [(2, 4)]


# Spec §5 [verified]: (90 * (r_last + 1) - 1) // 8 bytes after the marker, worked out by hand:
# one byte fewer than 90 * (r_last + 1) / 8 whenever r_last + 1 is a multiple of 4.
STREAM_BYTES = {0: 11, 1: 22, 2: 33, 3: 44, 4: 56, 6: 78, 7: 89, 9: 112, 11: 134, 30: 348, 39: 449}


def test_stream_length_is_one_bit_short_of_r_last_plus_one_frames():
    twin = make_twin(base_image())
    for r_last, n_bytes in STREAM_BYTES.items():
        assert p.stream_bytes_for_run(r_last) == n_bytes
        twin.feed(p.encode_events([(r_last, 0)]))
        out = twin.take_output()
        assert out[0] == 0xFF and len(out) - 1 == n_bytes, r_last
        # the board computes steps 0 .. r_last - 1 only
        assert twin.last_run_frames.shape[0] == r_last
    # the multiples of 4 are the runs where the old count (90 * (r_last + 1) // 8) was one too many
    assert [r for r in STREAM_BYTES if (90 * (r + 1)) // 8 != STREAM_BYTES[r]] == [3, 7, 11, 39]


def test_adjacent_neuron_artefact_zeroes_the_next_neurons_input():
    image = base_image()
    image.thresholds[5] = 20.0  # input 3 alone (30) makes neuron 5 fire
    twin = make_twin(image)
    # input 2 (released 0) fires neuron 4 at step 2, the same step input 3 (released 1) reaches 5
    assert spikes(twin.run([(0, 2), (0, 3), (10, 0)])) == [(2, 4)]
    assert twin.membrane[5] == 0  # its input was zeroed, not just delayed
    # without neuron 4 firing, the same input makes neuron 5 fire
    assert spikes(twin.run([(0, 0), (0, 3), (10, 0)])) == [(3, 5)]


def test_minimum_inter_spike_interval_is_two_even_with_refractory_zero():
    image = base_image()
    image.debug_index, image.bias = 7, 60.0  # bias drives neuron k = 7 + 3 = 10
    image.thresholds[10] = 50.0
    twin = make_twin(image)
    result = twin.run([(10, 0)])
    assert [s for s, k in spikes(result)] == [0, 2, 4, 6, 8]
    assert {k for s, k in spikes(result)} == {10}  # bias acts on debug_index + 3 only


def test_refractory_blocks_max_tref_1_steps_while_the_membrane_keeps_integrating():
    image = base_image()
    image.debug_index, image.bias = 7, 30.0
    image.thresholds[10] = 10.0
    image.refractory[10] = 3
    twin = make_twin(image)
    assert [s for s, k in spikes(twin.run([(11, 0)]))] == [0, 4, 8]
    # steps 9 and 10 blocked, still integrating the bias; step 11 = r_last is never computed
    assert twin.membrane[10] == 60.0


def always_firing_neuron_10(refractory: int = 0) -> p.BoardImage:
    """Neuron 10 with a negative threshold: it fires in every step its refractory counter allows."""
    image = base_image()
    image.thresholds[10] = -1.0
    image.refractory[10] = refractory
    return image


def spike_steps(twin: NeuroCoreXTwin, k: int) -> list[int]:
    return [int(s) for s in np.flatnonzero(twin.last_run_frames[:, k - 4])]


def test_state_carries_over_as_it_stood_after_step_r_last_minus_1():
    # Spec §5 [verified]: the board stops before step r_last; a neuron that fired in the last
    # full frame (r_last - 1) is still refractory in step 0 of the next run.
    twin = make_twin(always_firing_neuron_10())
    twin.run([(3, 0)])  # r_last 3: steps 0, 1, 2 -> fires at 0 and 2 (the last full frame)
    assert spike_steps(twin, 10) == [0, 2]
    assert twin.refractory_counters[10] == 1
    twin.run([(6, 0)])  # blocked at 0: opposite parity
    assert spike_steps(twin, 10) == [1, 3, 5]
    twin.run([(5, 0)])  # fired at 5 of the previous run -> 1, 3; its last full frame (4) is quiet
    assert spike_steps(twin, 10) == [1, 3]
    assert twin.refractory_counters[10] == 0
    twin.run([(6, 0)])
    assert spike_steps(twin, 10) == [0, 2, 4]
    # a fresh board with the same configuration starts on the even steps
    fresh = make_twin(always_firing_neuron_10())
    fresh.run([(6, 0)])
    assert spike_steps(fresh, 10) == [0, 2, 4]


def test_a_longer_refractory_count_carries_over_too():
    twin = make_twin(always_firing_neuron_10(refractory=3))
    twin.run([(1, 0)])  # r_last 1: only step 0 is computed, and the neuron fires in it
    assert spike_steps(twin, 10) == [0]
    twin.run([(9, 0)])  # counter 1 at the start: steps 0, 1, 2 blocked, then every 4th step
    assert spike_steps(twin, 10) == [3, 7]
    twin.run([(9, 0)])  # fired at 7, steps 8 (computed) and 9 (never computed): counter 2
    assert spike_steps(twin, 10) == [2, 6]


def test_membrane_and_synaptic_state_are_cleared_between_runs():
    image = base_image()
    image.thresholds[6] = p.SILENT_THRESHOLD
    twin = make_twin(image)
    twin.run([(0, 4), (1, 0)])  # input 4 released at 0 adds 100 to neuron 6 in step 1
    assert twin.membrane[6] == 100.0
    twin.run([(1, 0)])  # one computed step, no input
    assert twin.membrane[6] == 0.0


def test_leak_wraps_idle_neurons_around_and_makes_them_fire_at_step_26():
    image = p.BoardImage.empty()
    image.thresholds[4:94] = 50.0
    image.leak = 5.0
    twin = make_twin(image)
    result = twin.run([(0, 0), (40, 0)])
    matrix = result.spike_matrix()
    assert not matrix[:26].any()
    assert matrix[26, 4:94].all()  # all 90 neurons at once
    assert not matrix[:, :4].any() and not matrix[:, 94:].any()  # slots 0-3, 94-95 never fire


def test_positive_overflow_wraps():
    image = base_image()
    image.thresholds[6] = p.SILENT_THRESHOLD
    image.leak = 5.0
    twin = make_twin(image)
    # releases 0..3, steps 0..2 computed. v6: -5 -> -5-5+100 = 90 -> 90-5+100 = 185 wraps to -71
    twin.run([(0, 4), (0, 4), (0, 0), (0, 0)])
    assert twin.membrane[6] == -71.0
    assert twin.membrane[20] == -15.0  # idle: three steps of leak


def test_ff_gain_multiplies_the_weight():
    image = base_image()
    image.thresholds[4] = p.SILENT_THRESHOLD
    image.gain = 3
    twin = make_twin(image)
    twin.run([(0, 2), (0, 0), (0, 0)])  # input released at 0 arrives in step 1, the last computed
    assert twin.membrane[4] == 180.0 - 256.0  # 3 * 60 = 180 wraps too


def test_recurrent_current_accumulates_while_others_spike_and_drops_otherwise():
    image = p.BoardImage.empty()
    image.debug_index, image.bias = 1, 60.0  # neuron 4 fires at 0, 2, 4, 6, 8 (bias)
    image.thresholds[4] = 50.0
    image.ff_weights[20 + 2, 9] = 100  # input 9 drives neuron 20
    image.thresholds[20] = 50.0
    image.aa_weights[10 + 2, 4 + 1] = 3  # neuron 4 -> neuron 10 (weight 3)
    twin = make_twin(image)
    # inputs released 1..8 (the last never applied), steps 0..7 computed -> neuron 20 fires 3, 5, 7
    result = twin.run([(1, 9)] + [(0, 9)] * 7)
    assert [s for s, k in spikes(result) if k == 20] == [3, 5, 7]
    # I_syn of neuron 10 at steps 1..7: 3, 0 (nobody spiked at 1), 3, 3, 6, 6, 9 -> v = 30
    assert twin.membrane[10] == 30.0
    # an isolated pre spike adds its weight once, one step later
    image.ff_weights[:] = 0
    twin = make_twin(image)
    twin.run([(2, 0)])  # steps 0, 1: neuron 4 spikes at 0
    assert twin.membrane[10] == 3.0


def test_ff_stdp_updates_the_transposed_entry_not_the_synapse_in_use():
    image = base_image()
    image.tpre_ff, image.dw_pos = 5, 3
    image.stdp_enable_ff[2, 4 + 1] = True  # the entry the board actually updates
    image.stdp_enable_ff[4 + 2, 2] = True  # the synapse in use: never updated
    image.ff_weights[2, 5] = 10
    twin = make_twin(image)
    twin.run([(0, 2), (10, 0)])  # input 2 reaches neuron 4 at step 1, neuron 4 fires at 2
    assert twin.ff_weights[2, 5] == 13
    assert twin.ff_weights[6, 2] == 60


def neuron_4_fires_at_step_4() -> p.BoardImage:
    """Neuron 4 driven by a bias of 10 against a threshold of 45: it fires at step 4 (then 9)."""
    image = base_image()
    image.debug_index, image.bias = 1, 10.0  # bias on k = 1 + 3 = 4
    image.thresholds[4] = 45.0
    return image


def test_bias_driven_post_neuron_fires_at_4_and_9():
    twin = make_twin(neuron_4_fires_at_step_4())
    assert spikes(twin.run([(10, 0)])) == [(4, 4), (9, 4)]


def test_ff_ltp_counts_inputs_released_1_to_tpre_steps_before_the_post_spike():
    # Spec §7 [verified]: a pre-post gap of one step counts, tpre_FF_max + 1 does not. Input 9
    # has no weight onto any neuron; its transposed entry FF[9, 4 + 1] learns.
    for gap, grows in ((-1, False), (0, False), (1, True), (2, True), (3, False)):
        image = neuron_4_fires_at_step_4()
        image.tpre_ff, image.dw_pos = 2, 1
        image.stdp_enable_ff[9, 5] = True
        twin = make_twin(image)
        twin.run(p.events_from_steps([(4 - gap, 9), (8, 0)]))
        assert twin.ff_weights[9, 5] == (1 if grows else 0), gap


def test_ff_ltp_is_written_in_the_step_of_the_post_spike():
    image = neuron_4_fires_at_step_4()
    image.tpre_ff, image.dw_pos = 2, 1
    image.stdp_enable_ff[9, 5] = True
    twin = make_twin(image)
    twin.run(p.events_from_steps([(3, 9), (5, 0)]))  # post spike at 4 = r_last - 1, the last computed step
    assert twin.ff_weights[9, 5] == 1
    twin = make_twin(image)
    twin.run(p.events_from_steps([(3, 9), (4, 0)]))  # r_last 4: the post step is never computed
    assert twin.ff_weights[9, 5] == 0


def test_ff_ltd_is_written_in_the_release_step_for_post_spikes_1_to_tpost_aa_earlier():
    # Spec §7 [verified]: LTD is written in the step the input arrives (its release step), for a
    # post spike 1 to tpost_AA_max steps earlier; it reads row a and writes row 3.
    for gap, shrinks in ((-1, False), (0, False), (1, True), (2, True), (3, False)):
        image = neuron_4_fires_at_step_4()
        image.tpost_aa, image.dw_neg = 2, 4  # FF LTD uses the AA post window
        image.tpost_ff = 7  # decoded but unused
        image.stdp_enable_ff[7, 5] = True
        image.ff_weights[7, 5] = 10
        twin = make_twin(image)
        twin.run(p.events_from_steps([(4 + gap, 7), (8, 0)]))
        assert twin.ff_weights[3, 5] == (6 if shrinks else 0), gap
        assert twin.ff_weights[7, 5] == 10  # the row it read is unchanged


def test_ff_ltd_of_an_input_released_in_the_last_computed_step_counts():
    image = neuron_4_fires_at_step_4()
    image.tpost_aa, image.dw_neg = 2, 4
    image.stdp_enable_ff[7, 5] = True
    image.ff_weights[7, 5] = 10
    twin = make_twin(image)
    twin.run(p.events_from_steps([(5, 7), (6, 0)]))  # released at r_last - 1
    assert twin.ff_weights[3, 5] == 6


def test_ff_ltd_floors_at_minus_one():
    image = neuron_4_fires_at_step_4()
    image.tpost_aa, image.dw_neg = 2, 4
    image.stdp_enable_ff[7, 5] = True
    image.ff_weights[7, 5] = 1
    twin = make_twin(image)
    twin.run(p.events_from_steps([(5, 7), (8, 0)]))
    assert twin.ff_weights[3, 5] == -1


def test_readback_after_an_stdp_run_is_the_learned_ram():
    image = neuron_4_fires_at_step_4()
    image.tpre_ff, image.tpost_aa, image.dw_pos, image.dw_neg = 2, 2, 3, 4
    image.stdp_enable_ff[9, 5] = image.stdp_enable_ff[7, 5] = True
    image.ff_weights[7, 5] = 10
    twin = make_twin(image)
    twin.run(p.events_from_steps([(3, 9), (5, 7), (8, 0)]))  # LTP of FF[9, 5], LTD into FF[3, 5]
    twin.feed(p.encode_readback())
    readback = p.decode_readback(twin.take_output())
    expected = image.ff_weights.copy()
    expected[9, 5], expected[3, 5] = 3, 6
    assert np.array_equal(readback, expected)


def test_ltp_wraps_at_127():
    image = base_image()
    image.tpre_ff, image.dw_pos = 5, 1
    image.stdp_enable_ff[2, 5] = True
    image.ff_weights[2, 5] = 127
    twin = make_twin(image)
    twin.run([(0, 2), (10, 0)])
    assert twin.ff_weights[2, 5] == -128


def test_aa_stdp_ltp_from_the_rtl_reading():
    image = p.BoardImage.empty()
    image.debug_index, image.bias = 1, 60.0  # neuron 4 fires at 0, 2 ...
    image.thresholds[4] = 50.0
    image.ff_weights[20 + 2, 9] = 100
    image.thresholds[20] = 50.0  # neuron 20 fires at 2
    image.tpre_aa, image.dw_pos = 3, 2
    image.stdp_enable_aa[20 + 2, 4 + 1] = True
    twin = make_twin(image)
    twin.run([(0, 9), (2, 0)])  # r_last = 3
    assert twin.aa_weights[22, 5] == 2


def test_stdp_disabled_without_enable_bits_even_with_windows_set():
    image = base_image()
    image.tpre_ff = image.tpost_ff = image.tpre_aa = image.tpost_aa = 127
    image.dw_pos = image.dw_neg = 1
    twin = make_twin(image)
    before = twin.ff_weights
    twin.run([(0, 2), (0, 3), (0, 4), (20, 0)])
    assert np.array_equal(twin.ff_weights, before)


def test_readback_returns_the_ram_minus_its_last_entry():
    image = base_image()
    image.ff_weights[95, 95] = 9
    twin = make_twin(image)
    twin.feed(p.encode_readback())
    data = twin.take_output()
    assert len(data) == 9215
    assert np.array_equal(p.decode_readback(data, fill=9), image.ff_weights)


def test_readback_during_an_open_ended_run_ends_it():
    image = base_image()
    twin = NeuroCoreXTwin(image, auto_advance=False)
    twin.take_output()
    twin.feed(p.encode_events([(0, 2), (0, 3)], terminate=False) + p.EVENT_TERMINATOR)
    assert twin.run_active
    twin.tick()
    # timed board: the run is still stepping when a read-back arrives
    twin.feed(p.encode_readback())
    out = twin.take_output_chunks()
    assert not twin.run_active
    assert [kind for kind, _ in out][-1] == "readback"


def test_open_ended_run_streams_frames_as_events_arrive():
    twin = make_twin(base_image())
    twin.feed(p.encode_events([(0, 2), (0, 4)], terminate=False))
    assert twin.run_active and twin.step_index == 1  # the last event's fate is not known yet
    twin.feed(p.encode_event_records([(0, 0), (5, 0)]))
    # steps without a release are determined while the queue holds an event; releasing the
    # only queued one must wait for the next record or the terminator
    assert twin.step_index == 8
    twin.feed(p.EVENT_TERMINATOR)
    assert not twin.run_active
    streamed = p.SpikeStreamDecoder().feed_spikes(twin.take_output())
    reference = make_twin(base_image()).run([(0, 2), (0, 4), (0, 0), (5, 0)])
    assert streamed[: len(reference.spikes())] == reference.spikes()


def test_timed_open_ended_run_pauses_dt_while_the_queue_is_empty():
    twin = NeuroCoreXTwin(base_image(), auto_advance=False)
    twin.feed(p.encode_events([(0, 2)], terminate=False))
    for _ in range(10):
        twin.tick()  # event 2 released at 0, then the queue is empty for 9 steps
    twin.feed(p.encode_event_records([(0, 4), (3, 0)]) + p.EVENT_TERMINATOR)
    while twin.run_active:
        twin.tick()
    frames = twin.last_run_frames
    assert frames[2, 0] and frames[12, 2]  # neuron 4 at 2; input 4 released at 10 fires 6 at 12
    assert frames.shape[0] == 14  # the dummy left at 14: steps 0..13 computed


def test_queue_overflow_drops_events():
    twin = NeuroCoreXTwin(base_image(), auto_advance=False)
    twin.feed(p.encode_events([(0, 0)] * (p.QUEUE_CAPACITY + 5), terminate=False))
    assert twin.queued_events == p.QUEUE_CAPACITY and twin.dropped_events == 5


def test_twin_image_reports_the_configuration():
    image = base_image()
    image.leak, image.bias, image.debug_index = 2.5, 1.0, 9
    image.refractory[0] = image.gain  # the wire carries the gain in refractory entry 0
    assert make_twin(image).image == image.quantized()
    assert make_twin(image).image.thresholds[0] == 131062 / 1024  # 127.99 as the board holds it


def test_run_gives_the_frames_a_host_decodes_from_the_raw_bytes_over_many_runs():
    # state carries over between runs, so a long random sequence exercises every run boundary
    image = base_image()
    image.aa_weights[12, 5] = 3
    image.thresholds[10] = -1.0  # a neuron that fires whenever its refractory counter allows
    image.refractory[10] = 2
    by_run, by_bytes = make_twin(image), make_twin(image)
    rng = np.random.default_rng(0)
    for _ in range(60):
        events = [(int(dt), int(a)) for dt, a in zip(rng.integers(0, 3, 12), rng.integers(0, 8, 12))]
        frames = by_run.run(events).frames
        by_bytes.feed(p.encode_events(events))
        out = by_bytes.take_output()
        r_last = int(p.release_steps(events)[-1])
        assert len(out) == 1 + p.stream_bytes_for_run(r_last)
        decoded = p.SpikeStreamDecoder(max_frames=r_last).feed_array(out)
        assert np.array_equal(frames, decoded)
