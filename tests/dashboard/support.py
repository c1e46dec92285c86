"""Steps of the dashboard tests: accounts with passwords, a paid order through the HTTP API, and
a page that records its console errors, its requests and its socket frames."""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from agora.accounts.models import User
from agora.core.db import Database
from agora.core.security import Role, hash_password
from agora.core.serialization import dumps
from tests.orders.support import ADDRESS
from tests.support import ROOT, terminate

PASSWORD = "correct horse battery staple"
API = "/api/v1"


async def create_account(database: Database, role: Role) -> str:
    """An account of ``role`` that signs in with ``PASSWORD``; its email."""
    email = f"{role.value}-{uuid.uuid4().hex[:8]}@example.com"
    async with database.unit_of_work() as session:
        session.add(User(email=email, password_hash=await hash_password(PASSWORD), role=role))
    return email


async def place_paid_order(
    http: httpx.AsyncClient, headers: dict[str, str], variant_id: uuid.UUID
) -> dict[str, Any]:
    """Fill a cart, order it, pay it with the dev provider; the order as placed."""
    cart = (await http.post(f"{API}/carts", headers=headers)).json()
    added = await http.post(
        f"{API}/carts/{cart['id']}/items",
        json={"variant_id": str(variant_id), "quantity": 1},
        headers=headers,
    )
    assert added.status_code == 201, added.text
    placed = await http.post(
        f"{API}/orders",
        json={"cart_id": cart["id"], "shipping_address": ADDRESS},
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert placed.status_code == 201, placed.text
    order: dict[str, Any] = placed.json()
    payment = await http.post(
        f"{API}/orders/{order['id']}/payments", json={"provider": "dev"}, headers=headers
    )
    assert payment.status_code == 201, payment.text
    completed = await http.post(
        f"{API}/payments/dev/{payment.json()['id']}/complete", headers=headers
    )
    assert completed.status_code == 200, completed.text
    return order


@dataclass
class PageRecorder:
    """What a page did: console errors, requests and sockets (by URL), snapshot frame sizes."""

    origin: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        """Listen to the page's console, errors, requests and WebSocket frames."""
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("websocket", self._websocket)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def _websocket(self, socket: Any) -> None:
        self.sockets.append(socket.url)
        if "/ws/dashboard" in socket.url:
            socket.on("framereceived", lambda payload: self.frames.append(_length(payload)))

    def foreign_requests(self) -> list[str]:
        """Requests and sockets opened to any host but the server's own."""
        own = urlsplit(self.origin).netloc
        return [url for url in self.requests + self.sockets if urlsplit(url).netloc != own]

    def feeds_opened(self) -> int:
        """How many snapshot sockets the page opened."""
        return len([url for url in self.sockets if "/ws/dashboard" in url])


def _length(payload: str | bytes) -> int:
    return len(payload.encode() if isinstance(payload, str) else payload)


async def sign_in(page: Any, base_url: str, email: str, password: str = PASSWORD) -> None:
    """Open the dashboard and submit the sign-in form."""
    await page.goto(f"{base_url}/dashboard")
    await page.fill('input[name="username"]', email)
    await page.fill('input[name="password"]', password)
    await page.click('form[data-sign-in] button[type="submit"]')


async def open_live(page: Any, base_url: str, database: Database, role: Role = Role.STAFF) -> None:
    """Sign in with a new account of ``role`` and wait until the feed is live."""
    await sign_in(page, base_url, await create_account(database, role))
    await page.wait_for_selector('[data-status][data-state="live"]')


@dataclass
class LogLoaderProcess:
    """A real ``agora logs worker``, loading what the API buffers into PostgreSQL."""

    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the loader (it makes its consumer group on start)."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agora", "logs", "worker"],
            env=self.env,
            cwd=ROOT,
            start_new_session=True,
        )

    def stop(self) -> None:
        """Stop the loader cleanly."""
        terminate(self.process)


async def ship(http: httpx.AsyncClient, *documents: dict[str, Any]) -> None:
    """Send log lines (NDJSON) to the log platform's ingest endpoint."""
    body = b"\n".join(dumps(document) for document in documents)
    sent = await http.post(
        f"{API}/logs", content=body, headers={"Content-Type": "application/x-ndjson"}
    )
    assert sent.status_code == 202, sent.text


async def searchable(http: httpx.AsyncClient, query: str) -> bool:
    """Whether a line matching ``query`` has been stored."""
    found = await http.get(f"{API}/logs/search", params={"q": query, "limit": 1})
    assert found.status_code == 200, found.text
    return bool(found.json()["items"])
