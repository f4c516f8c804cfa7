"""Errors of the board layer (NeuroCoreX link, protocol, twin and mapping).

Every class derives from :class:`engine.errors.HardwareError`, so the CLI prints them without a
traceback and the GUI shows them in a dialog. Messages say what happened, where (port, byte
offset, row/column) and what to do about it. Structured attributes carry the same facts for code
that wants to react (a GUI progress bar, a retry loop).
"""

from __future__ import annotations

from engine.errors import HardwareError

__all__ = [
    "HardwareError",
    "ProtocolError",
    "BoardTimeoutError",
    "BoardDisconnectedError",
    "PortOpenError",
    "PortInUseError",
    "VerifyError",
    "MappingError",
    "BoardConfigError",
]


class ProtocolError(HardwareError):
    """The board sent bytes that the protocol does not allow at that point.

    Parameters
    ----------
    message : str
        The full, user-facing explanation.
    offset : int, optional
        Byte offset in the stream being decoded where the problem was seen.
    value : int, optional
        The offending byte value.
    """

    def __init__(self, message: str, *, offset: int | None = None, value: int | None = None):
        self.offset = offset
        self.value = value
        super().__init__(message)


class BoardTimeoutError(HardwareError, TimeoutError):
    """The board did not send (or accept) the expected bytes within the time limit.

    Attributes
    ----------
    received : int or None
        Bytes received of what was expected, when known.
    expected : int or None
        Bytes that were expected, when known.
    waited_s : float or None
        How long the driver waited before giving up.
    """

    def __init__(
        self,
        message: str,
        *,
        received: int | None = None,
        expected: int | None = None,
        waited_s: float | None = None,
    ):
        self.received = received
        self.expected = expected
        self.waited_s = waited_s
        super().__init__(message)


class BoardDisconnectedError(HardwareError, ConnectionError):
    """The serial port went away (cable unplugged, board reset, emulator stopped)."""


class PortOpenError(HardwareError):
    """A serial port cannot be opened: it does not exist, is busy, or access is denied."""


class PortInUseError(PortOpenError, BoardDisconnectedError):
    """Another program holds the serial port open and reads the board's bytes.

    Raised when the port is opened (the other program did not lock it, so the exclusive open
    succeeded) or when a read fails because of it; it is both a :class:`PortOpenError` and a
    :class:`BoardDisconnectedError`, since the link is unusable until that program closes the port.
    """


class VerifyError(HardwareError):
    """The weights read back from the board differ from the ones that were uploaded.

    Attributes
    ----------
    mismatches : list of tuple(int, int, int, int)
        Every differing entry as ``(row, column, expected, got)``.
    """

    def __init__(self, message: str, mismatches: list[tuple[int, int, int, int]]):
        self.mismatches = list(mismatches)
        super().__init__(message)

    @property
    def first(self) -> tuple[int, int, int, int]:
        """The first differing entry ``(row, column, expected, got)`` in row-major order."""
        return self.mismatches[0]


class MappingError(HardwareError):
    """A network cannot be placed on the board (too many neurons, unsupported feature ...)."""


class BoardConfigError(HardwareError, ValueError):
    """A board image or event list holds a value the board cannot represent.

    Raised before anything is sent, naming the table, the index and the allowed range.
    """
