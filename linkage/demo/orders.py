"""Deterministic demo orders and a product catalogue for the demo customers.

Each person of the demo data places a few orders (Poisson, mean 3). An online order is
made through one of the person's webshop accounts and served by an online partner or
the web team; an in-store order is paid with one of the person's loyalty cards (or, in
a store without the card, against the CRM contact) in one of the stores, served by a
member of that store's staff. So orders reference *source records*, as real order
systems do, and only linkage can tell that two orders were the same customer's.

Files written beside the other landing files:

- ``landing/orders.csv``: order_id, buyer_source, buyer_record_id, sku, quantity,
  channel (``online`` or ``in_store``), store_id, staff_id, amount, ordered_at.
- ``landing/products.csv``: sku, name, category, unit_price.

Examples:
    ```py
    counts = write_orders(truth, Path("data/demo"), seed=42)
    counts["orders"]
    ```
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["ORDERS_FILE", "PRODUCTS_FILE", "build_products", "write_orders"]

logger = logging.getLogger(__name__)

ORDERS_FILE = "landing/orders.csv"
PRODUCTS_FILE = "landing/products.csv"
ORDER_DATES = (np.datetime64("2023-01-01"), np.datetime64("2025-01-01"))
MEAN_ORDERS = 3.0
ONLINE_SHARE = 0.45
STORES = ("SE-STO-01", "SE-GOT-02", "SE-MAL-03", "NO-OSL-01", "DE-BER-01", "PL-WAW-01", "GB-LON-01")
STAFF_PER_STORE = 6
ONLINE_SERVERS = ("web-team", "partner-klarna", "partner-dhl", "partner-postnord")
CATEGORIES: dict[str, tuple[tuple[str, float], ...]] = {
    "coffee": (("Espresso beans 1 kg", 24.0), ("Filter coffee 500 g", 9.5), ("Decaf 250 g", 7.0)),
    "tea": (("Green tea 100 g", 6.5), ("Earl Grey 250 g", 8.0), ("Rooibos 200 g", 5.5)),
    "equipment": (("Grinder", 89.0), ("Moka pot", 35.0), ("French press", 29.0), ("Kettle", 49.0)),
    "cups": (("Travel mug", 19.0), ("Espresso cups x2", 14.0), ("Latte glass x4", 22.0)),
    "gifts": (("Gift card 25", 25.0), ("Gift card 50", 50.0), ("Tasting box", 39.0)),
}
"""Product families and base prices; each gets a few size or colour variants."""
VARIANTS = ("", " (black)", " (white)", " (large)")


def build_products() -> pd.DataFrame:
    """The product catalogue: one row per SKU, deterministic."""
    rows = []
    for category, products in CATEGORIES.items():
        for number, (name, price) in enumerate(products, start=1):
            for variant_number, variant in enumerate(VARIANTS):
                if category in ("coffee", "tea", "gifts") and variant:
                    continue
                sku = f"{category[:3].upper()}-{number:02d}{variant_number}"
                rows.append(
                    {
                        "sku": sku,
                        "name": name + variant,
                        "category": category,
                        "unit_price": f"{price * (1 + 0.1 * variant_number):.2f}",
                    }
                )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class _Pool:
    """Each person's records in one source, as offsets into a flat array."""

    records: np.ndarray
    start: np.ndarray
    count: np.ndarray

    def pick(self, persons: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        offsets = (rng.random(len(persons)) * self.count[persons]).astype(np.int64)
        return self.records[self.start[persons] + offsets]


def _pool(truth: pd.DataFrame, source: str, persons: np.ndarray) -> _Pool:
    rows = truth[(truth["source"] == source) & truth["record_id"].notna()]
    rows = rows[rows["record_id"].astype(str).str.strip() != ""]
    codes = pd.Categorical(rows["person_id"], categories=persons).codes.astype(np.int64)
    order = np.argsort(codes, kind="stable")
    codes, records = codes[order], rows["record_id"].to_numpy(dtype=object)[order]
    count = np.bincount(codes, minlength=len(persons))
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    return _Pool(records, start, count)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(frame.columns)
        writer.writerows(zip(*(frame[c].tolist() for c in frame.columns), strict=True))


def write_orders(truth: pd.DataFrame, out_dir: Path, seed: int) -> dict[str, int]:
    """Write ``orders.csv`` and ``products.csv`` for the persons in ``truth``.

    Args:
        truth: Ground truth with columns ``source``, ``record_id``, ``person_id``.
        out_dir: The demo data folder (files go to its ``landing/``).
        seed: Seed; the same truth and seed give byte-identical files.

    Returns:
        Rows written: ``orders`` and ``products``.
    """
    rng = np.random.default_rng([seed, 7_001])
    products = build_products()
    skus = products["sku"].to_numpy()
    prices = products["unit_price"].astype(float).to_numpy()
    popularity = rng.zipf(1.6, size=len(skus)).astype(float)
    popularity /= popularity.sum()
    persons = np.array(sorted(truth["person_id"].dropna().unique()), dtype=object)
    webshop = _pool(truth, "webshop_accounts", persons)
    cards = _pool(truth, "pos_loyalty", persons)
    crm = _pool(truth, "crm_contacts", persons)

    buyer = np.repeat(np.arange(len(persons)), rng.poisson(MEAN_ORDERS, size=len(persons)))
    online = (rng.random(len(buyer)) < ONLINE_SHARE) & (webshop.count[buyer] > 0)
    by_card = ~online & (cards.count[buyer] > 0)
    by_crm = ~online & ~by_card & (crm.count[buyer] > 0)
    keep = online | by_card | by_crm
    buyer, online, by_card, by_crm = buyer[keep], online[keep], by_card[keep], by_crm[keep]
    size = len(buyer)

    record = np.empty(size, dtype=object)
    source = np.empty(size, dtype=object)
    for mask, pool, name in (
        (online, webshop, "webshop_accounts"),
        (by_card, cards, "pos_loyalty"),
        (by_crm, crm, "crm_contacts"),
    ):
        record[mask] = pool.pick(buyer[mask], rng)
        source[mask] = name
    home = buyer % len(STORES)
    store = np.where(rng.random(size) < 0.8, home, rng.integers(len(STORES), size=size))
    staff_number = rng.integers(1, STAFF_PER_STORE + 1, size=size)
    server = rng.integers(len(ONLINE_SERVERS), size=size)
    item = rng.choice(len(skus), size=size, p=popularity)
    quantity = rng.integers(1, 4, size=size)
    span = int((ORDER_DATES[1] - ORDER_DATES[0]).astype(int))
    day = rng.integers(span, size=size)
    order = np.lexsort((item, buyer, day))
    dates = (ORDER_DATES[0] + np.arange(span).astype("timedelta64[D]")).astype(str)
    orders = pd.DataFrame(
        {
            "order_id": [f"ORD-{n:08d}" for n in range(1, size + 1)],
            "buyer_source": source[order],
            "buyer_record_id": record[order],
            "sku": skus[item[order]],
            "quantity": quantity[order],
            "channel": np.where(online[order], "online", "in_store"),
            "store_id": [
                "" if is_online else STORES[s]
                for is_online, s in zip(online[order], store[order], strict=True)
            ],
            "staff_id": [
                ONLINE_SERVERS[v] if is_online else f"{STORES[s]}-staff-{n:02d}"
                for is_online, s, n, v in zip(
                    online[order], store[order], staff_number[order], server[order], strict=True
                )
            ],
            "amount": [f"{x:.2f}" for x in prices[item[order]] * quantity[order]],
            "ordered_at": dates[day[order]],
        }
    )
    (Path(out_dir) / "landing").mkdir(parents=True, exist_ok=True)
    _write_csv(orders, Path(out_dir) / ORDERS_FILE)
    _write_csv(products, Path(out_dir) / PRODUCTS_FILE)
    logger.info("wrote %d orders of %d products", len(orders), len(products))
    return {"orders": len(orders), "products": len(products)}
