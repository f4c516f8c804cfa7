"""Input encoders and file loaders: data sets, event streams, spike and connection files.

Pure functions from arrays (or files) to spikes on the time grid, shared by the compiler, the
board mapper and the readouts. Files are read with ``np.load(allow_pickle=False)`` or as CSV
text; a bad file raises :class:`ParameterError` naming the node field, the file and the fix.

Time grid: a spike at time t is emitted at step ``round(t / dt)`` (MODELS.md §0.2).
"""

from __future__ import annotations

import csv
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import ParameterError
from nodes.params import MAX_TIME_MS

#: limits of weights and delays read from connection files (those of the Projection node)
MAX_WEIGHT = 1e6
MAX_DELAY_MS = 10_000.0
#: samples of sklearn's digits data set (1797 images of 8x8 pixels, values 0..16)
DIGITS_MAX_VALUE = 16.0


@dataclass
class Dataset:
    """Images scaled to [0, 1] (N x pixels) and integer labels (N)."""

    images: np.ndarray
    labels: np.ndarray

    @property
    def n_pixels(self) -> int:
        return int(self.images.shape[1])


class Encoding:
    """A data set presented sample after sample as spikes, encoded on demand.

    Sample ``s`` shows image ``order[s]`` during steps ``[sample_start[s], sample_start[s] +
    presentation_steps)`` and has label ``labels[s]``. :meth:`spikes` encodes only the samples and
    steps of a window, so a run pays (in time and memory) for the part of the sequence it reaches,
    not for every sample: with ``dt = 0.001 ms`` one digit shown for 100 ms is 6.4 million random
    draws. The spikes of a window are exactly those the whole sequence has there: the rate code's
    draws come from one seeded PCG64 stream, sample after sample, each sample ``present x
    pixels`` draws in row-major order, and a window starts the stream at its own position
    (``PCG64.advance``) instead of drawing everything before it.

    ``steps`` / ``indices`` (all spikes, sorted by step) are built on first use, for consumers that
    need the whole sequence at once (the NEST and torch backends, board deployment).
    """

    #: random draws made at once while encoding a window (bounds the memory of a long window)
    BLOCK_DRAWS = 1 << 20

    def __init__(self, data: Dataset, order: np.ndarray, *, encoding: str, max_rate: float, presentation: float,
                 rest: float, dt: float, latency_threshold: float, rng_state: dict | None):
        self._images = data.images
        self.order = np.asarray(order, np.int64)
        self.labels = data.labels[self.order]
        self.encoding = encoding
        self.max_rate, self.presentation, self.dt = max_rate, presentation, dt
        self.latency_threshold = latency_threshold
        self.presentation_steps = max(1, int(round(presentation / dt)))
        self.period = self.presentation_steps + int(round(rest / dt))
        self.sample_start = np.arange(self.order.size, dtype=np.int64) * self.period
        self.n_channels = data.n_pixels
        self._rng_state = rng_state  # PCG64 state after the shuffle: where sample 0's draws begin
        self._all = None

    @property
    def n_steps(self) -> int:
        if not self.sample_start.size:
            return 0
        return int(self.sample_start[-1] + self.presentation_steps)

    @property
    def steps(self) -> np.ndarray:
        return self._everything()[0]

    @property
    def indices(self) -> np.ndarray:
        return self._everything()[1]

    def _everything(self) -> tuple[np.ndarray, np.ndarray]:
        if self._all is None:
            self._all = self.spikes(0, self.n_steps)
        return self._all

    def spikes(self, k_lo: int, k_hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Spikes with ``k_lo <= step < k_hi``: (steps int64, channels int32), sorted by step, then channel."""
        k_lo, k_hi = max(int(k_lo), 0), min(int(k_hi), self.n_steps)
        steps_list, idx_list = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        if k_hi > k_lo:
            for s in range(k_lo // self.period, (k_hi - 1) // self.period + 1):
                start = int(self.sample_start[s])
                a, b = max(k_lo - start, 0), min(k_hi - start, self.presentation_steps)
                if b <= a:  # the window lies in this sample's rest
                    continue
                x = self._images[self.order[s]]
                if self.encoding == "rate":
                    self._rate_rows(s, x, a, b, start, steps_list, idx_list)
                else:
                    i = np.nonzero(x > self.latency_threshold)[0]
                    offset = np.minimum(np.rint((1.0 - x[i]) * self.presentation / self.dt),
                                        self.presentation_steps - 1).astype(np.int64)
                    order = np.argsort(offset, kind="stable")
                    i, offset = i[order], offset[order]
                    keep = (offset >= a) & (offset < b)
                    steps_list.append(start + offset[keep])
                    idx_list.append(i[keep])
        return np.concatenate(steps_list), np.concatenate(idx_list).astype(np.int32)

    def _rate_rows(self, s: int, x: np.ndarray, a: int, b: int, start: int, steps_list: list, idx_list: list) -> None:
        """Rows ``a .. b`` of sample ``s``: pixel x spikes with probability x * max_rate * dt / 1000."""
        probs = np.clip(x * self.max_rate * self.dt * 1e-3, 0.0, 1.0)
        pixels = probs.size
        rows = max(1, self.BLOCK_DRAWS // max(pixels, 1))
        for r0 in range(a, b, rows):
            r1 = min(r0 + rows, b)
            bits = np.random.PCG64()
            bits.state = self._rng_state
            bits.advance((s * self.presentation_steps + r0) * pixels)
            hits = np.random.Generator(bits).random((r1 - r0, pixels)) < probs
            k, i = np.nonzero(hits)
            steps_list.append(k + (start + r0))
            idx_list.append(i)


def load_digits() -> Dataset:
    """The 8x8 digits data set shipped inside scikit-learn (no download), scaled to [0, 1]."""
    from sklearn.datasets import load_digits as sk_load_digits

    data = sk_load_digits()
    return Dataset(np.asarray(data.data, dtype=np.float64) / DIGITS_MAX_VALUE,
                   np.asarray(data.target, dtype=np.int64))


def file_kind(path: str | Path) -> str | None:
    """None for a regular file, else what the path is ("a directory", "a FIFO", "missing" ...).

    ``os.stat`` never blocks, whereas opening a FIFO or a terminal for reading waits for a writer.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def require_regular_file(path: str | Path, field: str) -> Path:
    """The path if it names a regular file; else a ParameterError saying what it is instead."""
    kind = file_kind(path)
    if kind == "missing":
        raise ParameterError(field, f"file {str(path)!r} not found; check the path (relative paths "
                                    "start at the project file's folder)")
    if kind is not None:
        raise ParameterError(field, f"{str(path)!r} is {kind}, not a regular file; choose a data file")
    return Path(path)


def _open_npz(path: Path, field: str):
    require_regular_file(path, field)
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ParameterError(field, f"file {str(path)!r} not found; check the path (relative paths "
                                    "start at the project file's folder)") from None
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ParameterError(field, f"{str(path)!r} is not a readable .npz file ({exc}); save "
                                    "arrays with numpy.savez") from None


def _array(npz, key: str, path: Path, field: str) -> np.ndarray:
    if key not in npz.files:
        raise ParameterError(field, f"{str(path)!r} has no array {key!r} (it has "
                                    f"{', '.join(npz.files) or 'none'})")
    try:
        return npz[key]
    except ValueError as exc:  # object arrays need pickle, which we refuse
        raise ParameterError(field, f"array {key!r} in {str(path)!r} cannot be read without "
                                    f"pickle ({exc}); store plain numeric arrays") from None


def _numbers(npz, key: str, path: Path, field: str) -> np.ndarray:
    """A numeric array of the file as a flat float64 or int array."""
    arr = _array(npz, key, path, field)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) \
            or np.issubdtype(arr.dtype, np.complexfloating):
        raise ParameterError(field, f"array {key!r} in {str(path)!r} must hold real numbers, "
                                    f"got {arr.dtype}")
    return arr.ravel()


