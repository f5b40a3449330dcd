#!/usr/bin/env python3
"""What a hostile User-Agent costs to parse, against a browser's, before and after. Figures.

    .venv/bin/python bench/user_agents.py [--agents 300]

Parses ``--agents`` distinct strings of each kind (a browser's, and five
hostile shapes of UA_MAX_LENGTH characters that match no rule: random text,
one repeated letter, the shapes of uap-core's own ReDoS tests) with no cache
in the way, three ways:

- ``python``: ua-parser's pure-Python resolver and the bot check as a
  case-insensitive regular expression, as Crumby parsed before;
- ``rust``: ua-parser's Rust-backed resolver and the bot check by substring
  search, as ``crumby.tracking.enrich`` parses now (its cache left out);
- ``crumby``: ``enrich.user_agent`` itself, cache included (each string new).

It prints wall and CPU microseconds per string and each kind's ratio to a
browser's in the same way, measured in this same run.
"""

from __future__ import annotations

import argparse
import random
import re
import string
import time

from ua_parser import BasicResolver, Domain, load_builtins, load_lazy_builtins
from ua_parser.regex import Resolver as RustResolver

from crumby.tracking import enrich
from crumby.tracking.enrich import UA_MAX_LENGTH, AgentParser

#: the bot check as it was: one case-insensitive alternation
OLD_BOT_PATTERN = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|scrap|archiver|facebookexternalhit|embedly|preview|"
    r"headless|phantomjs|selenium|webdriver|lighthouse|pagespeed|pingdom|uptime|monitor|"
    r"curl/|wget/|httpie|python-|python/|aiohttp|httpx|java/|okhttp|go-http|libwww|"
    r"node-fetch|axios|undici|guzzle|ruby|perl|php/|feedfetcher|rss|validator",
    re.IGNORECASE,
)


def kinds(count: int) -> dict[str, list[str]]:
    """``count`` distinct strings of each kind."""
    rng = random.Random(1)
    letters = string.ascii_letters + " ;/()._-"

    def cut(make):
        return [(f"{n:06d}" + make())[:UA_MAX_LENGTH] for n in range(count)]

    return {
        "browser": [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"Chrome/{100 + n % 40}.0.{n}.0 Safari/537.36"
            for n in range(count)
        ],
        "random text": cut(lambda: "".join(rng.choice(letters) for _ in range(600))),
        "aaaa...": cut(lambda: "a" * 600),
        "SmartWatch   ...": cut(lambda: "SmartWatch" + " " * 600),
        ";A Build H4444...": cut(lambda: ";A Build HuaweiA" + "4" * 600),
        "Mozilla/5.0 (a ;..": cut(
            lambda: "Mozilla/5.0 (" + "".join(rng.choice("a ;") for _ in range(600))
        ),
    }


class OldParser(AgentParser):
    """The pure-Python resolver and the old bot pattern, uncached."""

    def __call__(self, ua):
        return self._parse((ua or "")[:UA_MAX_LENGTH])

    def _parse(self, ua):
        result = self.resolver(ua, Domain.ALL).complete()
        return result, OLD_BOT_PATTERN.search(ua)


class NewParser(AgentParser):
    """Today's parse, uncached."""

    def __call__(self, ua):
        return self._parse((ua or "")[:UA_MAX_LENGTH])


def measure(parse, agents: list[str]) -> tuple[float, float]:
    """Wall and CPU microseconds per string."""
    wall, cpu = time.perf_counter(), time.process_time()
    for ua in agents:
        parse(ua)
    count = len(agents)
    return (
        (time.perf_counter() - wall) / count * 1e6,
        (time.process_time() - cpu) / count * 1e6,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=300)
    args = parser.parse_args()
    ways = {
        "python": OldParser(BasicResolver(load_builtins())),
        "rust": NewParser(RustResolver(load_lazy_builtins())),
        "crumby": enrich.user_agent,
    }
    for way in ways.values():  # rules compiled, caches warm
        way("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0")
    print(f"{'kind':<20}{'way':<8}{'wall µs':>9}{'CPU µs':>9}{'× browser':>11}")
    base: dict[str, float] = {}
    samples = kinds(args.agents)
    for kind, agents in samples.items():
        for name, way in ways.items():
            wall, cpu = measure(way, agents)
            if kind == "browser":
                base[name] = cpu
            print(f"{kind:<20}{name:<8}{wall:>9.1f}{cpu:>9.1f}{cpu / base[name]:>10.1f}x")
    worst = {
        name: max(measure(way, agents)[1] for kind, agents in samples.items() if kind != "browser")
        for name, way in (("python", ways["python"]), ("rust", ways["rust"]))
    }
    print(
        f"worst hostile string, CPU: python {worst['python']:.0f} µs, rust {worst['rust']:.0f} µs "
        f"({worst['python'] / worst['rust']:.0f} times cheaper); a browser's: python "
        f"{base['python']:.0f} µs, rust {base['rust']:.0f} µs"
    )


if __name__ == "__main__":
    main()
