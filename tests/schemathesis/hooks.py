"""schemathesis hooks for tests/schemathesis/run: how to send the one body that is not JSON."""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    """A ledger import is JSON Lines text; a generated value that is not text goes as its JSON."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "replace")
    return json.dumps(value).encode("utf-8")
