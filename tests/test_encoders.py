"""Input encoders and file loaders."""

import numpy as np
import pytest

from engine import encoders
from engine.errors import ParameterError


def test_digits_ship_with_sklearn_and_are_scaled():
    data = encoders.load_digits()
    assert data.images.shape == (1797, 64) and data.images.max() == 1.0
    assert set(np.unique(data.labels)) == set(range(10))


def test_split_is_seeded_and_disjoint():
    data = encoders.load_digits()
    test = encoders.split_dataset(data, "test", 0.25, seed=3)
    train = encoders.split_dataset(data, "train", 0.25, seed=3)
    assert len(test.labels) + len(train.labels) == 1797
    assert np.array_equal(test.images, encoders.split_dataset(data, "test", 0.25, seed=3).images)


def test_rate_encoding_matches_bernoulli_statistics():
    images = np.array([[0.0, 0.5, 1.0]])
    data = encoders.Dataset(images, np.array([1]))
    enc = encoders.encode(data, encoding="rate", max_rate=100.0, presentation=10_000.0, rest=0.0,
                          dt=1.0, n_samples=1, seed=1)
    counts = np.bincount(enc.indices, minlength=3)
    # p = x * 100 Hz * 1 ms = 0.1 x per step over 10 000 steps; 4 sigma band
    assert counts[0] == 0
    for x, c in ((0.5, counts[1]), (1.0, counts[2])):
        mean = 10_000 * 0.1 * x
        assert abs(c - mean) < 4 * np.sqrt(mean * (1 - 0.1 * x))


def test_latency_encoding_is_exact_and_samples_follow_each_other():
    images = np.array([[1.0, 0.5, 0.05], [0.25, 0.0, 1.0]])
    data = encoders.Dataset(images, np.array([0, 1]))
    enc = encoders.encode(data, encoding="latency", max_rate=0, presentation=10.0, rest=5.0, dt=1.0,
                          shuffle=False)
    assert list(enc.sample_start) == [0, 15] and enc.presentation_steps == 10
    assert list(zip(enc.steps.tolist(), enc.indices.tolist())) == [(0, 0), (5, 1), (15, 2), (23, 0)]  # 7.5 rounds to 8
    assert enc.n_steps == 25


def test_same_seed_same_spikes_other_seed_other_spikes():
    data = encoders.load_digits()
    kw = dict(encoding="rate", max_rate=200.0, presentation=50.0, rest=0.0, dt=1.0, n_samples=5)
    a = encoders.encode(data, seed=7, **kw)
    b = encoders.encode(data, seed=7, **kw)
    c = encoders.encode(data, seed=8, **kw)
    assert np.array_equal(a.steps, b.steps) and np.array_equal(a.indices, b.indices)
    assert not (a.steps.size == c.steps.size and np.array_equal(a.indices, c.indices))


