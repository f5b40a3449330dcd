"""How alike are a wrong password and an unknown username in time? Prints figures.

    python bench/login_timing.py [--rounds 40]

Posts the login form (with its CSRF token), in shuffled order, for a real user with a
wrong password and for a name that does not exist, on a throwaway SQLite
database with throttling off, and prints the median and mean of each and
their ratio. Both paths compute one scrypt hash, so the ratio should be ~1.0.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

from crumby import accounts, create_app
from crumby.database import ensure_schema

TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{Path(tmp) / 'bench.db'}",
                "SECRET_KEY": "bench",
                "LOGIN_LIMIT_PER_IP": "",
                "LOGIN_LIMIT_PER_USERNAME": "",
            }
        )
        ensure_schema(app)
        with app.app_context():
            accounts.add_user("alice", "the right password")
        client = app.test_client()
        token = TOKEN.search(client.get("/login").text).group(1)
        timings: dict[str, list[float]] = {"wrong password": [], "unknown user": []}
        cases = [("wrong password", "alice"), ("unknown user", "mallory")]
        for _ in range(args.rounds):
            random.shuffle(cases)  # a fixed order would favour one side on a busy machine
            for label, name in cases:
                data = {"username": name, "password": "guess", "csrf_token": token}
                start = time.perf_counter()
                response = client.post("/login", data=data)
                timings[label].append(time.perf_counter() - start)
                assert response.status_code == 401, response.status_code
    for label, values in timings.items():
        print(
            f"{label:15s} median {statistics.median(values) * 1000:7.2f} ms"
            f"   mean {statistics.mean(values) * 1000:7.2f} ms   n={len(values)}"
        )
    ratio = statistics.median(timings["unknown user"]) / statistics.median(
        timings["wrong password"]
    )
    print(f"unknown / wrong median ratio: {ratio:.3f}")


if __name__ == "__main__":
    main()
