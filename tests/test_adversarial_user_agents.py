"""Hostile User-Agents cost no more than a browser's, proved by counting work, not timing it.

A client controls its User-Agent: 512 characters that match none of
ua-parser's ~1,000 rules, a new one with every hit, so that no cache helps.
What bounds the cost, checked here without a clock:

- the string is cut to UA_MAX_LENGTH before any rule reads it;
- the rules run in the Rust-backed resolver, one call per new string, and
  never through Python's backtracking ``re`` one rule at a time (counted
  with a profiler hook: the pure-Python resolver, measured in the same test,
  runs hundreds of ``re`` searches for the same string);
- a flood of one-off strings does not evict the real browsers' cached
  facts, so real traffic is not parsed again (resolver calls counted).

``bench/user_agents.py`` has the timings.
"""

from __future__ import annotations

import random
import string
import sys

import pytest
from ua_parser import BasicResolver, load_builtins
from ua_parser.regex import Resolver as RustResolver

from crumby.tracking import enrich
from crumby.tracking.enrich import UA_MAX_LENGTH, AgentParser, user_agent

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
]


#: garbage that no rule matches, in shapes known to make backtracking matchers work hard
_RANDOM = random.Random(5)
SHAPES = [
    "".join(_RANDOM.choice(string.ascii_letters + " ;/()._-") for _ in range(700)),
    "a" * 700,
    "SmartWatch" + " " * 700,
    ";A Build HuaweiA" + "4" * 700,
    "Mozilla/5.0 (" + "".join(_RANDOM.choice("a ;") for _ in range(700)),
]


def hostile(n: int) -> str:
    """The n-th hostile User-Agent: exactly UA_MAX_LENGTH characters, a new string for each n."""
    shape = SHAPES[n % len(SHAPES)]
    return (f"{n:08d}" + shape[n % 101 :])[:UA_MAX_LENGTH]


class Counting:
    """A resolver that counts its calls and the length of what it was given."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __call__(self, ua, domains):
        self.calls.append(ua)
        return self.inner(ua, domains)


@pytest.fixture(scope="module")
def rust() -> RustResolver:
    return enrich.AGENTS._resolver()


def python_regex_calls(function, *args) -> int:
    """How many searches/matches of compiled Python regular expressions a call runs."""
    calls = 0

    def hook(frame, event, arg):
        nonlocal calls
        if event == "c_call" and getattr(arg, "__self__", None).__class__ is type(enrich.BOT_WORD):
            calls += 1

    sys.setprofile(hook)
    try:
        function(*args)
    finally:
        sys.setprofile(None)
    return calls


def test_the_app_parses_with_the_linear_time_resolver():
    user_agent("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0")
    assert isinstance(enrich.AGENTS.resolver, RustResolver)


def test_a_hostile_agent_runs_no_rule_through_pythons_backtracking_re(rust):
    basic = AgentParser(BasicResolver(load_builtins()))
    ours = AgentParser(rust)
    for n in range(10):
        ua = hostile(n)
        # the baseline, measured the same way: the pure-Python resolver tries rule after rule
        assert python_regex_calls(basic, ua) > 500
        # here: the bot pattern alone (one linear scan of at most UA_MAX_LENGTH characters)
        assert python_regex_calls(ours, ua) <= 1
        assert python_regex_calls(ours, ua) == 0  # and nothing at all the second time


def test_each_hostile_agent_is_parsed_once_and_cut_first(rust):
    counting = Counting(rust)
    parser = AgentParser(counting)
    agents = [hostile(n) + "x" * 10_000 for n in range(300)]
    for ua in agents + agents:
        agent = parser(ua)
        assert agent.browser is None or isinstance(agent.browser, str)
    assert len(counting.calls) <= len(agents) + len(agents) // 10
    assert max(len(ua) for ua in counting.calls) == UA_MAX_LENGTH


def test_a_flood_of_one_off_agents_leaves_the_browsers_cached(rust):
    counting = Counting(rust)
    parser = AgentParser(counting, cache_size=500)
    browsers = [shape.format(v=v) for shape in BROWSERS for v in range(100, 150)]  # 150
    for _ in range(2):  # real traffic: each browser seen again and again
        for ua in browsers:
            parser(ua)
    assert len(counting.calls) == len(browsers)
    for n in range(10_000):  # 20 times the cache's size of strings never seen again
        parser(hostile(n))
        if n % 20 == 0:  # real traffic goes on meanwhile
            parser(browsers[n // 20 % len(browsers)])
    counting.calls.clear()
    for ua in browsers:
        assert parser(ua).browser in {"Chrome", "Firefox", "Mobile Safari"}
    assert counting.calls == []  # none of them parsed again
