"""A small stand-in for the Stripe API, served over real HTTP on 127.0.0.1.

The official client (payments/gateway.py) talks to it exactly as it talks to Stripe:
form-encoded requests with Stripe's bracket notation, JSON answers in Stripe's shapes,
Idempotency-Key headers honoured. Only the endpoints we call exist:

    POST /v1/checkout/sessions             create (validates what Stripe validates)
    GET  /v1/checkout/sessions/{id}        retrieve
    POST /v1/checkout/sessions/{id}/expire expire (only an open session)
    POST /v1/refunds                       refund a paid session's payment intent

Every request is recorded (method, path, decoded params, idempotency key) so tests
assert what was asked of Stripe. Tests play Stripe's side with complete()/expire(),
break it with fail()/delay(), and build signed webhook events with event()/sign().
"""

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_VERSION = "2026-10-28.endive"
# Stripe refuses sessions that expire sooner than 30 minutes or later than 24 hours
# after their creation.
MIN_SESSION_SECONDS = 30 * 60
MAX_SESSION_SECONDS = 24 * 60 * 60


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracket encoding back into nested values.

    `line_items[0][price_data][unit_amount]=9000` becomes
    `{"line_items": [{"price_data": {"unit_amount": "9000"}}]}`. Values stay strings,
    as on the wire; a dict whose keys are all indexes becomes a list.
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        parts = [head] + ([p.rstrip("]") for p in rest.split("[")] if rest else [])
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _listify(root)


