"""Shared toolkit for the provider emulators in ``infra/emulators/``.

Every emulator is a Flask app built by :func:`make_app` around an :class:`EmulatorState`
subclass that holds its datasets (per token), its :class:`Knobs` and its counters.
``make_app`` installs, for every route outside ``/__admin``:

* the emulator's own ``gate``, when it has one (a ``before_request`` hook that runs first):
  what the real service's front door does before its backend can fail a request, such as
  counting it against the rate limit;
* the fault injector (a ``before_request`` hook), in this order: ``latency_ms`` sleep;
  with probability ``timeout_rate`` sleep ``hang_s`` then answer 504 (a client with a
  shorter timeout sees a timeout); with probability ``error_rate`` a 500/502/503; with
  probability ``rate_429`` a 429 (``Retry-After`` only when ``retry_after_s`` is set);
* a stats recorder (``after_request``): request counts by status, path and fault kind.

Admin endpoints (never faulted, never authenticated, loopback tooling only):

* ``GET /__admin/knobs`` -> the knobs; ``POST /__admin/knobs`` with a partial JSON object
  -> validated and applied (400 on an unknown knob or a bad value);
* ``POST /__admin/reset`` -> knobs back to their start values, counters and rate-limit
  windows cleared, fault RNG re-seeded (datasets are kept);
* ``GET /__admin/stats`` -> ``{"requests", "by_status", "by_path", "faults"}``;
* ``POST /__admin/seed`` ``{"token", "count"}`` -> (re)generate one token's dataset;
* ``GET /__admin/data?token=T`` -> that token's dataset (for e2e checks over HTTP).

Randomness is reproducible: faults draw from ``random.Random(seed)``; a token's dataset
from ``random.Random(f"{seed}:{token}")``, so the same seed and token give the same data.
"""

from __future__ import annotations

import argparse
import copy
import random
import threading
import time
import typing
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from flask import Blueprint, Flask, Response, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

ADMIN_PREFIX = "/__admin"
ErrorResponder = Callable[[int, str], Response]


@dataclass
class Knobs:
    """Fault knobs shared by every emulator; providers subclass to add their own."""

    latency_ms: int = 0
    error_rate: float = 0.0
    rate_429: float = 0.0
    timeout_rate: float = 0.0
    hang_s: float = 30.0
    retry_after_s: int | None = None
    rate_limit_per_min: int = 0  # sliding window per credential; 0 = unlimited
    rate_window_s: float = 60.0

    signed: ClassVar[frozenset[str]] = frozenset()  # numeric knobs that may be negative

    def update(self, changes: Mapping[str, Any]) -> None:
        """Validate and apply a partial update; raises ValueError and changes nothing."""
        hints = typing.get_type_hints(type(self))
        known = {f.name for f in fields(self)}
        staged: dict[str, Any] = {}
        for name, raw in changes.items():
            if name not in known:
                raise ValueError(f"unknown knob: {name}")
            staged[name] = _coerce(name, hints[name], raw, name in self.signed)
        for name, value in staged.items():
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        """The knobs as a JSON-ready dict."""
        return asdict(self)


