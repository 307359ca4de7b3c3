"""The two outside services the bench stack talks to, each in its own process.

    python bench/sidecars.py smtp   --port P --log FILE --mode FILE --ready FILE
    python bench/sidecars.py stripe --ready FILE

smtp: an SMTP sink (aiosmtpd) on 127.0.0.1:P. Every message it sees is one JSON line in
--log: {"ev": "data"} when the message body has arrived, then "accepted" (it answered
250), "refused" (it answered 4xx/5xx) or "aborted" (the client vanished before the
answer, so the message was not taken). --mode is a JSON file the sink re-reads for each
message: {"delay": seconds before answering DATA, "reply": "250" | "451" | "550",
"quit_delay": seconds before answering QUIT}; the bench scripts rewrite it to make the
sink slow or refusing.

stripe: tests/payments/fake_stripe.py's FakeStripe over HTTP, plus a control server
playing Stripe's own side: POST /complete/<session id> (the student paid; answers the
session), POST /fail?status=&times=, POST /delay?seconds=&times=, GET /stats.

Each writes {"port"...} / {"url", "control"} to --ready once it serves, and runs until
SIGTERM. Only 127.0.0.1 is ever bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
import time
from collections import Counter
from email.parser import BytesHeaderParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent


def _write_ready(path: str, data: dict[str, Any]) -> None:
    tmp = Path(path + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


# --- SMTP sink ----------------------------------------------------------------------------


class Sink:
    """aiosmtpd handler: records each message by Message-ID, answers as --mode says."""

    def __init__(self, log_path: str, mode_path: str) -> None:
        self._log = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as we do
        self._mode_path = Path(mode_path)

    def mode(self) -> dict[str, Any]:
        try:
            mode: dict[str, Any] = json.loads(self._mode_path.read_text() or "{}")
        except (OSError, ValueError):
            mode = {}
        return mode

    def record(self, event: str, **data: Any) -> None:
        self._log.write(json.dumps({"ev": event, "t": time.time(), **data}) + "\n")
        self._log.flush()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or envelope.content or b""
        headers = BytesHeaderParser().parsebytes(content)
        mid = str(headers.get("Message-ID", "")).strip()
        info = {"mid": mid, "rcpt": list(envelope.rcpt_tos), "bytes": len(content)}
        mode = self.mode()
        self.record("data", **info)
        try:
            delay = float(mode.get("delay") or 0)
            if delay:
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            # The connection dropped before we answered: like a real MTA, the message
            # is not taken (the client never heard a 250, so it must still owe it).
            self.record("aborted", **info)
            raise
        reply = str(mode.get("reply") or "250")
        if reply.startswith("4"):
            self.record("refused", code=int(reply[:3]), **info)
            return "451 4.3.0 Mailbox temporarily unavailable, try again later"
        if reply.startswith("5"):
            self.record("refused", code=int(reply[:3]), **info)
            return "550 5.7.1 Message refused"
        self.record("accepted", subject=str(headers.get("Subject", "")), **info)
        return "250 2.0.0 Message accepted for delivery"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        delay = float(self.mode().get("quit_delay") or 0)
        if delay:
            await asyncio.sleep(delay)
        return "221 Bye"


async def _serve_smtp(args: argparse.Namespace) -> None:
    from aiosmtpd.smtp import SMTP

    sink = Sink(args.log, args.mode)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="sink.bench.local", ident="bench sink"),
        host="127.0.0.1",
        port=args.port,
        backlog=512,
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    _write_ready(args.ready, {"port": args.port})
    async with server:
        await stop.wait()


# --- fake Stripe ----------------------------------------------------------------------------


def _serve_stripe(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.payments.fake_stripe import FakeStripe

    fake = FakeStripe()

    class Control(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Any) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            if urlsplit(self.path).path != "/stats":
                self._answer(404, {"error": "no such control"})
                return
            with fake._lock:
                paths = Counter(
                    f"{r.method} {'/'.join(r.path.split('/')[:4])} {r.status}"
                    for r in fake.requests
                )
            self._answer(
                200,
                {
                    "requests": dict(paths),
                    "sessions": Counter(s["status"] for s in fake.sessions),
                    "refunds": Counter(r["status"] for r in fake.refunds),
                },
            )

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            segments = parts.path.strip("/").split("/")
            try:
                if segments[0] == "complete" and len(segments) == 2:
                    self._answer(200, fake.complete(segments[1]))
                elif segments == ["fail"]:
                    fake.fail(int(query.get("status", 500)), times=int(query.get("times", 1)))
                    self._answer(200, {"ok": True})
                elif segments == ["delay"]:
                    fake.delay(float(query["seconds"]), times=int(query.get("times", 1)))
                    self._answer(200, {"ok": True})
                else:
                    self._answer(404, {"error": "no such control"})
            except (AssertionError, KeyError) as exc:
                self._answer(409, {"error": str(exc)})

    control = ThreadingHTTPServer(("127.0.0.1", 0), Control)
    control.daemon_threads = True
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with fake:
        thread = threading.Thread(
            target=control.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        thread.start()
        port = control.server_address[1]
        _write_ready(args.ready, {"url": fake.url, "control": f"http://127.0.0.1:{port}"})
        while not stop.wait(0.5):
            pass
        control.shutdown()
        control.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    smtp = sub.add_parser("smtp")
    smtp.add_argument("--port", type=int, required=True)
    smtp.add_argument("--log", required=True)
    smtp.add_argument("--mode", required=True)
    smtp.add_argument("--ready", required=True)
    stripe = sub.add_parser("stripe")
    stripe.add_argument("--ready", required=True)
    args = parser.parse_args(argv)
    if args.kind == "smtp":
        asyncio.run(_serve_smtp(args))
    else:
        _serve_stripe(args)


if __name__ == "__main__":
    main()
