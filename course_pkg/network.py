"""Network access: the one probe the package uses before a download, so that offline runs fail fast."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from typing import Optional

__all__ = ["reachable"]


def reachable(url: str, timeout: float) -> Optional[str]:
    """None if ``url`` answers an HTTP HEAD request (any status) within ``timeout`` seconds, else why not.

    A full request, not just a TCP connection: some networks accept every connection and then stay silent.
    It runs in a daemon thread, so that not even a stalled DNS lookup holds the caller past ``timeout``.
    Proxies set in the environment (``HTTPS_PROXY``) are used, as a download would use them.
    """
    result: list[Optional[str]] = [f"no answer within {timeout:g} s"]

    def attempt() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
            result[0] = None
        except urllib.error.HTTPError:  # the server answered (401, 404, ...): it is reachable
            result[0] = None
        except Exception as err:  # URLError, timeouts, refused connections, SSL errors
            result[0] = f"{type(err).__name__}: {getattr(err, 'reason', err)}"

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout)
    return result[0]
