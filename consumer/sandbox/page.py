"""The sandbox's HTML page at ``/``: accounts → metrics → counts, and the latest events.

Meant for people running the local demo; it refreshes itself every few seconds. Every value
comes from clients, so every value is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from aiohttp import web

from consumer.klaviyo import REVISION
from consumer.sandbox.state import SandboxState
from consumer.sandbox.store import StoredEvent

__all__ = ["LATEST_EVENTS", "Page", "render_page"]

LATEST_EVENTS = 25

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; }
th { background: #f3f3f3; } td.n { text-align: right; } .muted { color: #777; }
code { font-size: 0.9em; }
"""


def _cell(value: Any, numeric: bool = False) -> str:
    text = "" if value is None else str(value)
    return f'<td class="n">{escape(text)}</td>' if numeric else f"<td>{escape(text)}</td>"


def _account_section(state: SandboxState, account_id: str) -> str:
    store = state.store
    account = state.accounts.get(account_id)
    keys = ", ".join(
        f"{k.describe()['key']} ({' '.join(sorted(k.scopes))}{'; revoked' if k.revoked else ''})"
        for k in (account.keys if account else [])
    )
    faults = state.armed_faults(account_id)
    armed = faults.describe() if faults is not None else {}
    rows = (
        "".join(
            f"<tr>{_cell(metric)}{_cell(count, True)}</tr>"
            for metric, count in sorted(store.metric_counts(account_id).items())
        )
        or '<tr><td colspan="2" class="muted">no events yet</td></tr>'
    )
    return (
        f"<h2>{escape(account_id)}</h2>"
        f"<p>keys: <code>{escape(keys) or '—'}</code><br>"
        f"unique events: {store.unique_event_count(account_id)} · "
        f"duplicates: {store.duplicate_count(account_id)} · "
        f"subscription profiles: {len(store.subscriptions(account_id))}"
        + (f"<br>faults: <code>{escape(str(armed))}</code>" if armed else "")
        + "</p>"
        f"<table><tr><th>metric</th><th>events</th></tr>{rows}</table>"
    )


def _latest_events(state: SandboxState) -> list[StoredEvent]:
    events = [
        event
        for account_id in state.store.account_ids()
        for event in state.store.events(account_id)[-LATEST_EVENTS:]
    ]
    events.sort(key=lambda e: e.request_number)
    return events[-LATEST_EVENTS:][::-1]


def render_page(state: SandboxState) -> str:
    """The whole page as HTML text."""
    account_ids = sorted(set(state.accounts.accounts()) | set(state.store.account_ids()))
    stats = state.stats.snapshot(state.store.duplicates_by_account())
    statuses = " · ".join(f"{escape(k)}: {v}" for k, v in stats.by_status().items()) or "none"
    sections = "".join(_account_section(state, a) for a in account_ids) or (
        '<p class="muted">No accounts. Add one with <code>--account ID=KEY</code> or '
        "<code>POST /sandbox/accounts</code>.</p>"
    )
    event_rows = "".join(
        "<tr>"
        + _cell(e.received_at.strftime("%H:%M:%S"))
        + _cell(e.account_id)
        + _cell(e.metric)
        + _cell(e.key.profile)
        + _cell(e.unique_id)
        + _cell(e.value, True)
        + _cell(e.value_currency)
        + _cell("yes" if e.backfill else "")
        + "</tr>"
        for e in _latest_events(state)
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='refresh' content='5'>"
        f"<title>Klaviyo sandbox</title><style>{_STYLE}</style></head><body>"
        f"<h1>Klaviyo sandbox</h1><p class='muted'>revision {escape(REVISION)} · "
        f"requests: {statuses} · 429s: {stats.throttled} · resets: {stats.connection_resets} · "
        f"duplicates: {stats.duplicate_events} · JSON: <a href='/sandbox/stats'>stats</a>, "
        "<a href='/sandbox/accounts'>accounts</a></p>"
        f"{sections}<h2>Latest events</h2><table><tr><th>received</th><th>account</th>"
        "<th>metric</th><th>profile</th><th>unique_id</th><th>value</th><th>currency</th>"
        f"<th>backfill</th></tr>{event_rows}</table></body></html>"
    )


class Page:
    """The ``GET /`` handler."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state

    async def handle(self, request: web.Request) -> web.Response:
        """Render the page."""
        return web.Response(text=render_page(self._state), content_type="text/html")
