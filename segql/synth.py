"""A synthetic shop: seeded, reproducible users and the events they produce.

The same seed always gives the same profiles and the same events, byte for byte, so a benchmark or a
bug report can be replayed. Everything streams: events come out of generators one at a time, so a
10-million-event run needs only per-user bookkeeping (a few lists of `n_users` numbers), never the
events themselves.

The behaviour model, in short:

- every user has an activity weight drawn from a Pareto distribution, so a few users produce a large
  share of the events, as in real products;
- time moves forward as events are emitted; each step starts a *session* of a user picked by
  weight;
- a session is a short burst of related events on one channel: browsing (page views, product views,
  cart adds, sometimes a purchase that follows the cart), an app open, an email opened and maybe
  clicked, or, for the few users shopping for a loan, calculator views, rate comparisons and visits
  to competitors;
- app sessions carry a `session_id` prop (as a mobile SDK assigns one); web and email sessions
  carry none, and are told apart by their gaps: seconds to a few minutes within a session;
- a user's events never go back in time, and no event is stamped after `end`.

Writers put the stream into JSON lines (the format `segql ingest` reads) or straight into
`segql.events` / `segql.profiles` with COPY, one committed transaction per batch.
"""

from __future__ import annotations

import json
import math
import random
import zlib
from bisect import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate, islice
from pathlib import Path
from typing import Any, TextIO

import psycopg

# name, country, latitude, longitude, weight (share of the population)
CITIES: tuple[tuple[str, str, float, float, int], ...] = (
    ("New York", "US", 40.7128, -74.0060, 12),
    ("Los Angeles", "US", 34.0522, -118.2437, 8),
    ("Chicago", "US", 41.8781, -87.6298, 6),
    ("San Francisco", "US", 37.7749, -122.4194, 4),
    ("Houston", "US", 29.7604, -95.3698, 4),
    ("Austin", "US", 30.2672, -97.7431, 3),
    ("Miami", "US", 25.7617, -80.1918, 3),
    ("Boston", "US", 42.3601, -71.0589, 3),
    ("Seattle", "US", 47.6062, -122.3321, 3),
    ("Toronto", "CA", 43.6532, -79.3832, 4),
    ("London", "GB", 51.5074, -0.1278, 8),
    ("Manchester", "GB", 53.4808, -2.2426, 2),
    ("Berlin", "DE", 52.5200, 13.4050, 5),
    ("Munich", "DE", 48.1351, 11.5820, 2),
    ("Paris", "FR", 48.8566, 2.3522, 5),
    ("Madrid", "ES", 40.4168, -3.7038, 3),
    ("Amsterdam", "NL", 52.3676, 4.9041, 2),
    ("São Paulo", "BR", -23.5505, -46.6333, 3),
    ("Tokyo", "JP", 35.6762, 139.6503, 3),
    ("Mumbai", "IN", 19.0760, 72.8777, 3),
    ("Sydney", "AU", -33.8688, 151.2093, 3),
    ("Singapore", "SG", 1.3521, 103.8198, 2),
)

PLANS: tuple[str, ...] = ("free", "pro", "premium")
PLAN_WEIGHTS: tuple[int, ...] = (70, 22, 8)
# Paying users come back more often and buy more readily.
PLAN_ACTIVITY: tuple[float, ...] = (1.0, 1.6, 2.4)
PLAN_BUY_RATE: tuple[float, ...] = (0.25, 0.35, 0.5)

# category, median price in dollars
CATEGORIES: tuple[tuple[str, float], ...] = (
    ("electronics", 120.0),
    ("fashion", 45.0),
    ("home", 60.0),
    ("beauty", 25.0),
    ("books", 15.0),
    ("sports", 55.0),
    ("toys", 30.0),
    ("grocery", 12.0),
)

BLOG_POSTS: tuple[str, ...] = (
    "spring-sale",
    "gift-guide",
    "how-to-choose-a-laptop",
    "sustainable-fashion",
    "home-office-setup",
    "first-home-mortgage",
    "running-shoes-2025",
)
CAMPAIGNS: tuple[str, ...] = ("welcome", "weekly-deals", "cart-reminder", "win-back", "loan-offer")
COMPETITORS: tuple[str, ...] = ("lendfast.example", "bankrate.example", "moneyhub.example")

