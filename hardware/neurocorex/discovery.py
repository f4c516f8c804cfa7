"""Find serial ports and flag the ones that look like a NeuroCoreX board.

NeuroCoreX runs on a Digilent Cmod A7-35T, whose USB chip is an FTDI FT2232H (VID:PID
0403:6010) with two interfaces: interface 0 is JTAG (used to program the FPGA), interface 1 is the
UART the board protocol runs on. On Linux these usually appear as ``/dev/ttyUSB0`` (JTAG) and
``/dev/ttyUSB1`` (UART); the USB location ends in ``:1.0`` and ``:1.1``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from serial.tools import list_ports as serial_list_ports

from hardware.errors import PortOpenError

FTDI_VID = 0x0403
FT2232H_PID = 0x6010


@dataclass(frozen=True)
class PortInfo:
    """One serial port as the operating system reports it.

    Attributes
    ----------
    device : str
        What to pass to :class:`~hardware.neurocorex.driver.NeuroCoreXDriver` (``/dev/ttyUSB1``, ``COM5``).
    description : str
        Human-readable description from the OS.
    vid, pid : int or None
        USB vendor and product id.
    serial_number, manufacturer, product, location : str or None
        USB details when available.
    likely_board : bool
        FTDI 0403:6010 or a Digilent manufacturer string: probably a Cmod A7 / NeuroCoreX.
    role : str
        ``"uart"`` (the port to use), ``"jtag"`` (the programming interface) or ``"unknown"``.
    """

    device: str
    description: str = ""
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    manufacturer: str | None = None
    product: str | None = None
    location: str | None = None
    likely_board: bool = False
    role: str = "unknown"

    @property
    def vid_pid(self) -> str:
        """``"0403:6010"``, or ``""`` for a port without USB ids."""
        if self.vid is None or self.pid is None:
            return ""
        return f"{self.vid:04X}:{self.pid:04X}"

    @classmethod
    def from_list_port_info(cls, info) -> "PortInfo":
        """Build from a :class:`serial.tools.list_ports_common.ListPortInfo`."""
        manufacturer = getattr(info, "manufacturer", None)
        likely = (info.vid == FTDI_VID and info.pid == FT2232H_PID) or "digilent" in (manufacturer or "").lower()
        return cls(
            device=info.device,
            description=info.description or "",
            vid=info.vid,
            pid=info.pid,
            serial_number=info.serial_number,
            manufacturer=manufacturer,
            product=getattr(info, "product", None),
            location=info.location,
            likely_board=bool(likely),
            role=_role(info) if likely else "unknown",
        )


def _role(info) -> str:
    """Which FT2232H interface a port is: the location ends in ``:1.<interface>`` on Linux/macOS."""
    location = info.location or ""
    interface = getattr(info, "interface", None) or ""
    if location.endswith(".1") or interface.endswith("B"):
        return "uart"
    if location.endswith(".0") or interface.endswith("A"):
        return "jtag"
    return "unknown"


def list_ports() -> list[PortInfo]:
    """Every serial port, likely boards first (their UART before their JTAG interface)."""
    ports = [PortInfo.from_list_port_info(info) for info in serial_list_ports.comports()]
    order = {"uart": 0, "unknown": 1, "jtag": 2}
    return sorted(ports, key=lambda p: (not p.likely_board, order[p.role], p.device))


def find_board_port() -> str:
    """The device of the one likely NeuroCoreX UART.

    Raises
    ------
    PortOpenError
        When no board or more than one board is connected (the message lists the candidates).
    """
    ports = list_ports()
    candidates = [p for p in ports if p.likely_board and p.role != "jtag"]
    if len(candidates) == 1:
        return candidates[0].device
    if not candidates:
        listed = ", ".join(p.device for p in ports) or "none"
        raise PortOpenError(
            "no NeuroCoreX board found (looked for an FTDI 0403:6010 / Digilent USB port; serial "
            f"ports present: {listed}). Plug the board in, or name the port explicitly"
        )
    listed = ", ".join(f"{p.device} ({p.serial_number or p.description})" for p in candidates)
    raise PortOpenError(f"more than one possible board: {listed}; name the port explicitly")


def format_ports_table(ports: list[PortInfo]) -> str:
    """A plain-text table of ports for the CLI."""
    header = ("DEVICE", "VID:PID", "SERIAL", "DESCRIPTION", "BOARD?")
    rows = [header]
    for port in ports:
        flag = {"uart": "yes (UART)", "jtag": "JTAG only", "unknown": "likely"}[port.role] if port.likely_board else ""
        rows.append((port.device, port.vid_pid, port.serial_number or "", port.description, flag))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def port_users(device: str) -> list[tuple[int, str]]:
    """Other processes that hold a serial port open, as ``(pid, program name)``.

    A program that opens a port without locking it (a serial monitor, a notebook with plain
    pyserial) is invisible to the driver's exclusive open, yet it reads the board's bytes away.
    This looks at ``/proc/*/fd`` (Linux; elsewhere, or for processes of other users that cannot
    be inspected, nothing is found). The calling process is left out, and so is the other end of
    a pseudo-terminal (the process holding its master, such as ``board emulate``), which is the
    board side and not a competing reader.

    Parameters
    ----------
    device : str
        Device path (``/dev/ttyUSB1``, ``/dev/pts/3``).

    Returns
    -------
    list of (int, str)
        Sorted by pid; empty when nobody else holds the port or when it cannot be told.
    """
    if not device.startswith("/") or not os.path.isdir("/proc"):
        return []
    target = os.path.realpath(device)
    pty_index = target.rsplit("/", 1)[1] if target.startswith("/dev/pts/") else None
    own = os.getpid()
    holders: set[int] = set()
    masters: set[int] = set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit() or int(entry) == own:
            continue
        fd_dir = f"/proc/{entry}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or another user's process
        for fd in fds:
            try:
                link = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if link == target:
                holders.add(int(entry))
            elif pty_index is not None and link == "/dev/ptmx" and _pty_master_index(entry, fd) == pty_index:
                masters.add(int(entry))
    return [(pid, _program_name(pid)) for pid in sorted(holders - masters)]


def describe_port_users(users: list[tuple[int, str]]) -> str:
    """``"pid 412 (screen), pid 977 (python3)"`` for :func:`port_users`' result."""
    return ", ".join(f"pid {pid} ({name})" for pid, name in users)


def _pty_master_index(pid: str, fd: str) -> str | None:
    """The pseudo-terminal number a ``/dev/ptmx`` descriptor is the master of (Linux fdinfo)."""
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}") as info:
            for line in info:
                if line.startswith("tty-index:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _program_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as comm:
            return comm.read().strip() or "?"
    except OSError:
        return "?"


def emulated_board_ports() -> list[str]:
    """Pseudo-terminals served by ``board emulate`` processes of this user (Linux; else empty).

    ``board list`` and the GUI offer these beside the real serial ports, which pyserial's port
    enumeration never includes.
    """
    if not os.path.isdir("/proc"):
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                args = cmdline.read().split(b"\0")
            fds = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        if b"board" not in args or b"emulate" not in args:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{entry}/fd/{fd}") != "/dev/ptmx":
                    continue
            except OSError:
                continue
            index = _pty_master_index(entry, fd)
            if index is not None and os.path.exists(f"/dev/pts/{index}"):
                found.append(f"/dev/pts/{index}")
    return sorted(set(found), key=lambda path: int(path.rsplit("/", 1)[1]))
