"""The one place a default boto3 client is made; adapters take an injected client or get one here.

Endpoints (AWS_ENDPOINT_URL, so moto server needs no code branch), region and credentials come from the
environment, as boto3 reads them itself.
"""

from __future__ import annotations

from typing import Any


def aws_client(service: str, client: Any | None = None, **kwargs: Any) -> Any:
    """`client` when given (tests, a shared session), else a new boto3 client for `service`."""
    if client is not None:
        return client
    import boto3  # imported here: the gateway installs no boto3

    return boto3.client(service, **kwargs)
