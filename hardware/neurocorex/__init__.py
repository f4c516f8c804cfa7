"""NeuroCoreX FPGA board support: wire protocol, digital twin, virtual board, serial driver.

Nothing in this package imports Qt; the GUI and the mapper call into it.

Modules
-------
protocol
    Constants, Q7.10, command encoders/decoders, :class:`BoardImage`, spike-stream decoder.
twin
    :class:`NeuroCoreXTwin`, the bit-exact digital twin.
virtual_board
    :class:`VirtualBoard`, the twin served on a pseudo-terminal.
driver
    :class:`NeuroCoreXDriver`, pyserial driver with bounded reads.
discovery
    :func:`list_ports`, :func:`find_board_port`.
"""

from hardware.neurocorex.discovery import PortInfo, find_board_port, list_ports
from hardware.neurocorex.driver import NeuroCoreXDriver, StreamingRun
from hardware.neurocorex.protocol import (
    BoardImage,
    RunResult,
    SpikeStreamDecoder,
    decode_readback,
    events_from_steps,
    parse_host_stream,
    release_steps,
    silent_addresses,
)
from hardware.neurocorex.twin import NeuroCoreXTwin
from hardware.neurocorex.virtual_board import VirtualBoard

__all__ = [
    "BoardImage",
    "NeuroCoreXDriver",
    "NeuroCoreXTwin",
    "PortInfo",
    "RunResult",
    "SpikeStreamDecoder",
    "StreamingRun",
    "VirtualBoard",
    "decode_readback",
    "events_from_steps",
    "find_board_port",
    "list_ports",
    "parse_host_stream",
    "release_steps",
    "silent_addresses",
]
