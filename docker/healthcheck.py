#!/usr/bin/env python
"""Container health probe: exit 0 when the service answers GET /ready with 200, else 1.

Uses only the standard library because the images carry no curl. The address comes from the same
VOICEID_HOST / VOICEID_PORT variables the service reads; a wildcard bind address is probed on
loopback.
"""

import json
import os
import sys
import urllib.error
import urllib.request

WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}
TIMEOUT_S = 4.0  # below the Dockerfiles' HEALTHCHECK --timeout
MAX_REASON_BYTES = 4096  # of a refusal's body: docker keeps the probe's output, 4 KiB of it


def ready_url() -> str:
    host = os.environ.get("VOICEID_HOST", "127.0.0.1")
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = os.environ.get("VOICEID_PORT", "8000")
    return f"http://{host}:{port}/ready"


def main() -> int:
    url = ready_url()
    why = ""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status, why = error.code, reason(error)
    except OSError as error:
        print(f"{url}: {error}", file=sys.stderr)
        return 1
    print(f"{url}: HTTP {status}{f': {why}' if why else ''}")
    return 0 if status == 200 else 1


def reason(error: urllib.error.HTTPError) -> str:
    """The ``detail`` of a refusal's JSON body (why no model is loaded), which ``docker
    inspect`` then shows; empty when there is none."""
    try:
        detail = json.loads(error.read(MAX_REASON_BYTES)).get("detail", "")
    except (OSError, ValueError, AttributeError):
        return ""
    return detail if isinstance(detail, str) else ""


if __name__ == "__main__":
    sys.exit(main())
