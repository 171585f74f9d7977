#!/usr/bin/env python3
"""A TCP relay that delays what it forwards, for the network-fault tests.

Usage: fault_relay.py LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS JITTER_MS SEED

Accepts connections on LISTEN_HOST:LISTEN_PORT (port 0: any free port; the line
"relay listening on HOST:PORT" tells which) and connects each to TARGET_HOST:TARGET_PORT. Every
chunk read from either side is written to the other DELAY_MS +- JITTER_MS milliseconds later
(uniform, from a generator seeded with SEED). Chunks of one direction leave in the order they
arrived: a byte-stream relay cannot reorder without corrupting the stream, so a chunk whose
delay would overtake the one before waits for it. End of stream is passed on after the data
before it; an error closes both sides.
"""
import random
import socket
import sys
import threading
import time
from collections import deque


def pump(source, sink, delay, jitter, generator, lock):
    queue = deque()
    ready = threading.Condition()
    state = {"eof": False}

    def reader():
        last_due = 0.0
        try:
            while True:
                data = source.recv(65536)
                now = time.monotonic()
                with lock:
                    wait = (delay + generator.uniform(-jitter, jitter)) / 1000.0
                due = max(now + wait, last_due)
                last_due = due
                with ready:
                    queue.append((due, data))
                    ready.notify()
                if not data:
                    return
        except OSError:
            with ready:
                queue.append((0.0, None))
                ready.notify()

    def writer():
        while True:
            with ready:
                while not queue:
                    ready.wait()
                due, data = queue.popleft()
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            try:
                if data is None:
                    sink.shutdown(socket.SHUT_RDWR)
                    source.shutdown(socket.SHUT_RDWR)
                    return
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)
            except OSError:
                try:
                    source.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return

    threads = [threading.Thread(target=reader, daemon=True), threading.Thread(target=writer, daemon=True)]
    for thread in threads:
        thread.start()
    return threads


def serve(client, target, delay, jitter, generator, lock):
    try:
        server = socket.create_connection(target)
    except OSError:
        client.close()
        return
    for sock in (client, server):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threads = pump(client, server, delay, jitter, generator, lock)
    threads += pump(server, client, delay, jitter, generator, lock)
    for thread in threads:
        thread.join()
    client.close()
    server.close()


def main():
    if len(sys.argv) != 8:
        sys.exit(__doc__)
    host, port, target_host, target_port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    delay, jitter, seed = float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
    generator = random.Random(seed)
    lock = threading.Lock()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(64)
    print("relay listening on %s:%d" % listener.getsockname(), flush=True)
    while True:
        client, _ = listener.accept()
        threading.Thread(
            target=serve, args=(client, (target_host, target_port), delay, jitter, generator, lock), daemon=True
        ).start()


if __name__ == "__main__":
    main()
