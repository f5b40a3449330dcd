"""What the server adds to a hit: client IP, User-Agent facts, bot flag, anonymous id.

Each function is pure or reads only the request, so the hot path can call
them without touching the database. User-Agent parsing is the expensive
part, and the one a hostile client controls, so it is made cheap three ways:

- the string is cut to ``UA_MAX_LENGTH`` characters before anything reads it;
- ua-parser's ``regex`` resolver (the ``ua-parser-rs`` accelerator) matches
  all of its ~1,000 rules at once with Rust's ``regex`` crate, whose matching
  is linear in the input by construction (no backtracking), where the
  pure-Python resolver runs them one by one through ``re``, so that a
  512-character string that matches no rule cost 13 times a browser's;
- results are kept per distinct (cut) User-Agent in an S3-FIFO cache, which a
  flood of one-off strings cannot empty of the real browsers' entries (an
  LRU cache can: each new string evicts the oldest real one).

``bench/user_agents.py`` measures the costs.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from typing import Any, NamedTuple

from ua_parser import Domain, load_lazy_builtins
from ua_parser.caching import S3Fifo
from ua_parser.regex import Resolver as LinearResolver

#: longer User-Agents are cut before parsing: real ones are < 400 characters, and the
#: parser's regular expressions should never see megabytes
UA_MAX_LENGTH = 512
#: distinct User-Agents whose facts are kept
UA_CACHE_SIZE = 4096

#: bots and tools that ua-parser does not class as "Spider": words found in the lower-cased
#: string by plain substring search (a regular expression of these alternatives, matched
#: case-insensitively, cost more than the whole parse of a 512-character string)
BOT_TOKENS = tuple(
    """
    bot/ crawl spider slurp scrap archiver facebookexternalhit embedly preview
    headless phantomjs selenium webdriver lighthouse pagespeed pingdom uptime monitor
    curl/ wget/ httpie python- python/ aiohttp httpx java/ okhttp go-http libwww
    node-fetch axios undici guzzle ruby perl php/ feedfetcher rss validator
    """.split()
)
#: "bot" ending a word (Googlebot, "bot;"): after a substring check finds "bot" at all
BOT_WORD = re.compile(r"bot\b")
#: families ua-parser reports for non-human clients
BOT_FAMILIES = {"Spider", "HeadlessChrome", "PhantomJS", "Python Requests", "curl", "Wget"}


class Agent(NamedTuple):
    """What a User-Agent tells: platform (OS), browser, its version, device kind, bot flag,
    and the OS's version."""

    platform: str | None
    browser: str | None
    version: str | None
    device: str | None
    is_bot: bool
    os_version: str | None = None


class AgentParser:
    """User-Agent strings to ``Agent``s: one linear-time parse per distinct string, cached.

    ``resolver`` is a ua-parser resolver (the Rust-backed one unless given:
    the tests hand in a counting one); it is built on first use, as loading
    the rules takes a moment that a process which parses nothing should
    not pay.
    """

    def __init__(self, resolver: Any = None, cache_size: int = UA_CACHE_SIZE) -> None:
        self.resolver = resolver
        self.cache = S3Fifo(cache_size)
        self._lock = threading.Lock()

    def __call__(self, ua: str | None) -> Agent:
        """The facts of a User-Agent header, cut to UA_MAX_LENGTH characters first."""
        ua = (ua or "")[:UA_MAX_LENGTH]
        agent = self.cache[ua]
        if agent is None:
            agent = self._parse(ua)
            self.cache[ua] = agent  # type: ignore[assignment]
        return agent  # type: ignore[return-value]

    def _resolver(self) -> Any:
        if self.resolver is None:
            with self._lock:
                if self.resolver is None:
                    self.resolver = LinearResolver(load_lazy_builtins())
        return self.resolver

    def _parse(self, ua: str) -> Agent:
        if not ua.strip():
            return Agent(None, None, None, "bot", True)  # no User-Agent at all: a script
        result = self._resolver()(ua, Domain.ALL).complete()
        agent, os_, device = result.user_agent, result.os, result.device
        browser = agent.family if agent and agent.family != "Other" else None
        version = None
        if agent and agent.major:
            version = agent.major + (f".{agent.minor}" if agent.minor else "")
        platform = os_.family if os_ and os_.family != "Other" else None
        os_version = None
        if platform and os_.major:
            os_version = os_.major + (f".{os_.minor}" if os_.minor else "")
        is_bot = bool(
            (device and device.family == "Spider")
            or (browser in BOT_FAMILIES)
            or looks_like_bot(ua)
        )
        device_kind = _device_kind(ua, device, is_bot)
        return Agent(platform, browser, version, device_kind, is_bot, os_version)


def looks_like_bot(ua: str) -> bool:
    """True when a User-Agent names a bot or a tool; linear in its length, with no backtracking."""
    low = ua.lower()
    return ("bot" in low and BOT_WORD.search(low) is not None) or any(
        token in low for token in BOT_TOKENS
    )


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


#: the process's parser: the rules and the cache are the same for every app
AGENTS = AgentParser()


def user_agent(ua: str | None) -> Agent:
    """Parse a User-Agent header (capped at UA_MAX_LENGTH characters), cached."""
    return AGENTS(ua)


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