def load_npz_dataset(path: str | Path, field: str = "file") -> Dataset:
    """A user data set: arrays ``images`` (N x pixels or N x H x W) and ``labels`` (N)."""
    path = Path(path)
    with _open_npz(path, field) as npz:
        images = _array(npz, "images", path, field)
        labels = _array(npz, "labels", path, field)
    if images.ndim < 2 or not np.issubdtype(images.dtype, np.number):
        raise ParameterError(field, f"'images' in {str(path)!r} must be a numeric N x pixels array, "
                                    f"got shape {images.shape} of {images.dtype}")
    if not images.size:
        raise ParameterError(field, f"{str(path)!r} holds no images (shape {images.shape}); it needs "
                                    "at least one image of at least one pixel")
    images = images.reshape(images.shape[0], -1).astype(np.float64)
    if labels.shape != (images.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ParameterError(field, f"'labels' in {str(path)!r} must be {images.shape[0]} integers, "
                                    f"got shape {labels.shape} of {labels.dtype}")
    if not np.all(np.isfinite(images)):
        raise ParameterError(field, f"'images' in {str(path)!r} contains NaN or infinity")
    top = images.max() if images.size else 1.0
    if images.min() < 0:
        raise ParameterError(field, f"'images' in {str(path)!r} has negative values; use intensities >= 0")
    return Dataset(images / top if top > 1.0 else images, labels.astype(np.int64))


def add_pixel_noise(data: Dataset, std: float, rng: np.random.Generator) -> Dataset:
    """Every pixel plus N(0, std^2), clipped to [0, 1] (MODELS.md §6.4's AP inputs: std 125/255 of
    the 0..255 scale); one draw per pixel in row-major order."""
    noisy = np.clip(data.images + rng.normal(0.0, std, data.images.shape), 0.0, 1.0)
    return Dataset(noisy, data.labels)


def split_dataset(data: Dataset, split: str, test_fraction: float, seed: int) -> Dataset:
    """A seeded train/test split (stratification is not needed for the sizes we ship)."""
    if split == "all":
        return data
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data.labels))
    n_test = int(round(test_fraction * len(order)))
    chosen = np.sort(order[:n_test] if split == "test" else order[n_test:])
    if not chosen.size:
        total = len(order)
        fix = (f"raise test_fraction to at least {1.5 / total:.2g}" if split == "test"
               else f"lower test_fraction below {1 - 1.5 / total:.4g}")
        raise ParameterError("test_fraction", f"the {split} split is empty ({n_test} of {total} samples "
                                              f"are test samples); {fix}, or use split = all")
    return Dataset(data.images[chosen], data.labels[chosen])


