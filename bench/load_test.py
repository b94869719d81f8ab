#!/usr/bin/env python3
"""Load test clients for `medsynth serve` (not in CI; bench/load-test.sh drives them).

    python3 bench/load_test.py probe  --port P --seconds S --out probe.json
    python3 bench/load_test.py attack --port P --seconds S --png FILE --out attack.json [--model breast]

`probe` is the health checker, in a process of its own so that the load generator's event loop
does not delay it: every 50 ms it opens a fresh connection (as a Kubernetes probe does) and GETs
/v2/health/live, /v2/health/ready and /metrics in turn, timing connect-to-last-byte.

`attack` runs, all at once on one asyncio loop:
  - normal clients: keep-alive connections posting a PNG to /v1/models/NAME/predict and small
    OIP batches to /v2/models/NAME/infer, back to back;
  - tricklers: connections that send a request's headers one byte every 0.5 s, reconnecting
    when cut off (the time until the server cuts each one off is recorded);
  - huge bodies: clients posting 4 MB OIP batches (256 images) and 10 MB bodies (over the
    8 MiB limit);
  - idle connections: opened, never written to, reopened when the server closes them.
Standard library only.
"""
import argparse
import asyncio
import json
import random
import socket
import statistics
import sys
import time


def percentiles(values):
    if not values:
        return {}
    values = sorted(values)
    def q(p):
        return values[min(len(values) - 1, int(p * len(values)))]
    return {"n": len(values), "p50": q(0.50), "p90": q(0.90), "p99": q(0.99), "max": values[-1],
            "mean": statistics.fmean(values)}


