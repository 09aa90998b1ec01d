"""A fake BMC for the IPMI fencing agent's tests: pyghmi's own BMC server on 127.0.0.1, speaking
real IPMI over LAN (RMCP+), with a chassis whose power goes off and on and two temperature
sensors in an SDR repository (what `health` reads).

Run as ``python fake_bmc.py --user admin --password secret [--off-delay S] [--stuck]``: it
prints its UDP port on the first line, then one line per chassis command it carried out.

pyghmi's server offers only cipher suite 3 (SHA-1) but, unlike a real BMC, answers a client's
SHA-256 proposal as if it took it, and pyghmi's client proposes SHA-256 first; refusing it here,
as a BMC without SHA-256 does, makes the client fall back to SHA-1.
"""
from __future__ import annotations

import argparse
import struct
import threading

from pyghmi.ipmi import bmc
from pyghmi.ipmi.private import serversession

SHA256_AUTH = 3                 # RAKP-HMAC-SHA256, the first proposal of pyghmi's client
INVALID_AUTH_ALGORITHM = 0x11   # RMCP+ status code
STORAGE, SENSOR_EVENT = 0x0A, 0x04                              # IPMI network functions
SDR_INFO, SDR_RESERVE, SDR_GET, SENSOR_READING = 0x20, 0x22, 0x23, 0x2D
LAST_RECORD = 0xFFFF
# name -> (sensor number, reading in degrees C, threshold status: 0x10 = above upper critical)
SENSORS = {"Inlet Temp": (1, 24, 0x00), "CPU Temp": (2, 97, 0x10)}


class Sha1Session(serversession.ServerSession):
    def create_open_session_response(self, request):
        response = super().create_open_session_response(request)
        if request[12] == SHA256_AUTH:
            response[1] = INVALID_AUTH_ALGORITHM
        return response


serversession.ServerSession = Sha1Session     # what IpmiServer builds for each login


def full_sensor_record(record_id: int, number: int, name: str) -> bytes:
    """An SDR of type 01h (full sensor record): a linear threshold temperature sensor."""
    body = bytearray(43)
    body[0], body[2], body[3], body[4] = 0x20, number, 0x03, 1   # owned by the BMC; a processor
    body[6] = 0x08                  # thresholds readable
    body[7], body[8] = 0x01, 0x01   # temperature, threshold based
    body[16] = 1                    # degrees C
    body[19] = 1                    # M = 1, B = 0: the raw reading is the value
    body[32] = 90                   # upper critical threshold
    body[42] = 0xC0 | len(name)     # the name: 8-bit ASCII
    body += name.encode()
    return struct.pack("<HBBB", record_id, 0x51, 0x01, len(body)) + bytes(body)


class FakeBmc(bmc.Bmc):
    def __init__(self, users: dict[str, str], off_delay: float, stuck: bool):
        super().__init__(users, port=0, address="127.0.0.1")
        # the server files its sessions under self.port: the port the kernel chose, not 0
        self.port = self.serversocket.getsockname()[1]
        self.powered, self.off_delay, self.stuck = True, off_delay, stuck
        self.records = [full_sensor_record(i, number, name) for i, (name, (number, _, _)) in
                        enumerate(SENSORS.items())]

    def said(self, what: str) -> None:
        print(what, flush=True)

    def get_power_state(self):
        return "on" if self.powered else "off"

    def power_off(self):
        self.said("power_off")
        if not self.stuck:
            threading.Timer(self.off_delay, setattr, (self, "powered", False)).start()

    def power_on(self):
        self.said("power_on")
        self.powered = True

    def power_cycle(self):
        self.said("power_cycle")
        self.powered = True

    def handle_raw_request(self, request, session):
        netfn, command, data = request["netfn"], request["command"], request["data"]
        if netfn == 6 and command == 1:       # device id: an SDR repository device
            return session.send_ipmi_response(data=[0x20, 0x01, 1, 0, 0x02, 0x02, 0, 0, 0, 0, 0])
        if netfn == STORAGE and command == SDR_INFO:
            return session.send_ipmi_response(data=[0x51, len(self.records), 0, 0xFF, 0xFF] + [0] * 9)
        if netfn == STORAGE and command == SDR_RESERVE:
            return session.send_ipmi_response(data=[1, 0])
        if netfn == STORAGE and command == SDR_GET:
            index, offset, size = data[2] | data[3] << 8, data[4], data[5]
            following = index + 1 if index + 1 < len(self.records) else LAST_RECORD
            record = self.records[index][offset:] if size == 0xFF else self.records[index][offset:offset + size]
            return session.send_ipmi_response(data=list(struct.pack("<H", following) + record))
        if netfn == SENSOR_EVENT and command == SENSOR_READING:
            _, reading, status = next(v for v in SENSORS.values() if v[0] == data[0])
            return session.send_ipmi_response(data=[reading, 0x40, status])   # 0x40: scanning enabled
        return super().handle_raw_request(request, session)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--off-delay", type=float, default=0.0, help="seconds a power-off takes")
    parser.add_argument("--stuck", action="store_true", help="power-off is accepted but never happens")
    args = parser.parse_args()
    server = FakeBmc({args.user: args.password}, args.off_delay, args.stuck)
    server.said(str(server.port))
    server.listen()


if __name__ == "__main__":
    main()
