"""What the server adds to a hit: client IP, User-Agent facts, bot flag, anonymous id.

Each function is pure or reads only the request, so the hot path can call
them without touching the database. User-Agent parsing is the expensive part
(about a millisecond with ua-parser's pure-Python matcher), so results are
cached per distinct, length-capped User-Agent string: real traffic has few of
them.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import NamedTuple

from ua_parser import parse as parse_user_agent

#: longer User-Agents are cut before parsing: real ones are < 400 characters, and the
#: parser's regular expressions should never see megabytes
UA_MAX_LENGTH = 512

#: bots and tools that ua-parser does not class as "Spider", matched case-insensitively
BOT_PATTERN = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|scrap|archiver|facebookexternalhit|embedly|preview|"
    r"headless|phantomjs|selenium|webdriver|lighthouse|pagespeed|pingdom|uptime|monitor|"
    r"curl/|wget/|httpie|python-|python/|aiohttp|httpx|java/|okhttp|go-http|libwww|"
    r"node-fetch|axios|undici|guzzle|ruby|perl|php/|feedfetcher|rss|validator",
    re.IGNORECASE,
)
#: families ua-parser reports for non-human clients
BOT_FAMILIES = {"Spider", "HeadlessChrome", "PhantomJS", "Python Requests", "curl", "Wget"}


class Agent(NamedTuple):
    """What a User-Agent tells: platform (OS), browser, its version, device kind, bot flag."""

    platform: str | None
    browser: str | None
    version: str | None
    device: str | None
    is_bot: bool


@functools.lru_cache(maxsize=4096)
def _parse_agent(ua: str) -> Agent:
    if not ua.strip():
        return Agent(None, None, None, "bot", True)  # no User-Agent at all: a script
    result = parse_user_agent(ua)
    agent, os_, device = result.user_agent, result.os, result.device
    browser = agent.family if agent and agent.family != "Other" else None
    version = None
    if agent and agent.major:
        version = agent.major + (f".{agent.minor}" if agent.minor else "")
    platform = os_.family if os_ and os_.family != "Other" else None
    is_bot = bool(
        (device and device.family == "Spider")
        or (browser in BOT_FAMILIES)
        or BOT_PATTERN.search(ua)
    )
    return Agent(platform, browser, version, _device_kind(ua, device, is_bot), is_bot)


def _device_kind(ua: str, device: object, is_bot: bool) -> str:
    if is_bot:
        return "bot"
    family = getattr(device, "family", "") or ""
    if "iPad" in ua or "Tablet" in ua or family.endswith("Tablet"):
        return "tablet"
    if "Android" in ua and "Mobile" not in ua:
        return "tablet"
    if "Mobi" in ua or "iPhone" in ua or "Android" in ua:
        return "mobile"
    return "desktop"


def user_agent(ua: str | None) -> Agent:
    """Parse a User-Agent header (capped at UA_MAX_LENGTH characters), cached."""
    return _parse_agent((ua or "")[:UA_MAX_LENGTH])


_OCTET = r"(?:0|[1-9][0-9]{0,2})"
_DOTTED_QUAD = re.compile(rf"({_OCTET}\.{_OCTET}\.{_OCTET})\.{_OCTET}")


def _valid_ip(text: str) -> str | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    if _DOTTED_QUAD.fullmatch(text) and all(int(part) <= 255 for part in text.split(".")):
        return text  # already canonical: the common case, without ipaddress's objects
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def client_ip(remote_addr: str | None, forwarded_for: str | None, proxy_count: int) -> str | None:
    """The visitor's address: X-Forwarded-For's n-th entry from the right, n = PROXY_COUNT.

    With PROXY_COUNT 0 the header is ignored (anyone can send it). With fewer
    entries than trusted hops, or a malformed entry at that position, the
    connection's own address is used: a broken header never breaks a hit.
    """
    if proxy_count > 0 and forwarded_for:
        hops = [part for part in forwarded_for.split(",")]
        if len(hops) >= proxy_count:
            found = _valid_ip(hops[-proxy_count])
            if found:
                return found
    if remote_addr:
        return _valid_ip(remote_addr) or remote_addr[:45]
    return None


def anonymize_ip(ip: str | None) -> str | None:
    """Cut an address to its network: /24 for IPv4, /48 for IPv6."""
    if not ip:
        return ip
    match = _DOTTED_QUAD.fullmatch(ip)
    if match and all(int(part) <= 255 for part in ip.split(".")):
        return match[1] + ".0"  # the common case, without ipaddress's objects (hot path)
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)
