"""A minimal Confluent Schema Registry client: schema id → writer schema, cached forever.

Schema ids are immutable in a registry, so a fetched schema never needs refreshing.
"""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import orjson

from consumer.decode.errors import SchemaRegistryUnavailable
from consumer.settings import SchemaRegistrySettings

__all__ = ["SchemaRegistryClient"]


class SchemaRegistryClient:
    """Fetches writer schemas by id over HTTP (``GET /schemas/ids/{id}``)."""

    def __init__(self, settings: SchemaRegistrySettings) -> None:
        if settings.url is None:
            raise ValueError("schema_registry.url is not set")
        self._base = settings.url.rstrip("/")
        self._headers = {"Accept": "application/vnd.schemaregistry.v1+json"}
        if settings.basic_auth is not None:
            token = base64.b64encode(settings.basic_auth.get_secret_value().encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout_seconds)

    async def fetch(self, schema_id: int) -> Any | None:
        """The writer schema for ``schema_id``, or ``None`` if the registry does not know it.

        Raises:
            SchemaRegistryUnavailable: the registry could not answer; try again later.
        """
        url = f"{self._base}/schemas/ids/{schema_id}"
        try:
            async with (
                aiohttp.ClientSession(timeout=self._timeout) as session,
                session.get(url, headers=self._headers) as response,
            ):
                if response.status == 404:
                    return None
                if response.status != 200:
                    raise SchemaRegistryUnavailable(
                        f"schema registry answered {response.status} for schema id {schema_id}"
                    )
                document = orjson.loads(await response.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SchemaRegistryUnavailable(
                f"schema registry unreachable: {type(exc).__name__}"
            ) from exc
        schema_type = document.get("schemaType", "AVRO")
        if schema_type != "AVRO":
            return None
        return orjson.loads(document["schema"])
