"""Benchmark of the catalogue (issue 4): search latency p50/p99 over 10,000 generated items against a bare
indexed query on the same database, and the size and time of publishing an item (event into the outbox).

    .venv/bin/python -m services.catalog.bench.search_latency [--items 10000] [--database-url URL]

Without `--database-url` it uses a fresh SQLite file; pass a PostgreSQL URL (an empty database) to measure
there. The first `--published` items go through the full editor path (create → submit → publish, with
the event); the rest are written straight into the same tables to keep set-up short."""

from __future__ import annotations

import argparse
import asyncio
import copy
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from services.catalog import service
from services.catalog.demo.items import ITEMS
from services.catalog.demo.load import LOADER, load_demo_data
from services.catalog.domain.model import ItemContent
from services.catalog.domain.search import index_terms, query_terms
from services.catalog.store import repo
from services.catalog.store.tables import Item, ItemVersion, messaging
from shared.db import Database
from shared.migrate import upgrade
from shared.settings import normalise_database_url
from shared.types import utcnow

WORDS = ["餐饮", "饭店", "出生", "户口", "社保", "医保", "养老", "教育", "住房", "建筑", "环保", "消防", "卫生",
         "食品", "药品", "交通", "水利", "林业", "农业", "渔业", "旅游", "文化", "体育", "民政", "救助", "就业"]
QUERIES = ["我想开饭店", "出生证", "怎么办身份证", "社保卡", "低保", "开公司", "消防检查", "公租房", "异地就医", "教师资格"]


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def generated(i: int, rng: random.Random) -> tuple[str, dict[str, Any]]:
    _, base = rng.choice(list(ITEMS.values()))
    content = copy.deepcopy(base)
    a, b = rng.sample(WORDS, 2)
    content["name"] = f"{a}{b}事项{i}"
    content["keywords"] = [a, b, rng.choice(WORDS)]
    code = f"{'11441781MB0000001A'}4{i:012d}"
    return code, content


async def main(n: int, published: int, url: str) -> None:
    await asyncio.to_thread(upgrade, "catalog", url)
    db = Database(url, info={"messaging": messaging, "service": "catalog"})
    rng = random.Random(42)
    async with db.transaction() as s:
        if await repo.is_empty(s):
            await load_demo_data(s)
        existing = (await s.execute(select(func.count()).select_from(Item))).scalar_one()
    if existing >= n:  # a database from an earlier run: measure search only
        published, n = 0, 0
    publish_times: list[float] = []
    sizes: list[int] = []
    for i in range(published):
        code, content = generated(i, rng)
        t0 = time.perf_counter()
        async with db.transaction() as s:
            await service.create_item(s, code=code, content=ItemContent.model_validate(content), principal=LOADER)
            await service.submit(s, code=code, principal=LOADER, if_match=None)
            await service.publish_item(s, code=code, principal=LOADER)
        publish_times.append(time.perf_counter() - t0)
    async with db.transaction() as s:
        rows = (await s.execute(select(messaging.outbox.c.payload)
                                .where(messaging.outbox.c.type == "yimen.catalog.item.published"))).all()
        sizes = [len(r.payload.encode()) for r in rows]
    names = {d: d for d in ("LD-SCJGJ",)}
    batch = 500
    for start in range(published, n, batch):
        async with db.transaction() as s:
            now = utcnow()
            for i in range(start, min(n, start + batch)):
                code, content = generated(i, rng)
                c = ItemContent.model_validate(content)
                s.add(Item(code=code, department=c.department, name=c.name, published_version=1, latest_version=1,
                           created_at=now, updated_at=now))
                s.add(ItemVersion(item_code=code, version=1, status="published", content=content, revision=1,
                                  created_at=now, created_by="bench", updated_at=now, updated_by="bench",
                                  published_at=now, published_by="bench"))
                await s.flush()
                await repo.replace_index(s, code, c, index_terms(c, names.get(c.department)))
    async with db.transaction() as s:
        total = (await s.execute(select(func.count()).select_from(Item))).scalar_one()
        tokens = (await s.execute(text("SELECT count(*) FROM item_token"))).scalar_one()
    ranked: list[float] = []
    bare: list[float] = []
    for _ in range(20):
        for q in QUERIES:
            terms = query_terms(q)
            async with db.transaction() as s:
                t0 = time.perf_counter()
                await repo.search(s, terms, repo.ItemFilters(), offset=0, limit=20)
                ranked.append(time.perf_counter() - t0)
                first = next(iter(terms))
                t0 = time.perf_counter()
                await s.execute(text("SELECT item_code FROM item_token WHERE token = :t LIMIT 20"), {"t": first})
                bare.append(time.perf_counter() - t0)
    await db.dispose()
    ms = 1000
    print(f"database: {url.split('@')[-1]}")
    print(f"items: {total}  index rows (item_token): {tokens}")
    print(f"ranked search  p50 {percentile(ranked, 50) * ms:7.2f} ms   p99 {percentile(ranked, 99) * ms:7.2f} ms  "
          f"(n={len(ranked)})")
    print(f"bare index hit p50 {percentile(bare, 50) * ms:7.2f} ms   p99 {percentile(bare, 99) * ms:7.2f} ms")
    if publish_times:
        print(f"publish (create+submit+publish, one transaction each) p50 {percentile(publish_times, 50) * ms:.1f} ms"
              f"  p99 {percentile(publish_times, 99) * ms:.1f} ms  (n={len(publish_times)})")
    if sizes:
        print(f"item.published event size: mean {statistics.mean(sizes):.0f} B  max {max(sizes)} B  (n={len(sizes)})")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--published", type=int, default=200)
    ap.add_argument("--database-url", default="")
    args = ap.parse_args()
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='catalog-bench-')) / 'catalog.db'}"
    asyncio.run(main(args.items, args.published, normalise_database_url(url)))