N_PRODUCTS = 2000
PARETO_ALPHA = 1.3  # top 1 % of users produce roughly a third of the events
TRIAL_SHARE_OF_PAID = 0.4  # about 12 % of all users are on a trial of a paid plan
LOAN_SHOPPER_SHARE = 0.06
SIGNUP_HISTORY_DAYS = 730
MAX_GAP_SECONDS = 240.0
SESSION_MARGIN_SECONDS = 900.0
MAX_SESSION_EVENTS = 40
LIVE_CONCURRENT_SESSIONS = 8

Event = dict[str, Any]
Step = tuple[float, str, str]  # (seconds since the previous event, name, props as JSON text)
Row = tuple[str, str, str, str]  # (user_id, name, ts, props as JSON text)


@dataclass(frozen=True)
class Product:
    id: str
    category: str
    price: float
    json: str  # the fields above as JSON object members, spliced into an event's props


@dataclass(frozen=True)
class Population:
    """Per-user facts that both profiles and events need, derived from the seed alone."""

    user_ids: list[str]
    plan: list[int]
    device: list[str]
    loan_shopper: list[bool]
    activity_cum: list[float]  # cumulative activity weights, for picking a user by weight
    home: list[int]  # index into CITIES: where the profile lives and the app reports from


@dataclass(frozen=True)
class World:
    population: Population
    products: list[Product]
    product_cum: list[float]
    # With a lifecycle (see `lifecycle`): how much more (or less) readily each user buys.
    buy_boost: list[float] | None = None


@dataclass(frozen=True)
class Lifecycle:
    """When each user starts and stops using the shop, and how readily they buy.

    Customers differ in a latent purchase propensity (gamma-distributed around 1, multiplying
    their plan's buy rate) and churn for good after an exponential lifetime, so a model that
    predicts purchases from recency and frequency has something real to learn.
    """

    joins: list[float]  # epoch seconds
    churns: list[float]
    buy_boost: list[float]

    def active(self, index: int, t: float) -> bool:
        return self.joins[index] <= t < self.churns[index]


LIFETIME_SHARE = 0.6  # mean lifetime, as a share of the generated range
EARLY_SHARE = 0.4  # users already there when the range starts
MAX_REPICKS = 200


def lifecycle(n_users: int, seed: int, start_s: float, end_s: float) -> Lifecycle:
    rng = random.Random(f"segql-lifecycle-{seed}")
    span = end_s - start_s
    joins, churns, boosts = [], [], []
    for _ in range(n_users):
        join = start_s if rng.random() < EARLY_SHARE else start_s + 0.9 * span * rng.random()
        joins.append(join)
        churns.append(join + rng.expovariate(1 / (LIFETIME_SHARE * span)))
        boosts.append(rng.gammavariate(2.0, 0.5))
    return Lifecycle(joins, churns, boosts)


def user_id(index: int) -> str:
    return f"u{index:06d}"


def population(n_users: int, seed: int) -> Population:
    """The users of a shop, identical for every call with the same arguments."""
    if n_users < 1:
        raise ValueError("n_users must be at least 1")
    rng = random.Random(f"segql-population-{seed}")
    plans = rng.choices(range(len(PLANS)), weights=PLAN_WEIGHTS, k=n_users)
    devices = rng.choices(("ios", "android", "web"), weights=(35, 30, 35), k=n_users)
    loan = [rng.random() < LOAN_SHOPPER_SHARE for _ in range(n_users)]
    weights = (rng.paretovariate(PARETO_ALPHA) * PLAN_ACTIVITY[p] for p in plans)
    # Homes from their own stream, so the draws above stay what they were.
    homes = random.Random(f"segql-homes-{seed}")
    city_weights = [c[4] for c in CITIES]
    return Population(
        user_ids=[user_id(i) for i in range(n_users)],
        plan=plans,
        device=devices,
        loan_shopper=loan,
        activity_cum=list(accumulate(weights)),
        home=homes.choices(range(len(CITIES)), weights=city_weights, k=n_users),
    )


def catalog(seed: int) -> tuple[list[Product], list[float]]:
    """Products with lognormal prices and Zipf-like popularity (cumulative weights)."""
    rng = random.Random(f"segql-catalog-{seed}")
    products = []
    for i in range(N_PRODUCTS):
        category, median = CATEGORIES[rng.randrange(len(CATEGORIES))]
        price = round(max(0.99, rng.lognormvariate(math.log(median), 0.6)), 2)
        pid = f"p{i:05d}"
        members = f'"product_id":"{pid}","category":"{category}","price":{price!r}'
        products.append(Product(pid, category, price, members))
    popularity = accumulate(1.0 / (rank + 1) ** 0.9 for rank in range(N_PRODUCTS))
    return products, list(popularity)


