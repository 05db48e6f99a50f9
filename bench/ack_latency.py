"""How fast `/knowlify` is acknowledged over real HTTP, next to the stock Starlette adapter.

One LocalStack (Knowlify simulator + Slack stand-in + the real bot, real SQLite file, real worker)
serves the *same* Bolt app twice:
  ours   bot.http_server.create_http_app  (app.dispatch in the thread pool)
  stock  slack_bolt.adapter.starlette.SlackRequestHandler  (app.dispatch on the event loop)
Signed requests (sandbox.slack_driver.SlackDriver) are timed from the client, one at a time and in
waves of 10 simultaneous requests. A second stack repeats the create commands while Knowlify holds
every POST /v1/videos answer for 2 s (simulator fault, status 0), so the worker is stuck in Knowlify
calls while the acks are measured. A third stack makes Slack slow instead: views.open answers after
0.5 s, and the bare `/knowlify` (which opens the form before acking) is timed, alone and 10 at a time.

Real-time settings (stage 2 s, window 60 s, poll 5 s, tick 0.5 s): the worker posts cards and
creates videos in the background, as in a deployment.

    python bench/ack_latency.py [--quick]
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import _common
from _common import summary_ms, table

_common.clean_env()

from slack_bolt.adapter.starlette import SlackRequestHandler  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.routing import Route  # noqa: E402

from sandbox.servers import ServerThread  # noqa: E402
from sandbox.slack_driver import SlackDriver  # noqa: E402
from sandbox.stack import SIGNING_SECRET, LocalStack, StackConfig  # noqa: E402

SLACK_LIMIT = 3.0


def stock_server(stack: LocalStack) -> ServerThread:
    """The same Bolt app behind the stock adapter, on its own port."""
    assert stack.runtime is not None
    handler = SlackRequestHandler(stack.runtime.app)

    async def events(request: Request):  # type: ignore[no-untyped-def]
        return await handler.handle(request)

    return ServerThread(Starlette(routes=[Route("/slack/events", events, methods=["POST"])])).start()


class Client:
    """Waves of `concurrency` simultaneous signed commands; each thread has its own driver/connection."""

    def __init__(self, url: str, concurrency: int) -> None:
        self.url = url
        self.concurrency = concurrency
        self.pool = ThreadPoolExecutor(concurrency)
        self._local = threading.local()
        self._drivers: list[SlackDriver] = []
        self._lock = threading.Lock()

    def _driver(self) -> SlackDriver:
        d = getattr(self._local, "driver", None)
        if d is None:
            # No hooks_base: nothing is mirrored to the stand-in, so only the bot's answer is timed.
            d = SlackDriver(self.url, SIGNING_SECRET)
            self._local.driver = d
            with self._lock:
                self._drivers.append(d)
        return d

    def run(self, make_text: Callable[[int], str], n: int, check: str) -> tuple[list[float], int]:
        """Send n commands; returns (seconds per request, how many were not a 200 carrying `check`)."""
        latencies: list[float] = []
        bad = 0
        sent = 0
        while sent < n:
            wave = min(self.concurrency, n - sent)
            barrier = threading.Barrier(wave)

            def one(i: int, barrier: threading.Barrier = barrier) -> tuple[float, bool]:
                driver = self._driver()
                barrier.wait()
                t0 = time.perf_counter()
                response = driver.command(make_text(i))
                elapsed = time.perf_counter() - t0
                return elapsed, response.status_code == 200 and check in response.text

            for elapsed, ok in self.pool.map(one, range(sent, sent + wave)):
                latencies.append(elapsed)
                bad += 0 if ok else 1
            sent += wave
        return latencies, bad

    def close(self) -> None:
        self.pool.shutdown()
        for d in self._drivers:
            d.close()


def warm(url: str) -> None:
    with SlackDriver(url, SIGNING_SECRET) as d:
        for _ in range(3):
            d.command("help")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="15 requests per row instead of 50")
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    n = 15 if args.quick else 50
    conc = args.concurrency
    config = dict(stage_seconds=2.0, window_seconds=60.0, poll_seconds=5.0, tick_seconds=0.5)

    def create(i: int) -> str:
        return f"Explain how HTTPS works, take {i} --duration 60"

    rows: list[list[object]] = []

    def record(scenario: str, adapter: str, result: tuple[list[float], int]) -> None:
        lat, bad = result
        over = sum(1 for x in lat if x > SLACK_LIMIT)
        rows.append([scenario, adapter, len(lat), *summary_ms(lat), over, bad])

    def measure(
        stack: LocalStack, scenario: str, make_text: Callable[[int], str], count: int, check: str
    ) -> None:
        """Time `count` commands against both adapters, one at a time and `conc` at a time."""
        stock = stock_server(stack)
        assert stack.bot_server is not None
        servers = {"ours": f"{stack.bot_server.url}/slack/events", "stock": f"{stock.url}/slack/events"}
        try:
            for c in (1, conc):
                for adapter, url in servers.items():
                    warm(url)
                    client = Client(url, c)
                    try:
                        pace = "1 at a time" if c == 1 else f"{c} concurrent"
                        record(scenario.format(pace=pace), adapter, client.run(make_text, count, check))
                    finally:
                        client.close()
        finally:
            stock.stop()

    # --- normal Knowlify -------------------------------------------------------------------------
    stack = LocalStack(StackConfig(**config)).start()
    try:
        measure(stack, "create, {pace}", create, n, "Got it")
        measure(stack, "help, {pace}", lambda i: "help", n, "Knowlify makes explainer videos")
        cards = sum(1 for call in stack.slack.calls_of("chat.postMessage") if not call.args.get("thread_ts"))
    finally:
        stack.stop()

    # --- Knowlify slow: every POST /v1/videos answer held 2 s -----------------------------------------
    slow = LocalStack(StackConfig(**config)).start()
    try:
        slow.sim.inject_fault(path_prefix="/v1/videos", method="POST", status=0, delay=2.0, times=10_000)
        t_start = slow.sim._clock()
        measure(slow, "create, {pace}, Knowlify +2 s", create, n, "Got it")
        t_end = slow.sim._clock()
        held = [
            c
            for c in slow.sim.calls
            if c.method == "POST" and c.path == "/v1/videos" and t_start <= c.at <= t_end
        ]
    finally:
        # Let Knowlify answer promptly again: the worker finishes its tick (up to 25 creates) before
        # the scheduler stops, which would take 25 x 2 s with the fault still armed.
        with slow.sim._lock:
            slow.sim._faults.clear()
        slow.stop()

    # --- Slack slow: views.open answers after 0.5 s (the bare command opens the form first) ---------
    slack_slow = LocalStack(StackConfig(**config)).start()
    try:
        slack_slow.slack.set_latency("views.open", 0.5)
        measure(slack_slow, "bare /knowlify (form), {pace}, views.open 0.5 s", lambda i: "", min(n, 20), "")
    finally:
        slack_slow.stop()

    table(
        ["scenario", "adapter", "n", "median ms", "p95 ms", "worst ms", ">3 s", "bad"],
        rows,
        title="/knowlify acknowledgement time, measured at the client (signed HTTP, real bot)",
    )
    print(
        f"(cards posted by the worker meanwhile: {cards}; during the {t_end - t_start:.1f} s of the slow "
        f"rows the worker sent {len(held)} POST /v1/videos, each answered after 2 s)"
    )
    by = {(r[0], r[1]): r for r in rows}
    conc_key = f"create, {conc} concurrent"
    ours, stock_row = by[(conc_key, "ours")], by[(conc_key, "stock")]
    slow_ours = by[(f"{conc_key}, Knowlify +2 s", "ours")]
    form = f"bare /knowlify (form), {conc} concurrent, views.open 0.5 s"
    form_ours, form_stock = by[(form, "ours")], by[(form, "stock")]
    print(
        f"Reading: with fast listeners both adapters ack {conc} concurrent creates well inside "
        f"{SLACK_LIMIT:.0f} s (p95 {ours[4]} ms ours, {stock_row[4]} ms stock), and holding Knowlify 2 s "
        f"changes nothing ({slow_ours[4]} ms): the ack never waits on Knowlify. When a listener waits on "
        f"Slack (views.open 0.5 s), the stock adapter serialises dispatch on the event loop: worst "
        f"{form_stock[5]} ms and {form_stock[6]} acks over {SLACK_LIMIT:.0f} s, vs worst {form_ours[5]} ms "
        f"with dispatch in the thread pool."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