def _coerce(name: str, hint: Any, raw: Any, signed: bool) -> Any:
    """Coerce one knob value to its declared type, rejecting nonsense."""
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    if raw is None or (optional and raw == ""):
        if optional:
            return None
        raise ValueError(f"knob {name} may not be null")
    try:
        if base is bool:
            value: Any = _to_bool(raw)
        elif base is int:
            value = int(raw)
        elif base is float:
            value = float(raw)
        else:
            value = str(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad value for knob {name}: {raw!r}") from exc
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0 and not signed:
            raise ValueError(f"knob {name} must be >= 0")
        if (name.endswith("_rate") or name == "rate_429") and value > 1:
            raise ValueError(f"knob {name} is a probability in [0, 1]")
    return value


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError(raw)


class EmulatorState:
    """Knobs, counters, rate-limit windows and a seeded RNG; subclasses add datasets."""

    knobs_cls: type[Knobs] = Knobs

    def __init__(self, *, seed: int = 0, knobs: Knobs | None = None) -> None:
        self.seed = seed
        self._initial_knobs = copy.deepcopy(knobs) if knobs else self.knobs_cls()
        self.knobs = copy.deepcopy(self._initial_knobs)
        self.lock = threading.RLock()
        self._rng = random.Random(seed)
        self._stats: Counter[str] = Counter()
        self._by_path: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self._windows: dict[str, deque[float]] = {}
        self._stopping = threading.Event()

    # -- randomness -------------------------------------------------------------------
    def chance(self, probability: float) -> bool:
        """True with the given probability, drawn from the seeded fault RNG."""
        if probability <= 0:
            return False
        with self.lock:
            return self._rng.random() < probability

    def pick(self, options: Sequence[Any]) -> Any:
        """One element of options, drawn from the seeded fault RNG."""
        with self.lock:
            return self._rng.choice(options)

    def data_rng(self, token: str) -> random.Random:
        """A fresh RNG that always yields the same dataset for (seed, token)."""
        return random.Random(f"{self.seed}:{token}")

    # -- time ---------------------------------------------------------------------------
    def sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the server is stopping."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def stop(self) -> None:
        """Wake every sleeping request (used when the server shuts down)."""
        self._stopping.set()

    # -- throttling -----------------------------------------------------------------------
    def take_rate_slot(self, credential: str) -> bool:
        """Sliding-window limiter: False when the credential used up its window."""
        limit = self.knobs.rate_limit_per_min
        if limit <= 0:
            return True
        now = time.monotonic()
        with self.lock:
            window = self._windows.setdefault(credential, deque())
            while window and now - window[0] >= self.knobs.rate_window_s:
                window.popleft()
            if len(window) >= limit:
                return False
            window.append(now)
            return True

    # -- counters -------------------------------------------------------------------------
    def record(self, status: int, path: str) -> None:
        """Count one answered request."""
        with self.lock:
            self._stats[str(status)] += 1
            self._by_path[path] += 1

    def record_fault(self, kind: str) -> None:
        """Count one injected fault."""
        with self.lock:
            self._faults[kind] += 1

    def stats(self) -> dict[str, Any]:
        """Counters as a JSON-ready dict."""
        with self.lock:
            return {
                "requests": sum(self._stats.values()),
                "by_status": dict(self._stats),
                "by_path": dict(self._by_path),
                "faults": dict(self._faults),
            }

    def reset(self) -> None:
        """Knobs to start values, counters and windows cleared, RNG re-seeded."""
        with self.lock:
            self.knobs = copy.deepcopy(self._initial_knobs)
            self._rng = random.Random(self.seed)
            self._stats.clear()
            self._by_path.clear()
            self._faults.clear()
            self._windows.clear()
            self._reset_extra()

    def _reset_extra(self) -> None:
        """Hook for provider-specific transient state."""

    # -- datasets (provider-specific) -------------------------------------------------------
    def seed_token(self, token: str, count: int) -> None:
        """Generate (or regenerate) the dataset of one token."""
        raise NotImplementedError

    def dump(self, token: str) -> Any:
        """The whole dataset of one token, or None when the token is unknown."""
        raise NotImplementedError


class FaultInjector:
    """``before_request`` hook injecting latency, hangs, 5xx and 429 (admin exempt)."""

    def __init__(self, state: EmulatorState, error_response: ErrorResponder) -> None:
        self.state = state
        self.error_response = error_response

    def __call__(self) -> Response | None:
        """Answer with a fault, or None to let the route run."""
        if request.path.startswith(ADMIN_PREFIX):
            return None
        state, knobs = self.state, self.state.knobs
        state.sleep(knobs.latency_ms / 1000)
        if state.chance(knobs.timeout_rate):
            state.record_fault("timeout")
            state.sleep(knobs.hang_s)
            return _proxy_page(504, "Gateway Time-out")
        if state.chance(knobs.error_rate):
            status = int(state.pick((500, 502, 503)))
            state.record_fault(str(status))
            if status == 500:
                return self.error_response(500, "internal server error (injected)")
            return _proxy_page(status, "Bad Gateway" if status == 502 else "Service Unavailable")
        if state.chance(knobs.rate_429):
            state.record_fault("429")
            return too_many_requests(state, self.error_response)
        return None


def too_many_requests(state: EmulatorState, error_response: ErrorResponder) -> Response:
    """A 429 in the provider's error shape, with Retry-After only when configured."""
    resp = error_response(429, "too many requests")
    if state.knobs.retry_after_s is not None:
        resp.headers["Retry-After"] = str(state.knobs.retry_after_s)
    return resp


def _proxy_page(status: int, title: str) -> Response:
    """The HTML a load balancer answers with: clients must not expect JSON on a 5xx."""
    body = f"<html><head><title>{status} {title}</title></head><body>{title}</body></html>"
    return Response(body, status=status, mimetype="text/html")


def _admin_blueprint(state: EmulatorState) -> Blueprint:
    bp = Blueprint("emulator_admin", __name__, url_prefix=ADMIN_PREFIX)

    @bp.get("/knobs")
    def get_knobs() -> Response:
        return jsonify(state.knobs.as_dict())

    @bp.post("/knobs")
    def set_knobs() -> tuple[Response, int] | Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify({"error": "expected a JSON object"}), 400
        try:
            with state.lock:
                state.knobs.update(body)
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 400
        return jsonify(state.knobs.as_dict())

    @bp.post("/reset")
    def reset() -> Response:
        state.reset()
        return jsonify({"reset": True, "knobs": state.knobs.as_dict()})

    @bp.get("/stats")
    def stats() -> Response:
        return jsonify(state.stats())

    @bp.post("/seed")
    def seed() -> tuple[Response, int] | Response:
        body = request.get_json(silent=True)
        token = body.get("token") if isinstance(body, dict) else None
        count = body.get("count") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token or not isinstance(count, int) or count < 0:
            return jsonify({"error": "expected {token: str, count: int >= 0}"}), 400
        state.seed_token(token, count)
        return jsonify({"token": token, "count": count})

    @bp.get("/data")
    def data() -> tuple[Response, int] | Response:
        dataset = state.dump(request.args.get("token", ""))
        if dataset is None:
            return jsonify({"error": "unknown token"}), 404
        return jsonify(dataset)

    return bp


class _JSON(DefaultJSONProvider):
    sort_keys = False  # keep the providers' field order
    ensure_ascii = False


class _App(Flask):
    json_provider_class = _JSON


def make_app(
    name: str,
    state: EmulatorState,
    error_response: ErrorResponder,
    *,
    gate: Callable[[], Response | None] | None = None,
) -> Flask:
    """A Flask app with the admin endpoints, the emulator's `gate` (before any injected
    fault, so a request it counts is counted even when a fault then answers it), the fault
    injector and the stats recorder."""
    app = _App(name)
    app.extensions["emulator_state"] = state
    app.register_blueprint(_admin_blueprint(state))
    if gate is not None:
        app.before_request(lambda: None if request.path.startswith(ADMIN_PREFIX) else gate())
    app.before_request(FaultInjector(state, error_response))

    @app.after_request
    def _count(resp: Response) -> Response:
        if not request.path.startswith(ADMIN_PREFIX):
            state.record(resp.status_code, request.path)
        return resp

    return app


def bearer_token(header: str | None, scheme: str = "Bearer") -> str | None:
    """The credential of an ``Authorization: <scheme> <value>`` header, else None."""
    if not header:
        return None
    prefix, _, value = header.partition(" ")
    if prefix.lower() != scheme.lower() or not value.strip():
        return None
    return value.strip()


# -- serving --------------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No access log: tests and benchmarks would drown in it."""


@dataclass
class ServerHandle:
    """A running emulator server: its base URL and a way to stop it."""

    url: str
    server: BaseWSGIServer
    thread: threading.Thread
    state: EmulatorState | None = None

    def stop(self) -> None:
        """Stop serving, wake hanging requests and release the port."""
        if self.state is not None:
            self.state.stop()
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve(app: Flask, host: str, port: int, quiet: bool) -> BaseWSGIServer:
    handler = _QuietHandler if quiet else WSGIRequestHandler
    server = make_server(host, port, app, threaded=True, request_handler=handler)
    # Do not join handler threads on close: keep-alive connections would block stop().
    server.block_on_close = False  # type: ignore[attr-defined]
    return server


def start_in_thread(app: Flask, host: str = "127.0.0.1") -> ServerHandle:
    """Serve app on a free loopback port in a daemon thread (for tests)."""
    server = _serve(app, host, 0, quiet=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="emulator", daemon=True
    )  # a short poll interval makes stop() quick
    thread.start()
    state = app.extensions.get("emulator_state")
    return ServerHandle(
        url=f"http://{host}:{server.server_port}",
        server=server,
        thread=thread,
        state=state if isinstance(state, EmulatorState) else None,
    )


def _parse_args(argv: Sequence[str] | None, name: str, default_port: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m infra.emulators.{name}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--seed", type=int, default=0, help="RNG seed for data and faults")
    parser.add_argument(
        "--seed-token", action="append", default=[], metavar="TOKEN=COUNT",
        help="create a tenant dataset (repeatable)",
    )  # fmt: skip
    parser.add_argument("--latency-ms", type=int)
    parser.add_argument("--error-rate", type=float)
    parser.add_argument("--rate-429", type=float)
    parser.add_argument("--timeout-rate", type=float)
    parser.add_argument("--hang-s", type=float)
    parser.add_argument(
        "--knob", action="append", default=[], metavar="NAME=VALUE",
        help="any other knob, e.g. false_empty_rate=0.2 (repeatable)",
    )  # fmt: skip
    parser.add_argument("--access-log", action="store_true")
    return parser.parse_args(argv)


def _split_pair(text: str, flag: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"{flag} expects NAME=VALUE, got {text!r}")
    return key, value


def run_cli(
    create_app_fn: Callable[[Any], Flask],
    argv: Sequence[str] | None = None,
    *,
    state_factory: Callable[..., EmulatorState],
    name: str,
    default_port: int,
) -> None:
    """Entry point for ``python -m infra.emulators.<name>``: parse flags, seed, serve."""
    args = _parse_args(argv, name, default_port)
    knobs_cls = getattr(state_factory, "knobs_cls", Knobs)
    knobs: Knobs = knobs_cls()
    changes: dict[str, Any] = {
        key: getattr(args, key)
        for key in ("latency_ms", "error_rate", "rate_429", "timeout_rate", "hang_s")
        if getattr(args, key) is not None
    }
    changes.update(_split_pair(item, "--knob") for item in args.knob)
    try:
        knobs.update(changes)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    state = state_factory(seed=args.seed, knobs=knobs)
    for item in args.seed_token:
        token, count = _split_pair(item, "--seed-token")
        if not count.isdigit():
            raise SystemExit(f"--seed-token count must be an integer: {item!r}")
        state.seed_token(token, int(count))
    server = _serve(create_app_fn(state), args.host, args.port, quiet=not args.access_log)
    print(f"{name} emulator listening on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        state.stop()
        server.server_close()