def encode(data: Dataset, *, encoding: str, max_rate: float, presentation: float, rest: float,
           dt: float, n_samples: int = 0, shuffle: bool = True, latency_threshold: float = 0.1,
           seed: int = 0) -> Encoding:
    """Present images one after another as spikes (encoded on demand: see :class:`Encoding`).

    rate:    each pixel x in [0, 1] spikes in each step with probability x * max_rate * dt / 1000
    latency: each pixel above ``latency_threshold`` spikes once, at round((1 - x) * T / dt) steps
             into the presentation (brighter pixels first)
    """
    if encoding not in ("rate", "latency"):
        raise ParameterError("encoding", f"unknown encoding {encoding!r}; use 'rate' or 'latency'")
    rng = np.random.Generator(np.random.PCG64(seed))  # numpy's default_rng(seed)
    order = rng.permutation(len(data.labels)) if shuffle else np.arange(len(data.labels))
    if n_samples:
        order = np.resize(order, n_samples)  # cycle through the data when asked for more
    return Encoding(data, order, encoding=encoding, max_rate=max_rate, presentation=presentation, rest=rest,
                    dt=dt, latency_threshold=latency_threshold, rng_state=rng.bit_generator.state)


def load_event_stream(path: str | Path, *, width: int, height: int, polarity: str, time_unit: str,
                      dt: float, field: str = "file") -> tuple[np.ndarray, np.ndarray]:
    """Events (x, y, t, polarity) to (steps, channel) with duplicates per step collapsed.

    Channel = p * width * height + y * width + x for ``polarity = both`` (polarity-major, as
    N-MNIST); with ``on`` or ``off`` only that polarity is kept and the channel is y * width + x.
    """
    path = Path(path)
    with _open_npz(path, field) as npz:
        x, y, t, p = (_numbers(npz, k, path, field) for k in ("x", "y", "t", "polarity"))
    if not (x.shape == y.shape == t.shape == p.shape) or x.ndim != 1:
        raise ParameterError(field, f"x, y, t, polarity in {str(path)!r} must be 1-D arrays of one length")
    x, y, p = x.astype(np.int64), y.astype(np.int64), (p.astype(np.int64) > 0).astype(np.int64)
    bad = (x < 0) | (x >= width) | (y < 0) | (y >= height)
    if bad.any():
        j = int(np.argmax(bad))
        raise ParameterError(field, f"event {j} at ({x[j]}, {y[j]}) lies outside the "
                                    f"{width}x{height} sensor; set width and height to the sensor size")
    t_ms = t.astype(np.float64) * (1e-3 if time_unit == "us" else 1.0)
    if np.any(t_ms < 0) or not np.all(np.isfinite(t_ms)) or np.any(t_ms > MAX_TIME_MS):
        raise ParameterError(field, f"event times in {str(path)!r} must be finite, >= 0 and at most "
                                    f"{MAX_TIME_MS:g} ms")
    keep = np.ones(x.shape, bool) if polarity == "both" else (p == (1 if polarity == "on" else 0))
    channel = y * width + x + (p * width * height if polarity == "both" else 0)
    steps = np.rint(t_ms / dt).astype(np.int64)
    key = np.unique(steps[keep] * (2 * width * height) + channel[keep])
    return key // (2 * width * height), (key % (2 * width * height)).astype(np.int32)


