"""Where the room can reach this server: the address a shared link and its QR code carry.

A teacher who opens the app at ``http://localhost:8501`` gets that address in the
browser, but a phone that scans a QR code of it opens itself. So a link made on a
loopback address carries the machine's network address instead (the one Streamlit
prints as "Network URL"; with several, the teacher picks one). An address the operator
set wins over both: ``CONVAE_PUBLIC_URL`` (a reverse proxy's public URL, e.g.
``https://class.example.org``) or Streamlit's own ``browser.serverAddress``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

PUBLIC_URL_ENV = "CONVAE_PUBLIC_URL"


@dataclass(frozen=True)
class Reach:
    """The links to offer (the first is the default) and what to say about them.

    Attributes:
        urls: the share links, one per address the room may reach.
        note: one line on why the link is not the browser's own address, or None.
        warning: the note says students cannot reach this server as it is.
    """

    urls: tuple[str, ...]
    note: str | None = None
    warning: bool = False


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.x.x.x``, ``::1`` and the like: reachable from this machine only."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def network_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback: Streamlit's "Network URL" one
    first (the interface of the default route), then any other the host name has."""
    from streamlit import net_util

    found = [net_util.get_internal_ip() or ""]
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        found += [str(info[4][0]) for info in infos]
    except OSError:
        pass
    seen: list[str] = []
    for address in found:
        if address and not is_loopback(address) and address not in seen:
            seen.append(address)
    return seen


def with_base(url: str, base: str) -> str:
    """``url`` with the scheme, host and port of ``base`` (and ``base``'s path before its
    own, for a server behind a reverse proxy's sub-path)."""
    page, new = urlsplit(url), urlsplit(base)
    path = new.path.rstrip("/") + (page.path or "/")
    return urlunsplit((new.scheme, new.netloc, path, page.query, ""))


def reach(
    url: str,
    addresses: list[str],
    listens_on: str = "",
    public_url: str = "",
    server_address: str = "",
) -> Reach:
    """The links to share for a page opened at ``url``.

    Args:
        url: the page's address as the browser has it, with its query string.
        addresses: this machine's network addresses (:func:`network_addresses`).
        listens_on: the address the server listens on (``server.address``; empty: all).
        public_url: an operator's public base URL (``CONVAE_PUBLIC_URL``), if any.
        server_address: an operator's ``browser.serverAddress``, if set by them.
    """
    if public_url:
        return Reach((with_base(url, public_url),))
    page = urlsplit(url)
    if server_address:
        netloc = server_address if page.port is None else f"{server_address}:{page.port}"
        return Reach((urlunsplit(page._replace(netloc=netloc)),))
    host = page.hostname or ""
    if not is_loopback(host):
        return Reach((url,))
    if listens_on and is_loopback(listens_on):
        return Reach(
            (url,),
            f"This server listens on {listens_on} only, so no other device can reach it: "
            "start it with `--server.address 0.0.0.0` to serve the room (anyone on that "
            "network can then open it).",
            warning=True,
        )
    if not addresses:
        return Reach(
            (url,),
            f"This computer has no network address besides {host}, so phones cannot reach "
            "it: connect it to the room's network (the Wi-Fi), then open this again.",
            warning=True,
        )
    port = f":{page.port}" if page.port else ""
    urls = tuple(urlunsplit(page._replace(netloc=f"{a}{port}")) for a in addresses)
    return Reach(
        urls,
        f"You opened this page as {host}, which only this computer can reach: the link "
        "uses this computer's network address instead.",
    )


def reach_here(url: str) -> Reach:
    """:func:`reach` for this server: its settings, the environment, its addresses."""
    from streamlit import config

    server_address = ""
    if config.is_manually_set("browser.serverAddress"):
        server_address = str(config.get_option("browser.serverAddress") or "")
    public = os.environ.get(PUBLIC_URL_ENV, "").strip()
    if public and urlsplit(public).scheme not in ("http", "https"):
        public = ""  # not a web address: ignored rather than shared
    host = urlsplit(url).hostname or ""
    return reach(
        url,
        network_addresses() if is_loopback(host) and not (public or server_address) else [],
        str(config.get_option("server.address") or ""),
        public,
        server_address,
    )
