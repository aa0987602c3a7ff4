#!/usr/bin/python3
"""TCP echo (port 7) and discard (port 9) servers for the test world.

Run by topology.py as root inside the world namespace:
    peers.py --log FILE ADDR [ADDR...]

echo: sends back everything it reads; when the client half-closes (EOF) it
half-closes too, after the last byte, then closes.  discard: reads until EOF,
then closes.  Each finished connection appends one line to the log:
    <service> <peer-ip> <bytes-received>
with " reset" appended when the connection ended in a reset instead of EOF.
"""

import argparse
import asyncio
import signal
import sys

ECHO_PORT = 7
DISCARD_PORT = 9


class Peers:
    def __init__(self, log_path):
        self.log = open(log_path, "a", buffering=1)

    def record(self, service, writer, nbytes, reset=False):
        peer = writer.get_extra_info("peername")
        ip = peer[0] if peer else "?"
        self.log.write(f"{service} {ip} {nbytes}{' reset' if reset else ''}\n")

    async def echo(self, reader, writer):
        n, reset = 0, False
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                n += len(data)
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
            await writer.drain()
        except (ConnectionError, OSError):
            reset = True
        finally:
            self.record("echo", writer, n, reset)
            writer.close()

    async def discard(self, reader, writer):
        n, reset = 0, False
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                n += len(data)
        except (ConnectionError, OSError):
            reset = True
        finally:
            self.record("discard", writer, n, reset)
            writer.close()


async def serve(addrs, log_path):
    peers = Peers(log_path)
    servers = []
    for addr in addrs:
        servers.append(await asyncio.start_server(peers.echo, addr, ECHO_PORT, backlog=1024))
        servers.append(await asyncio.start_server(peers.discard, addr, DISCARD_PORT,
                                                  backlog=1024))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    for s in servers:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("addrs", nargs="+")
    a = ap.parse_args()
    asyncio.run(serve(a.addrs, a.log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