def world(n_users: int, seed: int) -> World:
    products, product_cum = catalog(seed)
    return World(population(n_users, seed), products, product_cum)


# --- timestamps ----------------------------------------------------------------------------------


# Formatting timestamps with datetime.isoformat or strftime costs 2-3 us, a large share of the
# budget at 200k events a second; gluing precomputed pieces together costs a third of that.
_HH_MM = [f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]
_SS = [f"{s:02d}." for s in range(60)]
_MS_UTC = [f"{ms:03d}+00:00" for ms in range(1000)]


class _Clock:
    """Formats epoch seconds as ISO 8601 in UTC with millisecond precision."""

    def __init__(self) -> None:
        self._days: dict[int, str] = {}

    def iso(self, epoch: float) -> str:
        day, ms = divmod(int(epoch * 1000), 86_400_000)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%dT")
            self._days[day] = prefix
        minute, ms = divmod(ms, 60_000)
        sec, ms = divmod(ms, 1000)
        return prefix + _HH_MM[minute] + _SS[sec] + _MS_UTC[ms]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


# --- profiles ------------------------------------------------------------------------------------


def generate_profiles(n_users: int, seed: int, end: datetime | None = None) -> Iterator[dict]:
    """One profile per user: `{"user_id": ..., "traits": {...}}`, in user order."""
    end = _aware(end or datetime.now(UTC))
    pop = population(n_users, seed)
    rng = random.Random(f"segql-profiles-{seed}")
    for i, uid in enumerate(pop.user_ids):
        yield {"user_id": uid, "traits": _traits(rng, pop, i, CITIES[pop.home[i]], end)}


def _traits(
    rng: random.Random,
    pop: Population,
    i: int,
    city: tuple[str, str, float, float, int],
    end: datetime,
) -> dict[str, Any]:
    name, country, lat, lon, _ = city
    traits: dict[str, Any] = {
        "plan": PLANS[pop.plan[i]],
        "city": name,
        "country": country,
        "device": pop.device[i],
        "email_opt_in": rng.random() < 0.7,
    }
    if rng.random() < 0.8:  # not everyone shares a location
        traits["lat"] = round(lat + rng.gauss(0, 0.08), 5)
        traits["lon"] = round(lon + rng.gauss(0, 0.08), 5)
    if pop.plan[i] > 0 and rng.random() < TRIAL_SHARE_OF_PAID:
        # A trial of a paid plan lasts 14 days; some have just ended, some end within two weeks.
        trial_ends = end + timedelta(days=rng.uniform(-3, 14))
        traits["trial_ends_at"] = iso(trial_ends)
        traits["signed_up_at"] = iso(trial_ends - timedelta(days=14))
    else:
        age_days = SIGNUP_HISTORY_DAYS * rng.random() ** 0.7  # more long-standing users than new
        traits["signed_up_at"] = iso(end - timedelta(days=age_days, seconds=rng.random() * 86400))
    return traits


# --- sessions ------------------------------------------------------------------------------------
#
# Sessions write each event's props as JSON text directly rather than as dicts for json.dumps: the
# encoder costs about 3 us an event, more than everything else together, and every value here comes
# from the tables above (no quotes, no backslashes), so an f-string is exact. `generate_events`
# parses the text back into dicts for callers who want them.


def _gap(rng: random.Random) -> float:
    """Seconds between two events of one session: mostly short, sometimes a few minutes."""
    return min(MAX_GAP_SECONDS, 1.0 + rng.expovariate(1 / 20))


def session(rng: random.Random, w: World, index: int, order_no: int) -> Iterator[Step]:
    """One session of user `index`: what they do in one sitting, as (gap, name, props) steps."""
    pop = w.population
    roll = rng.random()
    if pop.loan_shopper[index] and roll < 0.35:
        return _loan_session(rng)
    if roll < 0.12:
        return _email_session(rng, w, index, order_no)
    channel = "app" if pop.device[index] != "web" and roll < 0.6 else "web"
    return _shopping_session(rng, w, index, channel, order_no)


