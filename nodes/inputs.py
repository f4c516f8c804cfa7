"""Input nodes: spike sources, current sources and data-set encoders."""

from __future__ import annotations

from engine.errors import Problem
from nodes.base import Category, In, NodeType, Out, PortKind, register
from nodes.params import MAX_TIME_MS, Choice, Float, FloatList, Int, IntList, Seed, Text

SKLEARN_DIGITS_PIXELS = 64  # 8x8 images of the digits data set shipped inside scikit-learn
SKLEARN_DIGITS_SAMPLES = 1797


class SpikeSource(NodeType):
    category = Category.INPUT
    ports = (Out("spikes", PortKind.SPIKES, "spike trains of every channel"),)
    capabilities = frozenset({"spiking", "source"})


@register
class PoissonSource(SpikeSource):
    """Independent Poisson (Bernoulli per step) spike trains.

    In each step k every channel spikes with probability p = rate * dt (rate in Hz, dt in s),
    between start and stop. Keep p <= 0.1 for Poisson fidelity; validation warns above that.
    """

    type_id = "input.poisson"
    title = "Poisson source"
    summary = ("n", "rate")

    n = Int(100, low=1, high=100_000_000, doc="number of independent spike trains")
    rate = Float(10.0, unit="Hz", low=0.0, high=10_000.0, doc="firing rate of every train")
    start = Float(0.0, unit="ms", low=0.0, high=MAX_TIME_MS, doc="time of the first possible spike")
    stop = Float(0.0, unit="ms", low=0.0, high=MAX_TIME_MS, doc="time after which the source is silent; 0 = never")
    seed = Seed()

    def size(self):
        return self.n

    def check(self):
        if self.stop and self.stop <= self.start:
            yield Problem(f"stop ({self.stop:g} ms) is not after start ({self.start:g} ms)",
                          node=self.label, field="stop", hint="set stop = 0 to keep the source on")


@register
class SpikeTrainSource(SpikeSource):
    """Spikes at given times: lists of times (ms) and channel indices, or a .npz/.csv file.

    A .npz file holds arrays ``times`` (ms) and ``indices``; a .csv file has two columns
    ``time_ms,index`` with an optional header line. Each spike is emitted at step round(t / dt).
    """

    type_id = "input.spike_train"
    title = "Spike-train source"
    summary = ("n",)

    n = Int(1, low=1, high=100_000_000, doc="number of channels")
    source = Choice("given", ("given", "file"), doc="spikes listed here, or read from a file")
    times = FloatList((), low=0.0, high=MAX_TIME_MS, unit="ms", visible_if={"source": ("given",)},
                      doc="spike times")
    indices = IntList((), low=0, visible_if={"source": ("given",)},
                      doc="channel index of each spike time")
    file = Text("", is_path=True, file_filter="Spike files (*.npz *.csv)",
                visible_if={"source": ("file",)}, doc=".npz (times, indices) or .csv (time_ms,index)")

    def size(self):
        return self.n

    def check(self):
        if self.source == "given":
            if len(self.times) != len(self.indices):
                yield Problem(f"{len(self.times)} times but {len(self.indices)} indices",
                              node=self.label, field="indices",
                              hint="give one channel index per spike time")
            bad = [i for i in self.indices if i >= self.n]
            if bad:
                yield Problem(f"index {bad[0]} is out of range for n = {self.n}",
                              node=self.label, field="indices", hint=f"raise n to {max(bad) + 1}")
        elif not self.file:
            yield Problem("no spike file chosen", node=self.label, field="file",
                          hint="pick a .npz or .csv file, or switch source to 'given'")