def read_response(sock):
    """Reads one HTTP/1.1 response with a Content-Length body; returns (status, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the headers")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside the body")
        rest += chunk
    return status, rest[:length]


def probe(args):
    paths = ["/v2/health/live", "/v2/health/ready", "/metrics"]
    latencies = {p: [] for p in paths}
    failures = []
    slow = []  # (seconds into the run, path, ms) of probes over 50 ms
    begin = time.monotonic()
    end = begin + args.seconds
    i = 0
    while time.monotonic() < end:
        path = paths[i % len(paths)]
        i += 1
        start = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", args.port), timeout=5) as sock:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                status, _ = read_response(sock)
            elapsed = (time.monotonic() - start) * 1000
            if status == 200:
                latencies[path].append(elapsed)
                if elapsed > 50:
                    slow.append((round(start - begin, 2), path, round(elapsed, 1)))
            else:
                failures.append(f"{path}: {status}")
        except Exception as error:  # noqa: BLE001 - a failed probe is a result
            failures.append(f"{path}: {error!r} after {(time.monotonic() - start) * 1000:.0f} ms")
        time.sleep(max(0.0, 0.05 - (time.monotonic() - start)))
    every = [v for values in latencies.values() for v in values]
    result = {"all_ms": percentiles(every), "by_path_ms": {p: percentiles(v) for p, v in latencies.items()},
              "failures": failures[:20], "failure_count": len(failures), "slow_over_50ms": slow}
    json.dump(result, open(args.out, "w"), indent=1)


class Attack:
    def __init__(self, args):
        self.args = args
        self.end = time.monotonic() + args.seconds
        self.statuses = {}
        self.normal_latency = []
        self.cut_after = []
        self.errors = {}
        self.png = open(args.png, "rb").read()
        pixels = ",".join("0.5" for _ in range(4 * 784))
        self.small_batch = ('{"inputs":[{"name":"images","shape":[4,1,28,28],"datatype":"FP32","data":[%s]}]}'
                            % pixels).encode()
        rng = random.Random(1)
        big = ",".join(f"{rng.random():.15f}" for _ in range(256 * 784))
        self.big_batch = ('{"inputs":[{"name":"images","shape":[256,1,28,28],"datatype":"FP32","data":[%s]}]}'
                          % big).encode()
        self.too_big = b"[" + b"0," * (5 * 1024 * 1024) + b"0]"

    def count(self, kind, status):
        key = f"{kind} {status}"
        self.statuses[key] = self.statuses.get(key, 0) + 1

    def error(self, kind, error):
        key = f"{kind} {type(error).__name__}"
        self.errors[key] = self.errors.get(key, 0) + 1

    async def request(self, reader, writer, method, path, body, content_type):
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next((int(l.split(":", 1)[1]) for l in lines[1:] if l.lower().startswith("content-length:")), 0)
        await reader.readexactly(length)
        close = any(l.lower() == "connection: close" for l in lines[1:])
        return status, close

    async def normal(self, n):
        model = self.args.model
        while time.monotonic() < self.end:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.args.port)
                while time.monotonic() < self.end:
                    if n % 2 == 0:
                        path, body, kind = f"/v1/models/{model}/predict", self.png, "predict"
                        content_type = "image/png"
                    else:
                        path, body, kind = f"/v2/models/{model}/infer", self.small_batch, "infer4"
                        content_type = "application/json"
                    start = time.monotonic()
                    status, close = await self.request(reader, writer, "POST", path, body, content_type)
                    if status == 200:
                        self.normal_latency.append((time.monotonic() - start) * 1000)
                    self.count(kind, status)
                    if status == 503:
                        await asyncio.sleep(0.05)
                    if close:
                        break
                writer.close()
            except Exception as error:  # noqa: BLE001
                self.error("normal", error)
                await asyncio.sleep(0.05)

    async def trickler(self):
        request = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 200 + b"\r\n\r\n"
        while time.monotonic() < self.end:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.args.port)
                start = time.monotonic()
                for byte in request:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    try:
                        data = await asyncio.wait_for(reader.read(4096), 0.5)
                        if data or reader.at_eof():
                            break
                    except asyncio.TimeoutError:
                        pass
                    if time.monotonic() > self.end:
                        break
                else:
                    self.count("trickle", "completed")
                self.cut_after.append(time.monotonic() - start)
                writer.close()
            except Exception as error:  # noqa: BLE001
                self.error("trickle", error)
                await asyncio.sleep(0.5)

    async def huge(self, n):
        model = self.args.model
        while time.monotonic() < self.end:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.args.port)
                body, kind = (self.big_batch, "infer256") if n % 2 == 0 else (self.too_big, "10MB")
                status, _ = await self.request(reader, writer, "POST", f"/v2/models/{model}/infer", body, "application/json")
                self.count(kind, status)
                writer.close()
                if status == 503:
                    await asyncio.sleep(0.1)
            except Exception as error:  # noqa: BLE001
                self.error("huge", error)
                await asyncio.sleep(0.1)

    async def idle(self):
        while time.monotonic() < self.end:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.args.port)
                await asyncio.wait_for(reader.read(), max(0.1, self.end - time.monotonic()))
                writer.close()
            except asyncio.TimeoutError:
                return
            except Exception as error:  # noqa: BLE001
                self.error("idle", error)
                await asyncio.sleep(0.5)

    async def run(self):
        a = self.args
        tasks = [self.normal(i) for i in range(a.normal)] + [self.trickler() for _ in range(a.tricklers)]
        tasks += [self.huge(i) for i in range(a.huge)] + [self.idle() for _ in range(a.idle)]
        await asyncio.gather(*tasks)
        result = {
            "clients": {"normal": a.normal, "tricklers": a.tricklers, "huge": a.huge, "idle": a.idle},
            "statuses": dict(sorted(self.statuses.items())),
            "client_errors": self.errors,
            "normal_ok_latency_ms": percentiles(self.normal_latency),
            "normal_ok_per_s": len(self.normal_latency) / a.seconds,
            "trickle_cut_after_s": percentiles(self.cut_after),
        }
        json.dump(result, open(a.out, "w"), indent=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["probe", "attack"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--out", required=True)
    parser.add_argument("--png")
    parser.add_argument("--model", default="breast")
    parser.add_argument("--normal", type=int, default=8)
    parser.add_argument("--tricklers", type=int, default=300)
    parser.add_argument("--huge", type=int, default=4)
    parser.add_argument("--idle", type=int, default=1000)
    args = parser.parse_args()
    if args.mode == "probe":
        probe(args)
    else:
        asyncio.run(Attack(args).run())


if __name__ == "__main__":
    sys.exit(main())
