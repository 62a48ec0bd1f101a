"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

The signed content is "{webhook-id}.{webhook-timestamp}.{body}"; the signature header is
"v1," + base64(HMAC-SHA256(key, content)), where the key is the base64 part of the secret
"whsec_<base64>".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
KEY_BYTES = 24


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def signature(secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    content = f"{webhook_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, webhook_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": "segql-webhooks",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, webhook_id, timestamp, body),
    }


def verify(secret: str, webhook_id: str, timestamp: str, body: bytes, header: str) -> bool:
    """True when one of the header's signatures is ours for these bytes."""
    try:
        expected = signature(secret, webhook_id, int(timestamp), body.decode())
    except (ValueError, UnicodeDecodeError):
        return False
    return any(hmac.compare_digest(expected, given) for given in header.split())