@register
class CurrentSource(NodeType):
    """Injected current: DC, a step, a sine or Gaussian noise, into every target neuron.

    dc:    I(t) = amplitude
    step:  I(t) = amplitude for onset <= t < offset, else 0
    sine:  I(t) = offset_current + amplitude sin(2 pi f t + phase)
    noise: I_k = offset_current + amplitude xi_k, xi_k ~ N(0, 1) drawn per neuron and step
           (Izhikevich's thalamic input; seeded)
    """

    type_id = "input.current"
    title = "Current source"
    category = Category.INPUT
    ports = (Out("current", PortKind.CURRENT, "injected current (pA)"),)
    summary = ("waveform", "amplitude")

    waveform = Choice("dc", ("dc", "step", "sine", "noise"), doc="shape of the current over time")
    amplitude = Float(100.0, unit="pA", low=-1e6, high=1e6, doc="current amplitude")
    onset = Float(0.0, unit="ms", low=0.0, high=MAX_TIME_MS, visible_if={"waveform": ("step",)},
                  doc="start of the step")
    offset = Float(100.0, unit="ms", low=0.0, high=MAX_TIME_MS, visible_if={"waveform": ("step",)},
                   doc="end of the step")
    frequency = Float(10.0, unit="Hz", low=0.0, high=1e5, visible_if={"waveform": ("sine",)},
                      doc="sine frequency")
    phase = Float(0.0, unit="deg", low=-360.0, high=360.0, visible_if={"waveform": ("sine",)},
                  doc="sine phase at t = 0")
    offset_current = Float(0.0, unit="pA", low=-1e6, high=1e6,
                           visible_if={"waveform": ("sine", "noise")},
                           doc="constant added to the sine or the noise")
    seed = Seed(visible_if={"waveform": ("noise",)})

    def check(self):
        if self.waveform == "step" and self.offset <= self.onset:
            yield Problem(f"step offset ({self.offset:g} ms) is not after onset ({self.onset:g} ms)",
                          node=self.label, field="offset", hint="make offset > onset")


@register
class DatasetEncoder(SpikeSource):
    """Encodes images as spikes: rate (Bernoulli, p = pixel * max_rate * dt) or latency coding.

    rate:    every pixel in [0, 1] fires with probability p = pixel * max_rate * dt per step
    latency: every pixel above threshold fires once at t = presentation * (1 - pixel)
    Each sample is shown for ``presentation`` ms followed by ``rest`` ms of silence. With
    ``pixel_noise`` s > 0 every image becomes clip(pixel + N(0, s^2), 0, 1) (one seeded draw per
    image, before the split; the noisy inputs of a kernel-quality measure, MODELS.md §6.4). The digits
    data set (1797 8x8 images) ships inside scikit-learn; a user .npz needs arrays ``images``
    (N x pixels, or N x H x W) and ``labels`` (N).
    """

    type_id = "input.dataset"
    title = "Dataset encoder"
    ports = (
        Out("spikes", PortKind.SPIKES, "one spike train per pixel"),
        Out("labels", PortKind.LABELS, "label of the sample shown at each time"),
    )
    summary = ("dataset", "encoding")

    dataset = Choice("sklearn_digits", ("sklearn_digits", "npz"),
                     doc="built-in 8x8 digits of scikit-learn, or a user .npz file")
    file = Text("", is_path=True, file_filter="NumPy arrays (*.npz)",
                visible_if={"dataset": ("npz",)}, doc=".npz with arrays images and labels")
    pixels = Int(SKLEARN_DIGITS_PIXELS, low=1, high=10_000_000, visible_if={"dataset": ("npz",)},
                 doc="pixels per image in the .npz file (checked when loading)")
    encoding = Choice("rate", ("rate", "latency"), doc="rate (Bernoulli) or time-to-first-spike")
    max_rate = Float(100.0, unit="Hz", low=0.0, high=10_000.0, doc="rate of a pixel of value 1")
    latency_threshold = Float(0.1, unit="1", low=0.0, high=1.0, visible_if={"encoding": ("latency",)},
                              doc="pixels at or below this value never fire")
    presentation = Float(100.0, unit="ms", low=0.1, high=1e6, doc="time each sample is shown")
    rest = Float(0.0, unit="ms", low=0.0, high=1e6, doc="silent time between samples")
    split = Choice("all", ("all", "train", "test"), doc="which part of the data set to stream")
    test_fraction = Float(0.33, unit="1", low=0.0, high=1.0, low_open=True, high_open=True,
                          doc="fraction of samples held out as the test split")
    n_samples = Int(0, low=0, high=100_000_000, doc="samples to present; 0 = the whole split")
    shuffle = Choice("yes", ("yes", "no"), doc="present samples in a seeded random order")
    pixel_noise = Float(0.0, unit="1", low=0.0, high=10.0,
                        doc="std of Gaussian noise added once to every pixel (clipped to [0, 1]); 0 = none")
    seed = Seed()

    def size(self):
        return SKLEARN_DIGITS_PIXELS if self.dataset == "sklearn_digits" else self.pixels

    def check(self):
        if self.dataset == "sklearn_digits" and self.split != "all":
            n_test = round(self.test_fraction * SKLEARN_DIGITS_SAMPLES)
            if n_test in (0, SKLEARN_DIGITS_SAMPLES):
                yield Problem(f"the {self.split} split is empty ({n_test} of {SKLEARN_DIGITS_SAMPLES} "
                              "samples are test samples)", node=self.label, field="test_fraction",
                              hint="use a test_fraction between 0.01 and 0.99, or split = all")
        if self.dataset == "npz" and not self.file:
            yield Problem("no .npz file chosen", node=self.label, field="file",
                          hint="pick a .npz file with arrays 'images' and 'labels'")


