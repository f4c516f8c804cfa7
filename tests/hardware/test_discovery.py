"""Port discovery: flagging Digilent/FTDI boards and naming their UART interface."""

from __future__ import annotations

import pytest
from serial.tools.list_ports_common import ListPortInfo

from hardware.errors import PortOpenError
from hardware.neurocorex import discovery


def port(device, vid=None, pid=None, location=None, serial=None, manufacturer=None):
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.location, info.serial_number = vid, pid, location, serial
    info.manufacturer, info.description = manufacturer, f"{device} description"
    return info


def test_ftdi_ft2232h_is_flagged_and_its_interfaces_named():
    uart = discovery.PortInfo.from_list_port_info(port("/dev/ttyUSB1", 0x0403, 0x6010, "1-2:1.1", "210328B"))
    jtag = discovery.PortInfo.from_list_port_info(port("/dev/ttyUSB0", 0x0403, 0x6010, "1-2:1.0", "210328B"))
    other = discovery.PortInfo.from_list_port_info(port("/dev/ttyACM0", 0x2341, 0x0043, "1-3:1.0"))
    assert uart.likely_board and uart.role == "uart" and uart.vid_pid == "0403:6010"
    assert jtag.likely_board and jtag.role == "jtag"
    assert not other.likely_board and other.role == "unknown"
    digilent = discovery.PortInfo.from_list_port_info(port("COM5", manufacturer="Digilent"))
    assert digilent.likely_board
    table = discovery.format_ports_table([uart, jtag, other])
    assert "yes (UART)" in table and "JTAG only" in table and "210328B" in table


def test_list_ports_runs_on_this_machine():
    ports = discovery.list_ports()
    assert all(isinstance(p, discovery.PortInfo) for p in ports)
    assert [p.likely_board for p in ports] == sorted((p.likely_board for p in ports), reverse=True)


def test_find_board_port_explains_when_there_is_none():
    if any(p.likely_board for p in discovery.list_ports()):
        pytest.skip("a board-like port is connected")
    with pytest.raises(PortOpenError, match="no NeuroCoreX board found"):
        discovery.find_board_port()
