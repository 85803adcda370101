"""``Sandbox``: a local Klaviyo for tests, benchmarks and the demo, with a Python API.

::

    async with Sandbox.run(host="127.0.0.1", port=0) as sandbox:
        sandbox.add_account("merchant-1", "pk_test_1", scopes={"events:write"})
        ...  # point the client at sandbox.url
        await sandbox.wait_for_events("merchant-1", 3, timeout=10)
        assert sandbox.unique_event_count("merchant-1") == 3

Everything the HTTP admin API can do is also a method here, for in-process use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from consumer.klaviyo import RateLimit
from consumer.sandbox.accounts import DEFAULT_SCOPES, Account, ApiKey
from consumer.sandbox.admin import AdminApi
from consumer.sandbox.api import CLIENT_MAX_SIZE, KlaviyoApi
from consumer.sandbox.faults import Faults
from consumer.sandbox.page import Page
from consumer.sandbox.state import SandboxOptions, SandboxState
from consumer.sandbox.stats import SandboxStats
from consumer.sandbox.store import StoredEvent, StoredSubscription

__all__ = ["Sandbox"]


class Sandbox:
    """A Klaviyo look-alike HTTP server and its in-process controls.

    Build one with options (see ``SandboxOptions``), then ``start()``/``close()`` it, or use
    ``Sandbox.run(...)`` as an async context manager. ``app`` is the aiohttp application, for
    embedding in another server or in aiohttp's test utilities.
    """

    def __init__(self, options: SandboxOptions | None = None, **option_fields: Any) -> None:
        if options is not None and option_fields:
            raise TypeError("pass either options or option fields, not both")
        self.options = options or SandboxOptions(**option_fields)
        self.state = SandboxState(self.options)
        self.app = self._build_app()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=CLIENT_MAX_SIZE)
        api = KlaviyoApi(self.state)
        app.router.add_route("*", "/api/{tail:.*}", api.handle)
        AdminApi(self.state).add_routes(app)
        app.router.add_get("/", Page(self.state).handle)
        return app

    # -- lifecycle ---------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def run(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        access_log: bool = False,
        **option_fields: Any,
    ) -> AsyncIterator[Sandbox]:
        """Start a sandbox on ``host:port`` (0 = any free port) and stop it on exit."""
        sandbox = cls(**option_fields)
        await sandbox.start(host, port, access_log=access_log)
        try:
            yield sandbox
        finally:
            await sandbox.close()

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, access_log: bool = False
    ) -> str:
        """Listen on ``host:port``; returns the base URL (also ``url``)."""
        if self._runner is not None:
            raise RuntimeError("sandbox already started")
        # aiohttp's access log is on by default; tests want quiet, the CLI wants it.
        runner = web.AppRunner(self.app) if access_log else web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound_host, bound_port = _bound_address(runner, host)
        self._url = f"http://{bound_host}:{bound_port}"
        return self._url

    async def close(self) -> None:
        """Stop listening and drop open connections. Safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (use as the Klaviyo base URL)."""
        if self._url is None:
            raise RuntimeError("sandbox not started")
        return self._url

    # -- accounts and keys -------------------------------------------------------------

    def add_account(
        self,
        account_id: str,
        key: str | None = None,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        **attributes: Any,
    ) -> Account:
        """Create an account (attributes as in ``Account``) and optionally add a key to it."""
        return self.state.accounts.add_account(account_id, key, scopes, **attributes)

    def add_key(self, account_id: str, key: str, scopes: Iterable[str] = DEFAULT_SCOPES) -> ApiKey:
        """Add another key to an existing account (keys of one account share its limits)."""
        return self.state.accounts.add_key(account_id, key, scopes)

    def add_lists(self, account_id: str, *list_ids: str) -> None:
        """Create lists in an account; from then on it refuses subscriptions to other ids."""
        account = self.state.accounts.get(account_id)
        if account is None:
            raise KeyError(account_id)
        account.add_lists(list_ids)

    def revoke_key(self, key: str) -> None:
        """Revoke a key: its requests get 401 from now on."""
        self.state.accounts.revoke_key(key)

    def remove_account(self, account_id: str) -> None:
        """Delete an account and its keys."""
        self.state.accounts.remove_account(account_id)

    # -- behaviour ---------------------------------------------------------------------

    def faults(self, account_id: str) -> Faults:
        """The account's fault plan, to arm faults on (see ``Faults``)."""
        return self.state.faults(account_id)

    def set_rate_limit(self, operation_id: str, limit: RateLimit) -> None:
        """Change an operation's per-account limits."""
        self.state.limiter.set_limit(operation_id, limit)

    def reset(self, *, accounts: bool = False) -> None:
        """Forget received data, counters, rate windows, faults (and accounts if asked)."""
        self.state.reset(accounts=accounts)

    # -- what was received -------------------------------------------------------------

    def events(self, account_id: str, metric: str | None = None) -> list[StoredEvent]:
        """Stored (deduplicated) events of an account, oldest first."""
        return self.state.store.events(account_id, metric)

    def subscriptions(self, account_id: str) -> list[StoredSubscription]:
        """Stored subscription profiles of an account, oldest first."""
        return self.state.store.subscriptions(account_id)

    def unique_event_count(self, account_id: str) -> int:
        """Distinct (profile, metric, unique_id) recorded for the account."""
        return self.state.store.unique_event_count(account_id)

    def duplicate_count(self, account_id: str | None = None) -> int:
        """Events answered 202 but not stored because their key was already stored."""
        return self.state.store.duplicate_count(account_id)

    @property
    def stats(self) -> SandboxStats:
        """A snapshot of the request counters."""
        return self.state.stats.snapshot(self.state.store.duplicates_by_account())

    async def wait_for_events(
        self,
        account_id: str,
        count: int,
        *,
        metric: str | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 -- the TimeoutError reports progress
    ) -> list[StoredEvent]:
        """Wait until the account has at least ``count`` stored events (of ``metric``).

        Raises:
            TimeoutError: not reached within ``timeout`` seconds (the message says how far).
        """
        try:
            await self.state.store.wait_until(
                lambda: len(self.events(account_id, metric)) >= count, timeout
            )
        except TimeoutError:
            have = len(self.events(account_id, metric))
            raise TimeoutError(f"{account_id}: {have} of {count} events after {timeout}s") from None
        return self.events(account_id, metric)

    async def wait_for_subscriptions(
        self,
        account_id: str,
        count: int,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 -- the TimeoutError reports progress
    ) -> list[StoredSubscription]:
        """Wait until the account has at least ``count`` stored subscription profiles."""
        try:
            await self.state.store.wait_until(
                lambda: len(self.subscriptions(account_id)) >= count, timeout
            )
        except TimeoutError:
            have = len(self.subscriptions(account_id))
            raise TimeoutError(
                f"{account_id}: {have} of {count} subscriptions after {timeout}s"
            ) from None
        return self.subscriptions(account_id)


def _bound_address(runner: web.AppRunner, host: str) -> tuple[str, int]:
    """The address actually bound (port 0 becomes the chosen port)."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            bound_host = str(address[0])
            if bound_host in ("0.0.0.0", "::"):  # noqa: S104 -- naming, not binding
                bound_host = "127.0.0.1"
            return (f"[{bound_host}]" if ":" in bound_host else bound_host), int(address[1])
    raise RuntimeError(f"sandbox did not bind {host!r}")
