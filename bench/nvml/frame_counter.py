"""A loopback TCP relay in front of xpu-remote-server that counts the request frames each client
sends (24-byte frame header: u32 length, u16 call, ...; proto/PROTOCOL.md). Used to measure what
a polling NVML client costs the server; see bench/nvml/README.md.

    python3 bench/nvml/frame_counter.py --server 127.0.0.1:7070 [--listen 127.0.0.1:0]

Prints "frame-counter listening on HOST:PORT", then, when each client disconnects, one JSON line:
{"connection": n, "frames": total request frames, "by_call": {call id: count}, "seconds": span
from the first to the last frame}. Ends on SIGTERM or SIGINT. Loopback only."""

import argparse
import json
import signal
import socket
import struct
import sys
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("--server", required=True)
parser.add_argument("--listen", default="127.0.0.1:0")
args = parser.parse_args()
server_host, server_port = args.server.rsplit(":", 1)
listen_host, listen_port = args.listen.rsplit(":", 1)
if not server_host.startswith("127.") or not listen_host.startswith("127."):
    sys.exit("frame_counter: loopback addresses only")

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((listen_host, int(listen_port)))
listener.listen(16)
print(f"frame-counter listening on {listener.getsockname()[0]}:{listener.getsockname()[1]}", flush=True)
print_lock = threading.Lock()


def pump(source, destination, on_bytes=None):
    try:
        while True:
            data = source.recv(1 << 16)
            if not data:
                break
            if on_bytes:
                on_bytes(data)
            destination.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, destination):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def relay(number, client):
    upstream = socket.create_connection((server_host, int(server_port)))
    for s in (client, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    state = {"buffer": b"", "skip": 0, "frames": 0, "by_call": {}, "first": None, "last": None}

    def count(data):
        state["buffer"] += data
        buffer = state["buffer"]
        while True:
            if state["skip"]:
                taken = min(state["skip"], len(buffer))
                buffer = buffer[taken:]
                state["skip"] -= taken
                if state["skip"]:
                    break
            if len(buffer) < 24:
                break
            length, call = struct.unpack_from("<IH", buffer, 0)
            now = time.monotonic()
            state["frames"] += 1
            state["by_call"][call] = state["by_call"].get(call, 0) + 1
            state["first"] = state["first"] or now
            state["last"] = now
            buffer = buffer[24:]
            state["skip"] = length
        state["buffer"] = buffer

    back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
    back.start()
    pump(client, upstream, count)
    back.join()
    span = (state["last"] - state["first"]) if state["first"] else 0.0
    with print_lock:
        print(json.dumps({"connection": number, "frames": state["frames"],
                          "by_call": {str(k): v for k, v in sorted(state["by_call"].items())},
                          "seconds": round(span, 3)}), flush=True)


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
number = 0
try:
    while True:
        client, _ = listener.accept()
        number += 1
        threading.Thread(target=relay, args=(number, client), daemon=True).start()
except KeyboardInterrupt:
    pass
