"""NeuroCoreX FPGA board support: wire protocol, digital twin, virtual board, serial driver.

Nothing in this package imports Qt; the GUI and the mapper call into it.
"""

from hardware.neurocorex.protocol import (
    BoardImage,
    RunResult,
    SpikeStreamDecoder,
    decode_readback,
    events_from_steps,
    parse_host_stream,
    release_steps,
)
from hardware.neurocorex.twin import NeuroCoreXTwin

__all__ = [
    "BoardImage",
    "RunResult",
    "SpikeStreamDecoder",
    "NeuroCoreXTwin",
    "decode_readback",
    "events_from_steps",
    "parse_host_stream",
    "release_steps",
]