def _shopping_session(
    rng: random.Random, w: World, index: int, channel: str, order_no: int
) -> Iterator[Step]:
    tail = f'"channel":"{channel}"}}'
    if channel == "app":
        # The app's SDK numbers its sessions; web sessions are told apart by their gaps.
        sid = f"{w.population.user_ids[index]}-{order_no}"
        tail = f'"channel":"app","session_id":"{sid}"}}'
        opened = _app_open(rng, w.population.home[index])
        yield 0.0, "app_open", opened[:-1] + f',"session_id":"{sid}"}}'
    yield _gap(rng), "page_view", f'{{"url":"{_landing_url(rng)}",{tail}'
    cart: list[tuple[Product, int]] = []
    views = min(MAX_SESSION_EVENTS // 3, 1 + int(rng.expovariate(0.45)))
    for _ in range(views):
        product = _pick_product(rng, w)
        yield _gap(rng), "page_view", f'{{"url":"/products/{product.id}",{tail}'
        yield _gap(rng), "product_viewed", f"{{{product.json},{tail}"
        if rng.random() < 0.18:
            quantity = _quantity(w.population.user_ids[index], order_no, product, len(cart))
            cart.append((product, quantity))
            line = round(product.price * quantity, 2)
            props = f'"quantity":{quantity},"line_total":{line!r}'
            yield _gap(rng), "add_to_cart", f"{{{product.json},{props},{tail}"
    rate = PLAN_BUY_RATE[w.population.plan[index]]
    if w.buy_boost is not None:
        rate = min(0.95, rate * w.buy_boost[index])
    if cart and rng.random() < rate:
        yield _gap(rng), "page_view", f'{{"url":"/checkout",{tail}'
        yield _gap(rng), "purchase", _purchase(w, index, cart, order_no, tail)


# How far from the city centre the app reports, in degrees (about 5 km); some opens report none
# (location permission refused), so the profile's location is the fallback.
APP_LOCATION_SPREAD = 0.05
APP_LOCATION_SHARE = 0.7


def _app_open(rng: random.Random, home: int) -> str:
    if rng.random() >= APP_LOCATION_SHARE:
        return '{"channel":"app"}'
    _, _, lat, lon, _ = CITIES[home]
    lat = round(lat + rng.gauss(0, APP_LOCATION_SPREAD), 5)
    lon = round(lon + rng.gauss(0, APP_LOCATION_SPREAD), 5)
    return f'{{"channel":"app","lat":{lat!r},"lon":{lon!r}}}'


def _quantity(user: str, order_no: int, product: Product, position: int) -> int:
    """Mostly one, sometimes two or three: from a checksum, not the session's generator, so
    every other draw of the stream stays what it was before quantities varied."""
    roll = zlib.crc32(f"{user}:{order_no}:{product.id}:{position}".encode()) % 10
    return 1 if roll < 7 else 2 if roll < 9 else 3


def _purchase(
    w: World, index: int, cart: list[tuple[Product, int]], order_no: int, tail: str
) -> str:
    amount = round(sum(p.price * q for p, q in cart), 2)
    order_id = f"o-{w.population.user_ids[index]}-{order_no}"
    quantity = sum(q for _, q in cart)
    return (
        f'{{"amount":{amount!r},"category":"{cart[0][0].category}","order_id":"{order_id}",'
        f'"items":{len(cart)},"quantity":{quantity},{tail}'
    )


def _email_session(rng: random.Random, w: World, index: int, order_no: int) -> Iterator[Step]:
    campaign = CAMPAIGNS[rng.randrange(len(CAMPAIGNS))]
    yield 0.0, "email_opened", f'{{"campaign":"{campaign}","channel":"email"}}'
    if rng.random() < 0.3:
        url = "/pricing" if campaign == "welcome" else "/deals"
        props = f'{{"campaign":"{campaign}","url":"{url}","channel":"email"}}'
        yield _gap(rng), "email_clicked", props
        yield from _shopping_session(rng, w, index, "web", order_no)


def _loan_session(rng: random.Random) -> Iterator[Step]:
    yield 0.0, "page_view", '{"url":"/loans","channel":"web"}'
    for _ in range(1 + int(rng.expovariate(0.8))):
        amount = 5000 * (1 + rng.randrange(40))
        term = (12, 24, 36, 60, 120, 360)[rng.randrange(6)]
        props = f'{{"amount":{amount},"term_months":{term},"channel":"web"}}'
        yield _gap(rng), "loan_calculator_viewed", props
    if rng.random() < 0.6:
        props = f'{{"providers":{2 + rng.randrange(5)},"channel":"web"}}'
        yield _gap(rng), "rates_compared", props
    if rng.random() < 0.4:
        site = COMPETITORS[rng.randrange(len(COMPETITORS))]
        yield _gap(rng), "competitor_site_visited", f'{{"site":"{site}","channel":"web"}}'


def _landing_url(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.35:
        return "/"
    if roll < 0.55:
        return "/pricing"
    if roll < 0.8:
        return f"/blog/{BLOG_POSTS[rng.randrange(len(BLOG_POSTS))]}"
    return "/search"


def _pick_product(rng: random.Random, w: World) -> Product:
    return w.products[bisect(w.product_cum, rng.random() * w.product_cum[-1])]


def _pick_user(rng: random.Random, pop: Population) -> int:
    return bisect(pop.activity_cum, rng.random() * pop.activity_cum[-1])


# --- events --------------------------------------------------------------------------------------


def event_rows(
    n_events: int,
    n_users: int,
    seed: int,
    start: datetime,
    end: datetime,
    with_lifecycle: bool = False,
) -> Iterator[Row]:
    """Exactly `n_events` events as (user_id, name, ts, props JSON) rows, the fast path for writers.

    The clock advances in proportion to the events emitted, so the stream covers start..end evenly;
    sessions of different users interleave only loosely, while each user's own events are strictly
    ordered and never later than `end`. `with_lifecycle`: users join, churn and buy at their own
    latent rates (see `Lifecycle`); sessions are only drawn for users active at that moment.
    """
    start_s, end_s = _aware(start).timestamp(), _aware(end).timestamp()
    if end_s <= start_s:
        raise ValueError("end must be after start")
    if n_events < 0:
        raise ValueError("n_events must not be negative")
    w = world(n_users, seed)
    life = lifecycle(n_users, seed, start_s, end_s) if with_lifecycle else None
    if life is not None:
        w = World(w.population, w.products, w.product_cum, life.buy_boost)
    rng = random.Random(f"segql-events-{seed}")
    # Sessions start early enough that a typical one ends before `end`; a long one that would run
    # past it has its last events stamped at `end` exactly.
    span = max(0.0, end_s - start_s - SESSION_MARGIN_SECONDS)
    step = span / max(n_events, 1)
    last_ts = [-math.inf] * n_users
    iso_of = _Clock().iso
    ids = w.population.user_ids
    emitted = 0
    while emitted < n_events:
        index = _pick_user(rng, w.population)
        if life is not None:
            at = start_s + (emitted + 0.5) * step
            for _ in range(MAX_REPICKS):
                if life.active(index, at):
                    break
                index = _pick_user(rng, w.population)
        t = max(start_s + (emitted + rng.random()) * step, last_ts[index] + 1.0)
        uid = ids[index]
        for gap, name, props in session(rng, w, index, emitted):
            t = min(t + gap, end_s)
            yield uid, name, iso_of(t), props
            emitted += 1
            if emitted == n_events:
                break
        last_ts[index] = t


def generate_events(
    n_events: int, n_users: int, seed: int, start: datetime, end: datetime
) -> Iterator[Event]:
    """Exactly `n_events` events as `{"user_id", "name", "ts", "props"}` dicts."""
    loads = json.loads
    for uid, name, ts, props in event_rows(n_events, n_users, seed, start, end):
        yield {"user_id": uid, "name": name, "ts": ts, "props": loads(props)}


def live_events(
    seed: int, users: int | Sequence[str], now_fn: Callable[[], datetime]
) -> Iterator[Event]:
    """An endless stream of events happening now, for a live demo.

    Several sessions run at once and their events interleave, as on a real site; each event is
    stamped with `now_fn()` when it is produced, so the consumer sets the pace.
    """
    ids = [user_id(i) for i in range(users)] if isinstance(users, int) else list(users)
    w = world(len(ids), seed)
    rng = random.Random(f"segql-live-{seed}")
    running: list[tuple[int, Iterator[Step]]] = []
    orders = 0
    while True:
        while len(running) < LIVE_CONCURRENT_SESSIONS:
            index = _pick_user(rng, w.population)
            orders += 1
            running.append((index, session(rng, w, index, orders)))
        slot = rng.randrange(len(running))
        index, steps = running[slot]
        step = next(steps, None)
        if step is None:
            running.pop(slot)
            continue
        props = json.loads(step[2])
        yield {"user_id": ids[index], "name": step[1], "ts": iso(now_fn()), "props": props}


def _aware(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC, so a bare `--end 2025-01-01` means the same everywhere."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- writers -------------------------------------------------------------------------------------

_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def write_events_jsonl(
    out: TextIO, rows: Iterable[Row], on_batch: Callable[[int], None] | None = None
) -> int:
    """Write `event_rows` output as JSON lines (`segql ingest` format); returns the count.

    The rows come from this module, whose ids, names and timestamps need no JSON escaping.
    """
    rows = iter(rows)
    count = 0
    while chunk := list(islice(rows, 10_000)):
        out.write(
            "".join(
                f'{{"user_id":"{u}","name":"{n}","ts":"{t}","props":{p}}}\n' for u, n, t, p in chunk
            )
        )
        count += len(chunk)
        if on_batch:
            on_batch(len(chunk))
    return count


def write_profiles_jsonl(out: TextIO, profiles: Iterable[dict]) -> int:
    count = 0
    for profile in profiles:
        out.write(_json({"user_id": profile["user_id"], "traits": profile["traits"]}) + "\n")
        count += 1
    return count


def write_jsonl(
    directory: Path,
    n_events: int,
    n_users: int,
    seed: int,
    start: datetime,
    end: datetime,
    on_batch: Callable[[int], None] | None = None,
    with_lifecycle: bool = False,
) -> tuple[int, int]:
    """Write `events.jsonl` and `profiles.jsonl` into `directory`; returns (events, profiles)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "profiles.jsonl").open("w", encoding="utf-8") as out:
        n_profiles = write_profiles_jsonl(out, generate_profiles(n_users, seed, end))
    rows = event_rows(n_events, n_users, seed, start, end, with_lifecycle)
    with (directory / "events.jsonl").open("w", encoding="utf-8") as out:
        n = write_events_jsonl(out, rows, on_batch)
    return n, n_profiles


# COPY's text format gives these characters a meaning, so a value that holds them is escaped.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_field(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def copy_line(row: Sequence[str]) -> str:
    return "\t".join(map(_copy_field, row)) + "\n"


def _event_row(event: Event) -> Row:
    props = event.get("props") or {}
    props_text = props if isinstance(props, str) else _json(props)
    return str(event["user_id"]), str(event["name"]), str(event["ts"]), props_text


def copy_events(
    conn: psycopg.Connection,
    events: Iterable[Event],
    batch_size: int = 10_000,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """COPY event dicts into `segql.events`, committing after every batch; returns the count."""
    return copy_event_rows(conn, map(_event_row, events), batch_size, on_batch)


def copy_event_rows(
    conn: psycopg.Connection,
    rows: Iterable[Row],
    batch_size: int = 10_000,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """COPY (user_id, name, ts, props JSON) rows into `segql.events`, one transaction per batch.

    One COPY statement per batch means statement-level triggers see one batch at a time, the way
    a steady stream of loads would arrive.
    """
    rows = iter(rows)
    total = 0
    while batch := list(islice(rows, batch_size)):
        with conn.cursor() as cur, cur.copy(_COPY_EVENTS) as copy:
            copy.write("".join(map(copy_line, batch)))
        conn.commit()
        total += len(batch)
        if on_batch:
            on_batch(len(batch))
    return total


_COPY_EVENTS = "COPY segql.events (user_id, name, ts, props) FROM STDIN"
_PROFILE_STAGE = """
CREATE TEMPORARY TABLE IF NOT EXISTS segql_synth_profiles (user_id text, traits jsonb)
ON COMMIT DELETE ROWS
"""
_PROFILE_UPSERT = """
INSERT INTO segql.profiles (user_id, traits)
SELECT DISTINCT ON (user_id) user_id, traits FROM segql_synth_profiles
ON CONFLICT (user_id) DO UPDATE SET traits = EXCLUDED.traits, updated_at = now()
"""


def copy_profiles(
    conn: psycopg.Connection,
    profiles: Iterable[dict],
    batch_size: int = 10_000,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Upsert profiles into `segql.profiles` (traits replaced), committing per batch."""
    profiles = iter(profiles)
    total = 0
    while batch := list(islice(profiles, batch_size)):
        with conn.cursor() as cur:
            cur.execute(_PROFILE_STAGE)
            with cur.copy("COPY segql_synth_profiles (user_id, traits) FROM STDIN") as copy:
                copy.write("".join(_profile_line(p) for p in batch))
            cur.execute(_PROFILE_UPSERT)
        conn.commit()
        total += len(batch)
        if on_batch:
            on_batch(len(batch))
    return total


def _profile_line(profile: dict) -> str:
    return copy_line((str(profile["user_id"]), _json(profile["traits"])))