def load_spike_file(path: str | Path, n: int, field: str = "file") -> tuple[np.ndarray, np.ndarray]:
    """Spike times (ms) and channel indices from .npz (``times``, ``indices``) or .csv
    (``time_ms,index`` per line, optional header)."""
    path = require_regular_file(path, field)
    if path.suffix.lower() == ".npz":
        with _open_npz(path, field) as npz:
            times = _numbers(npz, "times", path, field).astype(np.float64)
            indices = _numbers(npz, "indices", path, field)
    elif path.suffix.lower() == ".csv":
        rows = _read_csv(path, field, 2)
        times = np.array([r[0] for r in rows], np.float64)
        indices = np.array([r[1] for r in rows], np.float64)
    else:
        raise ParameterError(field, f"{str(path)!r}: use a .npz or .csv spike file")
    if times.shape != indices.shape:
        raise ParameterError(field, f"{str(path)!r}: {times.size} times but {indices.size} indices")
    if indices.size and (np.any(indices < 0) or np.any(indices >= n) or np.any(indices % 1)):
        raise ParameterError(field, f"{str(path)!r}: indices must be integers in 0..{n - 1}; "
                                    "raise the node's n if the file has more channels")
    if not np.all(np.isfinite(times)) or np.any(times < 0) or np.any(times > MAX_TIME_MS):
        raise ParameterError(field, f"{str(path)!r}: spike times must be finite, >= 0 and <= "
                                    f"{MAX_TIME_MS:g} ms")
    return times, indices.astype(np.int32)


