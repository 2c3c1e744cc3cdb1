#!/usr/bin/env python3
"""Reply latency of factbot through a real Synapse, beside Synapse's own floor.

    bench_matrix.py --url URL --secret-file FILE --bot @bot:localhost --pid PID [--n 200]

Two people (registered here) talk over the client-server API, standard
library only. Floor: Ann sends a plain message, Bob's /sync long-poll sees
it. Bot: Ann asks in a one-to-one room with the bot, Ann's /sync sees the
bot's m.notice that replies to it. One message at a time; each latency is
from just before the send request to the /sync response that carries the
event. Prints a JSON summary (p50/p90/p99/max in ms, the bot's RSS idle,
during, and peak) on stdout.
"""

import argparse
import json
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUESTIONS = [
    "!trade",
    "How much was trade between Belarus and Kazakhstan in 2011?",
    "!visit",
    "Когда был создан Таможенный союз?",
    "Who led the Belarusian delegation?",
    "!milestones",
    "сколько составил товарооборот в первом полугодии 2012?",
    "When was the Single Economic Space launched?",
    "!source trade.2011",
    "what plants were assembled in kazakstan?",
]


def call(url, method, path, token=None, body=None, timeout=60):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")


def register(url, secret_file, user):
    out = subprocess.run(
        [sys.executable, str(HERE.parent / "tests/synapse/register.py"), "--url", url,
         "--secret-file", secret_file, "--user", user, "--password", "pw", "--login-if-exists"],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)


class Watcher(threading.Thread):
    """A /sync long-poll loop recording when each event first arrived."""

    def __init__(self, url, token):
        super().__init__(daemon=True)
        self.url, self.token = url, token
        self.arrived = {}  # key -> monotonic time
        self.cond = threading.Condition()
        self.since = call(url, "GET", "/_matrix/client/v3/sync?timeout=0", token)["next_batch"]

    def run(self):
        while True:
            q = urllib.parse.urlencode({"since": self.since, "timeout": 30000})
            r = call(self.url, "GET", "/_matrix/client/v3/sync?" + q, self.token, timeout=90)
            now = time.monotonic()
            self.since = r["next_batch"]
            with self.cond:
                for room in r.get("rooms", {}).get("join", {}).values():
                    for ev in room.get("timeline", {}).get("events", []):
                        self.arrived.setdefault(ev["event_id"], now)
                        rel = ev.get("content", {}).get("m.relates_to", {}).get("m.in_reply_to", {})
                        if ev.get("content", {}).get("msgtype") == "m.notice" and rel.get("event_id"):
                            self.arrived.setdefault("reply:" + rel["event_id"], now)
                self.cond.notify_all()

    def wait(self, key, secs=60):
        deadline = time.monotonic() + secs
        with self.cond:
            while key not in self.arrived:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(key)
                self.cond.wait(left)
            return self.arrived[key]


def rss_kib(pid, field="VmRSS"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def summary(xs):
    return {k: round(v * 1000, 1) for k, v in
            {"p50": pct(xs, 50), "p90": pct(xs, 90), "p99": pct(xs, 99), "max": max(xs)}.items()}


def wait_joined(url, token, room, user, secs=60):
    deadline = time.monotonic() + secs
    path = f"/_matrix/client/v3/rooms/{urllib.parse.quote(room)}/joined_members"
    while time.monotonic() < deadline:
        if user in call(url, "GET", path, token).get("joined", {}):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{user} did not join {room}")


def send(url, token, room, body, msgtype="m.text"):
    txn = f"{time.time_ns()}"
    path = f"/_matrix/client/v3/rooms/{urllib.parse.quote(room)}/send/m.room.message/{txn}"
    return call(url, "PUT", path, token, {"msgtype": msgtype, "body": body})["event_id"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--secret-file", required=True)
    ap.add_argument("--bot", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--n", type=int, default=200)
    a = ap.parse_args()
    stamp = str(time.time_ns())[-8:]
    ann = register(a.url, a.secret_file, "ann" + stamp)
    bob = register(a.url, a.secret_file, "bob" + stamp)

    # Floor: Ann -> Bob, plain messages.
    floor_room = call(a.url, "POST", "/_matrix/client/v3/createRoom", ann["access_token"],
                      {"invite": [bob["user_id"]]})["room_id"]
    call(a.url, "POST", f"/_matrix/client/v3/join/{urllib.parse.quote(floor_room)}", bob["access_token"], {})
    bob_w = Watcher(a.url, bob["access_token"])
    bob_w.start()
    floor = []
    for i in range(a.n):
        t0 = time.monotonic()
        eid = send(a.url, ann["access_token"], floor_room, f"plain message {i}")
        floor.append(bob_w.wait(eid) - t0)

    # The bot: a one-to-one room.
    room = call(a.url, "POST", "/_matrix/client/v3/createRoom", ann["access_token"],
                {"invite": [a.bot], "is_direct": True})["room_id"]
    wait_joined(a.url, ann["access_token"], room, a.bot)
    idle = rss_kib(a.pid)
    ann_w = Watcher(a.url, ann["access_token"])
    ann_w.start()
    bot, during = [], []
    for i in range(a.n):
        t0 = time.monotonic()
        eid = send(a.url, ann["access_token"], room, QUESTIONS[i % len(QUESTIONS)])
        bot.append(ann_w.wait("reply:" + eid) - t0)
        if i % 20 == 0:
            during.append(rss_kib(a.pid))
    out = {
        "n": a.n,
        "floor_ms": summary(floor),
        "bot_ms": summary(bot),
        "bot_rss_mib": {
            "idle": round(idle / 1024, 1),
            "during_max": round(max(during) / 1024, 1),
            "peak_hwm": round(rss_kib(a.pid, "VmHWM") / 1024, 1),
        },
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
