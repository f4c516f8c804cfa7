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