def load_connection_file(path: str | Path, n_pre: int, n_post: int, field: str = "file"):
    """Connections (pre, post, weight or None, delay_ms or None) from .npz or .csv."""
    path = require_regular_file(path, field)
    if path.suffix.lower() == ".npz":
        with _open_npz(path, field) as npz:
            pre = _numbers(npz, "pre", path, field)
            post = _numbers(npz, "post", path, field)
            weight = _numbers(npz, "weight", path, field).astype(np.float64) if "weight" in npz.files else None
            delay = _numbers(npz, "delay", path, field).astype(np.float64) if "delay" in npz.files else None
    elif path.suffix.lower() == ".csv":
        rows = _read_csv(path, field, 2, 4)
        width = {len(r) for r in rows}
        if len(width) > 1:
            raise ParameterError(field, f"{str(path)!r}: every line needs the same number of columns")
        cols = np.array(rows, np.float64).reshape(len(rows), -1).T if rows else np.zeros((2, 0))
        pre, post = cols[0], cols[1]
        weight = cols[2] if cols.shape[0] > 2 else None
        delay = cols[3] if cols.shape[0] > 3 else None
    else:
        raise ParameterError(field, f"{str(path)!r}: use a .npz or .csv connection list")
    for name, arr, limit in (("pre", pre, n_pre), ("post", post, n_post)):
        if arr.size and (np.any(arr < 0) or np.any(arr >= limit) or np.any(np.asarray(arr) % 1)):
            raise ParameterError(field, f"{str(path)!r}: {name} indices must be integers in "
                                        f"0..{limit - 1}")
    if pre.shape != post.shape or any(a is not None and a.shape != pre.shape for a in (weight, delay)):
        raise ParameterError(field, f"{str(path)!r}: pre, post, weight and delay differ in length")
    if weight is not None and not (np.all(np.isfinite(weight)) and np.all(np.abs(weight) <= MAX_WEIGHT)):
        raise ParameterError(field, f"{str(path)!r}: weights must be finite numbers within "
                                    f"±{MAX_WEIGHT:g}")
    if delay is not None and not (np.all(np.isfinite(delay)) and np.all((delay >= 0) & (delay <= MAX_DELAY_MS))):
        raise ParameterError(field, f"{str(path)!r}: delays must be finite, in 0..{MAX_DELAY_MS:g} ms")
    return pre.astype(np.int64), post.astype(np.int64), weight, delay


def _read_csv(path: Path, field: str, min_cols: int, max_cols: int | None = None) -> list[list[float]]:
    max_cols = max_cols or min_cols
    require_regular_file(path, field)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParameterError(field, f"file {str(path)!r} not found; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(field, f"cannot read {str(path)!r} as text: {exc}") from None
    rows = []
    for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or row[0].lstrip().startswith("#"):
            continue
        try:
            values = [float(c) for c in row]
        except ValueError:
            if lineno == 1:
                continue  # a header line
            raise ParameterError(field, f"{str(path)!r} line {lineno}: expected numbers, got "
                                        f"{','.join(row)[:60]!r}") from None
        if not min_cols <= len(values) <= max_cols:
            raise ParameterError(field, f"{str(path)!r} line {lineno}: expected {min_cols}"
                                        f"{'' if max_cols == min_cols else f'-{max_cols}'} columns, "
                                        f"got {len(values)}")
        rows.append(values)
    return rows


def teacher_spikes(labels, sample_start, presentation_steps: int, p: float, rng, n_channels: int = 0,
                   others: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Spikes (steps, channels) of a teacher: channel ``labels[s]`` (with ``others``: every channel
    of ``n_channels`` but the label's) spikes with probability ``p`` in each step of sample ``s``'s
    presentation, except right after one of its spikes (one-step dead time: of a run of
    consecutive successful draws, every second one is blocked).

    Returns steps sorted ascending (int64) and the channel of each spike.
    """
    labels = np.asarray(labels, np.int64)
    starts = np.asarray(sample_start, np.int64)
    m = int(presentation_steps)
    if others:
        channels = np.array([[c for c in range(n_channels) if c != label] for label in labels], np.int64)
    else:
        channels = labels[:, None]
    if labels.size == 0 or m == 0 or p <= 0 or channels.shape[1] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    n, k = channels.shape
    draws = rng.random((n, m, k)) < min(p, 1.0)
    # position of each success within its run of consecutive successes: keep the even ones
    run_start = np.zeros_like(draws)
    run_start[:, 0] = draws[:, 0]
    run_start[:, 1:] = draws[:, 1:] & ~draws[:, :-1]
    position = np.arange(m)[None, :, None]
    last_start = np.maximum.accumulate(np.where(run_start, position, -1), axis=1)
    keep = draws & ((position - last_start) % 2 == 0)
    sample, offset, which = np.nonzero(keep)
    return starts[sample] + offset, channels[sample, which]