def _eager_encoding(data, *, encoding, max_rate, presentation, rest, dt, n_samples=0, shuffle=True,
                    latency_threshold=0.1, seed=0):
    """The encoder as it was before it became lazy: every sample encoded up front (reference)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data.labels)) if shuffle else np.arange(len(data.labels))
    if n_samples:
        order = np.resize(order, n_samples)
    images = data.images[order]
    present = max(1, int(round(presentation / dt)))
    period = present + int(round(rest / dt))
    starts = np.arange(len(order), dtype=np.int64) * period
    if encoding == "rate":
        p = np.clip(images * max_rate * dt * 1e-3, 0.0, 1.0)
        steps_list, idx_list = [], []
        for s, probs in enumerate(p):
            hits = rng.random((present, probs.size)) < probs
            k, i = np.nonzero(hits)
            steps_list.append(k + starts[s])
            idx_list.append(i)
        steps, indices = np.concatenate(steps_list), np.concatenate(idx_list)
    else:
        s, i = np.nonzero(images > latency_threshold)
        offset = np.minimum(np.rint((1.0 - images[s, i]) * presentation / dt), present - 1)
        steps, indices = starts[s] + offset.astype(np.int64), i
    order = np.argsort(steps, kind="stable")
    return steps[order].astype(np.int64), indices[order].astype(np.int32)


@pytest.mark.parametrize("kw", [
    dict(encoding="rate", max_rate=300.0, presentation=20.0, rest=7.0, dt=0.5, n_samples=6, seed=11),
    dict(encoding="rate", max_rate=1000.0, presentation=3.0, rest=0.0, dt=1.0, n_samples=0, shuffle=False, seed=2),
    dict(encoding="rate", max_rate=2000.0, presentation=2.0, rest=0.5, dt=0.01, n_samples=3, seed=5),
    dict(encoding="latency", max_rate=0.0, presentation=10.0, rest=3.0, dt=0.25, n_samples=40, seed=4),
])
def test_encoding_on_demand_gives_the_spikes_of_the_whole_sequence(kw, monkeypatch):
    """Any split of the run into windows yields exactly the spikes that encoding every sample up
    front gives (same seed), at the same steps and in the same order."""
    data = encoders.load_digits()
    if kw.get("n_samples") == 0:
        data = encoders.Dataset(data.images[:30], data.labels[:30])
    ref_steps, ref_idx = _eager_encoding(data, **kw)
    enc = encoders.encode(data, **kw)
    assert ref_steps.size > 100
    monkeypatch.setattr(encoders.Encoding, "BLOCK_DRAWS", 200)  # several draw blocks per window too
    rng = np.random.default_rng(0)
    cuts = np.unique(np.concatenate([[0, enc.n_steps + 50], rng.integers(0, enc.n_steps, 25)]))
    parts = [enc.spikes(lo, hi) for lo, hi in zip(cuts[:-1], cuts[1:])]
    steps = np.concatenate([p[0] for p in parts])
    idx = np.concatenate([p[1] for p in parts])
    assert np.array_equal(steps, ref_steps) and np.array_equal(idx, ref_idx)
    assert np.array_equal(enc.steps, ref_steps) and np.array_equal(enc.indices, ref_idx)
    late = enc.spikes(enc.sample_start[-1], enc.n_steps)  # a late window alone: no earlier draws needed
    tail = ref_steps >= enc.sample_start[-1]
    assert np.array_equal(late[0], ref_steps[tail]) and np.array_equal(late[1], ref_idx[tail])


def test_event_stream_channels_and_duplicates(tmp_path):
    path = tmp_path / "ev.npz"
    np.savez(path, x=np.array([0, 0, 3, 1]), y=np.array([0, 0, 2, 1]),
             t=np.array([100, 400, 1000, 2600]), polarity=np.array([1, 1, 0, 1]))
    steps, ch = encoders.load_event_stream(path, width=4, height=3, polarity="both", time_unit="us", dt=1.0)
    # first two events fall in step 0 on the same pixel/polarity and collapse
    assert list(zip(steps.tolist(), ch.tolist())) == [(0, 12), (1, 11), (3, 17)]
    steps, ch = encoders.load_event_stream(path, width=4, height=3, polarity="off", time_unit="us", dt=1.0)
    assert list(zip(steps.tolist(), ch.tolist())) == [(1, 11)]
    with pytest.raises(ParameterError, match="outside the 2x2 sensor"):
        encoders.load_event_stream(path, width=2, height=2, polarity="both", time_unit="us", dt=1.0)


def test_spike_files_csv_and_npz(tmp_path):
    csv_path = tmp_path / "s.csv"
    csv_path.write_text("time_ms,index\n1.5,0\n3,2\n")
    t, i = encoders.load_spike_file(csv_path, n=3)
    assert t.tolist() == [1.5, 3.0] and i.tolist() == [0, 2]
    with pytest.raises(ParameterError, match=r"0\.\.1"):
        encoders.load_spike_file(csv_path, n=2)
    bad = tmp_path / "bad.csv"
    bad.write_text("1,0\nabc,1\n")
    with pytest.raises(ParameterError, match="line 2"):
        encoders.load_spike_file(bad, n=3)
    npz = tmp_path / "s.npz"
    np.savez(npz, times=np.array([0.0, 2.0]), indices=np.array([1, 1]))
    assert encoders.load_spike_file(npz, n=2)[1].tolist() == [1, 1]


def test_npz_files_are_never_unpickled(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, images=np.array([object(), object()], dtype=object), labels=np.array([0, 1]))
    with pytest.raises(ParameterError, match="pickle"):
        encoders.load_npz_dataset(path)
    with pytest.raises(ParameterError, match="not found"):
        encoders.load_npz_dataset(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ParameterError, match="not a readable .npz"):
        encoders.load_npz_dataset(tmp_path / "junk.npz")


def test_connection_file(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("pre,post,weight,delay\n0,1,0.5,2.0\n1,0,-0.25,1.0\n")
    pre, post, w, d = encoders.load_connection_file(path, 2, 2)
    assert pre.tolist() == [0, 1] and post.tolist() == [1, 0] and w.tolist() == [0.5, -0.25]
    assert d.tolist() == [2.0, 1.0]
    with pytest.raises(ParameterError, match="post indices"):
        encoders.load_connection_file(path, 2, 1)