@register
class TeacherSource(SpikeSource):
    """Supervision spikes (Hao et al. 2020): while a data-set sample is shown, the channel of its
    label fires at `rate`; the other channels are silent, and so is every channel during the rest
    (channels = all_but_label: the other way round, to silence the wrong classes).

    Each step of the presentation the label channel spikes with probability p = rate * dt, except
    in the step right after one of its spikes (a one-step dead time, as the reference's Poisson
    neurons): mean count per presentation = steps * p / (1 + p). Wire it one-to-one onto the class
    neurons with a weight that makes each teacher spike a class spike; set rate = 0 (a training
    phase override) to switch the teacher off for testing.
    """

    type_id = "input.teacher"
    title = "Teacher"
    ports = (
        In("labels", PortKind.LABELS, "labels of the data-set encoder's samples", required=True),
        Out("spikes", PortKind.SPIKES, "one spike train per class"),
    )
    summary = ("n", "rate")

    n = Int(10, low=1, high=1_000_000, doc="number of channels, one per class (label c drives channel c)")
    rate = Float(200.0, unit="Hz", low=0.0, high=10_000.0, doc="rate of the driven channels while a sample is shown")
    channels = Choice("label", ("label", "all_but_label"),
                      doc="which channels fire: the label's (drive it), or all others (wire them "
                          "inhibitory to silence the wrong classes)")
    seed = Seed()

    def size(self):
        return self.n

    def check_in_graph(self, graph):
        for src, _ in graph.upstream(self.id, "labels"):
            if src.type_id == "input.dataset" and src.dataset == "sklearn_digits" and self.n < 10:
                yield Problem(f"the digits have 10 classes but the teacher has n = {self.n} channels",
                              node=self.label, field="n", hint="set n = 10")


@register
class EventStream(SpikeSource):
    """Events of an event camera (DVS) from a .npz file with arrays x, y, t, polarity.

    Channel of an event: index = p * width * height + y * width + x (polarity-major, as N-MNIST
    in Orchard et al. 2015); events are binned to the simulation step and duplicates within a step
    collapse to one spike.
    """

    type_id = "input.event_stream"
    title = "Event stream"
    summary = ("width", "height")

    file = Text("", is_path=True, file_filter="Event files (*.npz)",
                doc=".npz with arrays x, y, t, polarity")
    width = Int(34, low=1, high=4096, unit="px", doc="sensor width")
    height = Int(34, low=1, high=4096, unit="px", doc="sensor height")
    polarity = Choice("both", ("both", "on", "off"), doc="which event polarities to use")
    time_unit = Choice("us", ("us", "ms"), doc="unit of the t array in the file")

    def size(self):
        return self.width * self.height * (2 if self.polarity == "both" else 1)

    def check(self):
        if not self.file:
            yield Problem("no event file chosen", node=self.label, field="file",
                          hint="pick a .npz file with arrays x, y, t, polarity")
