"""Headless Chromium driven over the DevTools protocol, with the standard library only.

``chromium --headless --screenshot`` of an address with a ``#fragment`` gives a blank
image, and the report draws its trace views from the fragment, so the tests drive a
browser instead: Chromium is started with ``--remote-debugging-port=0`` on loopback, and
a minimal WebSocket client (HTTP upgrade, masked client frames, continuation frames)
speaks CDP to it over one browser-level connection with a flat session per page::

    with Browser() as browser:
        page = browser.open("file:///tmp/report.html")
        assert page.evaluate("document.title") == "mattrace report"
        page.click("a.first-violation")
        page.wait_for("document.body.dataset.shown")
        page.screenshot("shot.png")
        assert page.console_errors() == []

Chromium and every process it started are killed when the ``with`` block ends.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Browser", "BrowserError", "Page", "chromium_path", "png_pixels"]

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
_LISTENING = re.compile(rb"DevTools listening on (ws://\S+)")
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_MESSAGE = 64 << 20


class BrowserError(RuntimeError):
    """Chromium did not start, a CDP command failed, or a page's script threw."""


def chromium_path() -> str | None:
    """The Chromium executable: ``$MATTRACE_CHROMIUM``, else the first of chromium, chromium-browser,
    google-chrome on PATH; None when there is none."""
    configured = os.environ.get("MATTRACE_CHROMIUM")
    if configured:
        return shutil.which(configured) or (configured if os.access(configured, os.X_OK) else None)
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class _WebSocket:
    """A client WebSocket (RFC 6455) carrying text messages, enough for CDP."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme != "ws" or parts.hostname is None or parts.port is None:
            raise BrowserError(f"not a ws://host:port/ address: {url}")
        self._sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        self._buffer = b""
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self._sock.sendall(request.encode())
        while b"\r\n\r\n" not in self._buffer:
            self._fill(time.monotonic() + timeout)
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 101"):
            raise BrowserError(f"WebSocket upgrade refused: {lines[0]}")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != accept:
            raise BrowserError("WebSocket upgrade: wrong Sec-WebSocket-Accept")

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no message from the browser in time")
        self._sock.settimeout(remaining)
        try:
            chunk = self._sock.recv(1 << 20)
        except TimeoutError:
            raise TimeoutError("no message from the browser in time") from None
        if not chunk:
            raise BrowserError("the browser closed the connection")
        self._buffer += chunk

    def _take(self, n: int, deadline: float) -> bytes:
        while len(self._buffer) < n:
            self._fill(deadline)
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        head = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        self._sock.sendall(head + mask + _mask(payload, mask))

    def send_text(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def receive_text(self, timeout: float) -> str:
        """The next whole text message (continuation frames joined); answers pings on the way."""
        deadline = time.monotonic() + timeout
        parts: list[bytes] = []
        size = 0
        while True:
            b0, b1 = self._take(2, deadline)
            fin, opcode, masked, n = b0 & 0x80, b0 & 0x0F, b1 & 0x80, b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._take(2, deadline))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._take(8, deadline))
            mask = self._take(4, deadline) if masked else b""
            payload = self._take(n, deadline)
            if mask:
                payload = _mask(payload, mask)
            if opcode == 0x8:
                raise BrowserError("the browser closed the WebSocket")
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            if opcode not in (0x0, 0x1, 0x2):
                raise BrowserError(f"unexpected WebSocket opcode {opcode}")
            size += n
            if size > _MAX_MESSAGE:
                raise BrowserError(f"WebSocket message over {_MAX_MESSAGE} bytes")
            parts.append(payload)
            if fin:
                return b"".join(parts).decode()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._send_frame(0x8, struct.pack("!H", 1000))
        with contextlib.suppress(OSError):
            self._sock.close()


def _mask(payload: bytes, mask: bytes) -> bytes:
    """XOR with the repeated 4-byte mask, as one big-integer operation."""
    if not payload:
        return payload
    n = len(payload)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


class Page:
    """One tab, attached through a flat CDP session."""

    def __init__(self, browser: Browser, target_id: str, session_id: str) -> None:
        self._browser = browser
        self.target_id = target_id
        self.session_id = session_id
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """Send one CDP command in this page's session and return its result."""
        return self._browser.send(method, params, session_id=self.session_id, timeout=timeout)

    def navigate(self, url: str, timeout: float = 15.0) -> None:
        """Load ``url`` and wait for its load event."""
        mark = len(self.events)
        result = self.send("Page.navigate", {"url": url}, timeout=timeout)
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        deadline = time.monotonic() + timeout
        while not any(e["method"] == "Page.loadEventFired" for e in self.events[mark:]):
            self._browser.pump(deadline - time.monotonic())

    def evaluate(self, js: str, timeout: float = 10.0) -> Any:
        """The value of the expression ``js`` in the page (promises awaited), as JSON would carry it.

        Raises:
            BrowserError: the expression threw.
        """
        result = self.send("Runtime.evaluate", {"expression": js, "returnByValue": True, "awaitPromise": True,
                                                "userGesture": True}, timeout=timeout)
        details = result.get("exceptionDetails")
        if details:
            raise BrowserError(f"{js!r} threw: {_exception_text(details)}")
        return result.get("result", {}).get("value")

    def click(self, selector: str) -> None:
        """Click the first element matching ``selector``.

        Raises:
            BrowserError: no element matches.
        """
        sel = json.dumps(selector)
        self.evaluate(f"(function () {{ var e = document.querySelector({sel}); "
                      f"if (!e) {{ throw new Error('no element matches ' + {sel}); }} e.click(); return true; }})()")

    def wait_for(self, js_condition: str, timeout: float = 5.0) -> Any:
        """Poll ``js_condition`` until it is truthy and return its value.

        Raises:
            TimeoutError: still falsy after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(js_condition)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{js_condition!r} still {value!r} after {timeout} s")
            time.sleep(0.05)

    def console_errors(self) -> list[str]:
        """Uncaught exceptions, console.error calls and error log entries (CSP violations among them)."""
        self.evaluate("0")  # a round trip: the events the page sent before it have arrived
        errors = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                errors.append("exception: " + _exception_text(params.get("exceptionDetails", {})))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                args = [str(a.get("value", a.get("description", ""))) for a in params.get("args", [])]
                errors.append(f"console.{params['type']}: " + " ".join(args))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                where = f" ({entry['url']})" if entry.get("url") else ""
                errors.append(f"log [{entry.get('source')}]: {entry.get('text')}{where}")
        return errors

    def screenshot(self, path: str | Path) -> Path:
        """Save the viewport as a PNG file."""
        data = self.send("Page.captureScreenshot", {"format": "png"}, timeout=30.0)["data"]
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(data))
        return out


def _exception_text(details: dict[str, Any]) -> str:
    exception = details.get("exception") or {}
    text = exception.get("description") or exception.get("value") or details.get("text") or "unknown error"
    line = details.get("lineNumber")
    return f"{text} (line {line + 1})" if isinstance(line, int) else str(text)


class Browser:
    """Headless Chromium for the length of a ``with`` block."""

    def __init__(self, executable: str | None = None, *, width: int = 1280, height: int = 900,
                 timeout: float = 20.0) -> None:
        found = executable or chromium_path()
        if found is None:
            raise BrowserError("no Chromium: set MATTRACE_CHROMIUM or install chromium")
        self.executable = found
        self.width, self.height, self.timeout = width, height, timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._profile: tempfile.TemporaryDirectory[str] | None = None
        self._ws: _WebSocket | None = None
        self._next_id = 0
        self._responses: dict[int, dict[str, Any]] = {}
        self._pages: dict[str, Page] = {}

    def __enter__(self) -> Browser:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _start(self) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="mattrace-chromium-", ignore_cleanup_errors=True)
        profile = Path(self._profile.name)
        log = profile / "stderr.log"
        with log.open("wb") as stderr:
            self._process = subprocess.Popen(
                [self.executable, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
                 "--remote-debugging-address=127.0.0.1", f"--user-data-dir={profile}",
                 f"--window-size={self.width},{self.height}", "--no-first-run", "--no-default-browser-check",
                 "--disable-extensions", "--disable-background-networking", "--disable-sync", "--mute-audio",
                 "about:blank"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        deadline = time.monotonic() + self.timeout
        url = None
        while url is None:
            url = self._endpoint(profile, log)
            if url is not None:
                break
            if self._process.poll() is not None:
                tail = log.read_bytes()[-2000:].decode(errors="replace")
                raise BrowserError(f"{self.executable} exited with {self._process.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                raise BrowserError(f"{self.executable} did not open its DevTools port in {self.timeout} s")
            time.sleep(0.05)
        self._ws = _WebSocket(url, self.timeout)

    @staticmethod
    def _endpoint(profile: Path, log: Path) -> str | None:
        """The browser's ws:// address, from its stderr or from ``DevToolsActivePort``."""
        found = _LISTENING.search(log.read_bytes())
        if found:
            return found.group(1).decode()
        with contextlib.suppress(OSError, ValueError):
            port, path = (profile / "DevToolsActivePort").read_text().split("\n")[:2]
            if port.strip() and path.strip():
                return f"ws://127.0.0.1:{int(port)}{path.strip()}"
        return None

    def send(self, method: str, params: dict[str, Any] | None = None, *, session_id: str | None = None,
             timeout: float = 10.0) -> dict[str, Any]:
        """Send a CDP command and wait for its answer; events meanwhile go to their pages.

        Raises:
            BrowserError: the command failed.
            TimeoutError: no answer in ``timeout`` seconds.
        """
        if self._ws is None:
            raise BrowserError("the browser is not running")
        self._next_id += 1
        ident = self._next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        self._ws.send_text(json.dumps(message))
        deadline = time.monotonic() + timeout
        while ident not in self._responses:
            self.pump(deadline - time.monotonic())
        response = self._responses.pop(ident)
        if "error" in response:
            raise BrowserError(f"{method}: {response['error'].get('message')} {response['error'].get('data', '')}")
        result: dict[str, Any] = response.get("result", {})
        return result

    def pump(self, timeout: float) -> None:
        """Read one message from the browser (waiting up to ``timeout`` s) and file it."""
        if self._ws is None:
            raise BrowserError("the browser is not running")
        if timeout <= 0:
            raise TimeoutError("no answer from the browser in time")
        message = json.loads(self._ws.receive_text(timeout))
        if "id" in message:
            self._responses[message["id"]] = message
        elif "method" in message:
            page = self._pages.get(message.get("sessionId", ""))
            if page is not None:
                page.events.append(message)

    def open(self, url: str) -> Page:
        """A new tab showing ``url`` (loaded), with its runtime, console and log watched."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, target, session)
        self._pages[session] = page
        for domain in ("Page", "Runtime", "Log"):
            page.send(f"{domain}.enable")
        page.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        page.navigate(url, timeout=self.timeout)
        return page

    def close(self) -> None:
        """Kill Chromium and the processes it started, and remove its profile."""
        if self._ws is not None:
            self._ws.close()
            self._ws = None
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
            # helpers (zygote, renderers) share the group and may outlive the browser process
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        if self._profile is not None:
            self._profile.cleanup()
            self._profile = None


def png_pixels(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """Decode an 8-bit, non-interlaced PNG: (width, height, bytes per pixel, unfiltered rows).

    Only what a screenshot needs: greyscale, RGB, grey+alpha or RGBA at 8 bits per channel.

    Raises:
        ValueError: not such a PNG.
    """
    import zlib

    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack("!I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack("!IIBBBBB", header)
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour}, interlace {interlace}")
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows: list[bytes] = []
    prior = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], raw[start + 1:start + 1 + stride]
        row = _unfilter(kind, line, prior, channels)
        rows.append(row)
        prior = row
    return width, height, channels, rows


def _add_bytes(a: bytes, b: bytes) -> bytes:
    """Byte-wise (a + b) mod 256, without a Python loop (SWAR on big integers)."""
    n = len(a)
    low = int.from_bytes(b"\x7f" * n, "big")
    x, y = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    return (((x & low) + (y & low)) ^ ((x ^ y) & ~low & ((1 << 8 * n) - 1))).to_bytes(n, "big")


def _unfilter(kind: int, line: bytes, prior: bytes, bpp: int) -> bytes:
    if kind == 0:
        return line
    if kind == 2:
        return _add_bytes(line, prior)
    out = bytearray(line)
    n = len(out)
    if kind == 1:
        for i in range(bpp, n):
            out[i] = (out[i] + out[i - bpp]) & 0xFF
    elif kind == 3:
        for i in range(n):
            left = out[i - bpp] if i >= bpp else 0
            out[i] = (out[i] + ((left + prior[i]) >> 1)) & 0xFF
    elif kind == 4:
        for i in range(n):
            a = out[i - bpp] if i >= bpp else 0
            b = prior[i]
            c = prior[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            out[i] = (out[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    else:
        raise ValueError(f"bad PNG filter type {kind}")
    return bytes(out)