def _listify(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    items = {k: _listify(v) for k, v in value.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def sign(payload: bytes | str, secret: str, *, timestamp: int | None = None) -> str:
    """A Stripe-Signature header: t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<payload>">."""
    body = payload.encode() if isinstance(payload, str) else payload
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    status: int = 0


@dataclass
class _Failure:
    status: int
    body: dict[str, Any]
    should_retry: bool | None


@dataclass
class _State:
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Idempotency-Key → (method, path, params, status, answer), as Stripe keeps them.
    replies: dict[str, tuple[str, str, dict[str, Any], int, dict[str, Any]]] = field(
        default_factory=dict
    )


def _error(status: int, kind: str, message: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"type": kind, "message": message, **extra}}


class FakeStripe:
    """Start with `with FakeStripe() as fake:`; point STRIPE_API_BASE at fake.url."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.refund_status = "succeeded"  # what new refunds answer with
        self._state = _State()
        self._failures: deque[_Failure] = deque()
        self._delays: deque[float] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.on_request: Any = None  # called with each Recorded, in the server's thread
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> "FakeStripe":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()  # wake delayed requests so their threads end
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # --- what tests do to it --------------------------------------------------------------

    def fail(
        self,
        status: int = 500,
        *,
        times: int = 1,
        kind: str | None = None,
        message: str = "Something went wrong on Stripe's end.",
        code: str | None = None,
        should_retry: bool | None = None,
    ) -> None:
        """Answer the next `times` requests with an error in Stripe's JSON shape.

        The official client retries a 5xx once by itself (max_network_retries=1), so
        `times=2` is what makes a 5xx reach our code. `should_retry` sets the
        Stripe-Should-Retry header the client obeys.
        """
        kind = kind or ("api_error" if status >= 500 else "invalid_request_error")
        body: dict[str, Any] = {"type": kind, "message": message}
        if code:
            body["code"] = code
        with self._lock:
            for _ in range(times):
                self._failures.append(_Failure(status, {"error": body}, should_retry))

    def delay(self, seconds: float, *, times: int = 1) -> None:
        """Hold the next `times` requests this long before answering (client timeouts)."""
        with self._lock:
            self._delays.extend([seconds] * times)

    def session(self, session_id: str) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._state.sessions[session_id]))

    @property
    def sessions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(json.dumps(s)) for s in self._state.sessions.values()]

    @property
    def refunds(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._state.refunds.values()]

    def complete(self, session_id: str, *, payment_status: str = "paid") -> dict[str, Any]:
        """The student paid (or, with payment_status="unpaid", started a slow method)."""
        with self._lock:
            s = self._state.sessions[session_id]
            if s["status"] != "open":
                raise AssertionError(f"Stripe takes no payment on a {s['status']} session")
            s["status"] = "complete"
            s["payment_status"] = payment_status
            s["payment_intent"] = s["payment_intent"] or _new_id("pi")
            s["customer_details"] = {"email": s.get("customer_email")}
        return self.session(session_id)

    def settle_async(self, session_id: str, *, paid: bool = True) -> dict[str, Any]:
        """A delayed payment method finished (async_payment_succeeded / _failed)."""
        with self._lock:
            s = self._state.sessions[session_id]
            s["payment_status"] = "paid" if paid else "unpaid"
        return self.session(session_id)

    def expire(self, session_id: str) -> dict[str, Any]:
        """Stripe closed the session unpaid (its expires_at passed)."""
        with self._lock:
            self._state.sessions[session_id]["status"] = "expired"
        return self.session(session_id)

    def refund(self, refund_id: str, *, status: str) -> dict[str, Any]:
        """A refund moved on at Stripe (pending → succeeded / failed)."""
        with self._lock:
            r = self._state.refunds[refund_id]
            r["status"] = status
            if status == "failed":
                r["failure_reason"] = "expired_or_canceled_card"
            return dict(r)

    def charge_for(self, session_id: str) -> dict[str, Any]:
        """The charge behind a paid session, as charge.refunded carries it."""
        with self._lock:
            s = self._state.sessions[session_id]
            refunded = sum(
                r["amount"]
                for r in self._state.refunds.values()
                if r["payment_intent"] == s["payment_intent"] and r["status"] != "failed"
            )
            return {
                "id": "ch_" + s["id"][3:],
                "object": "charge",
                "amount": s["amount_total"],
                "amount_refunded": refunded,
                "currency": s["currency"],
                "payment_intent": s["payment_intent"],
                "refunded": refunded >= s["amount_total"],
                "status": "succeeded",
            }

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        """Recorded requests with this method whose path starts with `path`."""
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(path)]

    # --- webhook events -------------------------------------------------------------------

    @staticmethod
    def event(kind: str, obj: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
        return {
            "id": event_id or _new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": kind,
        }

    def session_event(self, kind: str, session_id: str, **kwargs: Any) -> dict[str, Any]:
        return self.event(kind, self.session(session_id), **kwargs)

    sign = staticmethod(sign)

    # --- the HTTP side --------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                pairs = parse_qsl(parts.query, keep_blank_values=True)
                pairs += parse_qsl(body, keep_blank_values=True)
                record = Recorded(
                    method=method,
                    path=parts.path,
                    params=decode_form(pairs),
                    idempotency_key=self.headers.get("Idempotency-Key"),
                )
                status, answer, headers = fake._answer(record, self.headers)
                record.status = status
                payload = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.send_header("Request-Id", _new_id("req"))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout) and closed the connection

        return Handler

    def _answer(self, record: Recorded, headers: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self.requests.append(record)
            wait = self._delays.popleft() if self._delays else 0.0
            failure = self._failures.popleft() if self._failures else None
        if self.on_request is not None:
            self.on_request(record)
        if wait:
            self._release.wait(wait)
        if not headers.get("Authorization", "").startswith("Bearer sk_test_"):
            status, answer = _error(401, "invalid_request_error", "Invalid API Key provided.")
            return status, answer, {}
        if failure is not None:
            extra = {}
            if failure.should_retry is not None:
                extra["Stripe-Should-Retry"] = "true" if failure.should_retry else "false"
            return failure.status, failure.body, extra
        key = record.idempotency_key
        with self._lock:
            if key and record.method == "POST" and key in self._state.replies:
                method, path, params, status, answer = self._state.replies[key]
                if (method, path, params) != (record.method, record.path, record.params):
                    status, answer = _error(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with.",
                    )
                    return status, answer, {}
                return status, answer, {"Idempotent-Replayed": "true"}
            status, answer = self._route(record)
            # Stripe keeps the answer of a request it executed, not of one it refused
            # before starting (validation errors, outages).
            if key and record.method == "POST" and status == 200:
                self._state.replies[key] = (
                    record.method,
                    record.path,
                    record.params,
                    status,
                    answer,
                )
            return status, json.loads(json.dumps(answer)), {}

    def _route(self, r: Recorded) -> tuple[int, dict[str, Any]]:
        segments = r.path.strip("/").split("/")
        if segments[:3] == ["v1", "checkout", "sessions"]:
            if r.method == "POST" and len(segments) == 3:
                return self._create_session(r.params)
            if len(segments) >= 4:
                session = self._state.sessions.get(segments[3])
                if session is None:
                    return _error(
                        404,
                        "invalid_request_error",
                        f"No such checkout.session: '{segments[3]}'",
                        code="resource_missing",
                        param="session",
                    )
                if r.method == "GET" and len(segments) == 4:
                    return 200, session
                if r.method == "POST" and segments[4:] == ["expire"]:
                    if session["status"] != "open":
                        return _error(
                            400,
                            "invalid_request_error",
                            'Only Checkout Sessions with a status in ["open"] can be expired.',
                        )
                    session["status"] = "expired"
                    return 200, session
        if r.path == "/v1/refunds" and r.method == "POST":
            return self._create_refund(r.params)
        return _error(
            404, "invalid_request_error", f"Unrecognized request URL ({r.method}: {r.path})."
        )

    def _create_session(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        now = int(time.time())
        missing = [k for k in ("mode", "success_url", "line_items") if not p.get(k)]
        if missing:
            return _error(
                400,
                "invalid_request_error",
                f"Missing required param: {missing[0]}.",
                param=missing[0],
            )
        items = p["line_items"]
        try:
            amount = sum(
                int(i["price_data"]["unit_amount"]) * int(i.get("quantity", "1")) for i in items
            )
            currency = items[0]["price_data"]["currency"]
        except (KeyError, TypeError, ValueError):
            return _error(400, "invalid_request_error", "Invalid line_items.", param="line_items")
        if "expires_at" in p:
            expires_at = int(p["expires_at"])
            if not now + MIN_SESSION_SECONDS <= expires_at <= now + MAX_SESSION_SECONDS:
                return _error(
                    400,
                    "invalid_request_error",
                    "The `expires_at` timestamp must be between 30 minutes and 24 hours "
                    "from Checkout Session creation.",
                    param="expires_at",
                )
        else:
            expires_at = now + MAX_SESSION_SECONDS
        session_id = "cs_test_" + secrets.token_hex(16)
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": amount,
            "amount_total": amount,
            "cancel_url": p.get("cancel_url"),
            "client_reference_id": p.get("client_reference_id"),
            "created": now,
            "currency": currency,
            "customer": None,
            "customer_details": None,
            "customer_email": p.get("customer_email"),
            "expires_at": expires_at,
            "livemode": False,
            "metadata": p.get("metadata") or {},
            "mode": p["mode"],
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": p["success_url"],
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
        }
        self._state.sessions[session_id] = session
        return 200, session

    def _create_refund(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        intent = p.get("payment_intent")
        paid = [
            s
            for s in self._state.sessions.values()
            if intent and s["payment_intent"] == intent and s["payment_status"] == "paid"
        ]
        if not paid:
            return _error(
                400,
                "invalid_request_error",
                f"No such payment_intent: '{intent}'",
                code="resource_missing",
                param="payment_intent",
            )
        session = paid[0]
        already = sum(
            r["amount"]
            for r in self._state.refunds.values()
            if r["payment_intent"] == intent and r["status"] != "failed"
        )
        amount = int(p.get("amount") or session["amount_total"] - already)
        if amount <= 0 or already + amount > session["amount_total"]:
            return _error(
                400,
                "invalid_request_error",
                f"Refund amount ({amount}) is greater than unrefunded amount on charge.",
                code="amount_too_large",
                param="amount",
            )
        refund = {
            "id": _new_id("re"),
            "object": "refund",
            "amount": amount,
            "charge": "ch_" + session["id"][3:],
            "created": int(time.time()),
            "currency": session["currency"],
            "metadata": p.get("metadata") or {},
            "payment_intent": intent,
            "reason": p.get("reason"),
            "status": self.refund_status,
        }
        self._state.refunds[refund["id"]] = refund
        return 200, refund
