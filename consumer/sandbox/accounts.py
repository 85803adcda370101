"""Sandbox accounts (merchants) and their private API keys with scopes.

Several keys may belong to one account, as in Klaviyo; rate limits are per account, so every
key of an account shares one budget. Keys are never shown in full outside this module (the
admin API and the page show ``redacted``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_SCOPES",
    "Account",
    "AccountRegistry",
    "ApiKey",
    "redact",
    "validate_scopes",
]

# Every scope the operations of the vendored contract need: a "full access" key for them.
DEFAULT_SCOPES = frozenset(
    {"accounts:read", "events:write", "lists:write", "profiles:write", "subscriptions:write"}
)
_SCOPE = re.compile(r"^[a-z][a-z-]*:(read|write)$")


def redact(key: str) -> str:
    """A key shown by its last four characters only (``pk_…abcd``), as Klaviyo's UI does."""
    return f"{key[:3]}…{key[-4:]}" if len(key) > 8 else "…"


@dataclass
class ApiKey:
    """One private API key: the account it belongs to, its scopes, whether it is revoked."""

    key: str = field(repr=False)
    account_id: str
    scopes: frozenset[str]
    revoked: bool = False

    def __repr__(self) -> str:
        return (
            f"ApiKey(key={redact(self.key)!r}, account_id={self.account_id!r}, "
            f"scopes={sorted(self.scopes)!r}, revoked={self.revoked!r})"
        )

    def describe(self) -> dict[str, Any]:
        """JSON view for the admin API (redacted key)."""
        return {"key": redact(self.key), "scopes": sorted(self.scopes), "revoked": self.revoked}


@dataclass
class Account:
    """One Klaviyo account, with the attributes ``GET /api/accounts`` reports."""

    account_id: str
    organization_name: str
    test_account: bool = False
    timezone: str = "UTC"
    preferred_currency: str = "USD"
    locale: str = "en-US"
    industry: str | None = None
    keys: list[ApiKey] = field(default_factory=list)
    lists: set[str] | None = None
    """The account's list ids; None = lists not modelled, any id is taken to exist."""

    def has_list(self, list_id: str) -> bool:
        """Whether a subscription may name ``list_id``."""
        return self.lists is None or list_id in self.lists

    def add_lists(self, list_ids: Iterable[str]) -> None:
        """Create lists (from then on, subscriptions to any other list id are refused)."""
        self.lists = (self.lists or set()) | {i for i in list_ids if i}

    @property
    def public_api_key(self) -> str:
        """A stable six-character public key (site id) derived from the account id."""
        return hashlib.sha256(self.account_id.encode()).hexdigest()[:6].upper()

    def resource(self, base_url: str) -> dict[str, Any]:
        """The JSON:API ``account`` resource object (``AccountResponseObjectResource``)."""
        domain = re.sub(r"[^a-z0-9]+", "-", self.account_id.lower()).strip("-") or "merchant"
        return {
            "type": "account",
            "id": self.public_api_key,
            "attributes": {
                "test_account": self.test_account,
                "contact_information": {
                    "default_sender_name": self.organization_name,
                    "default_sender_email": f"hello@{domain}.example",
                    "website_url": f"https://{domain}.example",
                    "organization_name": self.organization_name,
                    "street_address": {
                        "address1": "1 Sandbox Street",
                        "address2": None,
                        "city": "Boston",
                        "region": "MA",
                        "country": "US",
                        "zip": "02110",
                    },
                },
                "industry": self.industry,
                "timezone": self.timezone,
                "preferred_currency": self.preferred_currency,
                "public_api_key": self.public_api_key,
                "locale": self.locale,
            },
            "links": {"self": f"{base_url}/api/accounts/{self.public_api_key}/"},
        }

    def describe(self) -> dict[str, Any]:
        """JSON view for the admin API."""
        return {
            "account_id": self.account_id,
            "organization_name": self.organization_name,
            "public_api_key": self.public_api_key,
            "test_account": self.test_account,
            "keys": [key.describe() for key in self.keys],
            "lists": None if self.lists is None else sorted(self.lists),
        }


def validate_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """The scopes as a set; raises ValueError for a name that is not ``<resource>:read|write``."""
    result = frozenset(scopes)
    bad = sorted(s for s in result if not _SCOPE.match(s))
    if bad:
        raise ValueError(f"invalid scope names: {', '.join(bad)}")
    return result


class AccountRegistry:
    """All sandbox accounts and the index from key to account."""

    def __init__(self) -> None:
        self._accounts: dict[str, Account] = {}
        self._keys: dict[str, ApiKey] = {}

    def add_account(
        self,
        account_id: str,
        key: str | None = None,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        **attributes: Any,
    ) -> Account:
        """Create ``account_id`` (or update its attributes) and optionally add ``key`` to it.

        Raises:
            ValueError: the key belongs to another account, or a scope name is invalid.
        """
        if not account_id:
            raise ValueError("account_id must not be empty")
        account = self._accounts.get(account_id)
        if account is None:
            attributes.setdefault("organization_name", f"Sandbox {account_id}")
            account = Account(account_id=account_id, **attributes)
            self._accounts[account_id] = account
        else:
            for name, value in attributes.items():
                setattr(account, name, value)
        if key is not None:
            self.add_key(account_id, key, scopes)
        return account

    def add_key(self, account_id: str, key: str, scopes: Iterable[str] = DEFAULT_SCOPES) -> ApiKey:
        """Add (or re-scope and un-revoke) ``key`` on an existing account.

        Raises:
            KeyError: no such account.
            ValueError: the key belongs to another account, or a scope name is invalid.
        """
        account = self._accounts[account_id]
        checked = validate_scopes(scopes)
        if not key:
            raise ValueError("key must not be empty")
        existing = self._keys.get(key)
        if existing is not None and existing.account_id != account_id:
            raise ValueError("key already belongs to another account")
        if existing is not None:
            existing.scopes, existing.revoked = checked, False
            return existing
        api_key = ApiKey(key=key, account_id=account_id, scopes=checked)
        self._keys[key] = api_key
        account.keys.append(api_key)
        return api_key

    def revoke_key(self, key: str) -> ApiKey:
        """Revoke ``key``: later requests with it get 401. Raises KeyError if unknown."""
        api_key = self._keys[key]
        api_key.revoked = True
        return api_key

    def remove_account(self, account_id: str) -> None:
        """Delete an account and all its keys. Raises KeyError if unknown."""
        account = self._accounts.pop(account_id)
        for api_key in account.keys:
            self._keys.pop(api_key.key, None)

    def resolve(self, key: str) -> ApiKey | None:
        """The key record (revoked or not), or None for a key the sandbox never saw."""
        return self._keys.get(key)

    def get(self, account_id: str) -> Account | None:
        """The account, or None."""
        return self._accounts.get(account_id)

    def accounts(self) -> Mapping[str, Account]:
        """Every account by id (read-only view)."""
        return dict(self._accounts)

    def clear(self) -> None:
        """Forget every account and key."""
        self._accounts.clear()
        self._keys.clear()
