#!/usr/bin/env python
"""Container health probe: exit 0 when the service answers GET /ready with 200, else 1.

Uses only the standard library because the images carry no curl. The address comes from the same
VOICEID_HOST / VOICEID_PORT variables the service reads; a wildcard bind address is probed on
loopback.
"""

import os
import sys
import urllib.error
import urllib.request

WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}
TIMEOUT_S = 4.0  # below the Dockerfiles' HEALTHCHECK --timeout


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
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError as error:
        print(f"{url}: {error}", file=sys.stderr)
        return 1
    print(f"{url}: HTTP {status}")
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
