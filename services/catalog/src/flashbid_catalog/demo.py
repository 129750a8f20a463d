"""Demo data for `just seed`: items and events of all three kinds at different stages."""

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from flashbid_catalog import domain, store
from flashbid_catalog.schemas import EventInput, ItemInput
from flashbid_shared import inputs

IMAGES = "https://images.flashbid.dev/demo"
ITEMS = [
    ("Aero Runner 2 sneakers", "Lightweight knit running shoe, limited colourway.", "shoes"),
    ("Trail Apex GTX boots", "Waterproof hiking boots with a recycled sole.", "shoes"),
    ("Barista Pro espresso machine", "Dual boiler, PID control, 58 mm portafilter.", "kitchen"),
    ("Nordic cast-iron casserole", "5.5 l enamelled Dutch oven, lifetime warranty.", "kitchen"),
    ("Seamaster 1962 chronograph", "Hand-wound, serviced in 2025, original dial.", "watches"),
    ("Calatrava ref. 3919", "18k white gold, Hobnail bezel, with papers.", "watches"),
    ("Speedmaster Pre-Moon", "Calibre 321, tropical dial, box and papers.", "watches"),
    ("Nova X game console", "1 TB, launch edition, one controller.", "electronics"),
    ("Lumen 27 4K monitor", "IPS, 144 Hz, USB-C with 90 W charging.", "electronics"),
    ("Studio ANC headphones", "Over-ear, 40 h battery, multipoint Bluetooth.", "electronics"),
    ("First-edition vinyl box set", "Six LPs, numbered, remastered from the tapes.", "music"),
    ("Signed concert poster", "Screen print, 50 x 70 cm, signed by the band.", "art"),
]


def _events(now: datetime, item: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """(status to leave it in, body) per event; times are relative to now."""

    def at(minutes: float) -> str:
        return (now + timedelta(minutes=minutes)).isoformat()

    return [
        ("live", {
            "kind": "flash_sale", "title": "Midnight sneaker drop",
            "description": "Two limited colourways at launch price, two pairs per customer.",
            "starts_at": at(-5), "ends_at": at(120), "reservation_timeout_seconds": 600,
            "offers": [
                {"item_id": item["Aero Runner 2 sneakers"], "price": "129.00", "stock": 500,
                 "per_user_limit": 2},
                {"item_id": item["Trail Apex GTX boots"], "price": "189.00", "stock": 200,
                 "per_user_limit": 1},
            ],
        }),
        ("live", {
            "kind": "auction", "title": "Vintage watches evening",
            "description": "Three serviced vintage watches; bids in the last two minutes "
            "extend the lot by two minutes.",
            "starts_at": at(-10), "ends_at": at(60),
            "soft_close_seconds": 120, "extension_seconds": 120,
            "offers": [
                {"item_id": item["Seamaster 1962 chronograph"], "starting_price": "1800.00",
                 "increment": "ladder", "reserve_price": "2500.00"},
                {"item_id": item["Calatrava ref. 3919"], "starting_price": "9000.00",
                 "increment": "250.00", "buy_now_price": "16000.00"},
                {"item_id": item["Speedmaster Pre-Moon"], "starting_price": "4000.00",
                 "increment": "ladder"},
            ],
        }),
        ("live", {
            "kind": "ranked", "title": "Nova X launch allocation",
            "description": "300 consoles go to the 300 best bids; loyal customers get a boost.",
            "starts_at": at(-3), "ends_at": at(45),
            "scoring": {"formula": "weight", "alpha": 1.0, "beta": 50.0, "gamma": 1.0},
            "offers": [{"item_id": item["Nova X game console"], "upset_price": "499.00",
                        "inventory": 300}],
        }),
        ("scheduled", {
            "kind": "flash_sale", "title": "Espresso machine flash sale",
            "description": "Forty machines at 40% off. Be quick.",
            "starts_at": at(5), "ends_at": at(65),
            "offers": [{"item_id": item["Barista Pro espresso machine"], "price": "899.00",
                        "stock": 40, "per_user_limit": 1}],
        }),
        ("scheduled", {
            "kind": "auction", "title": "Music memorabilia",
            "description": "A numbered box set and a signed poster.",
            "starts_at": at(15), "ends_at": at(75),
            "offers": [
                {"item_id": item["First-edition vinyl box set"], "starting_price": "150.00",
                 "increment": "10.00", "reserve_price": "300.00"},
                {"item_id": item["Signed concert poster"], "starting_price": "80.00"},
            ],
        }),
        ("scheduled", {
            "kind": "ranked", "title": "Early-bird monitor allocation",
            "description": "50 monitors; early bids score higher.",
            "starts_at": at(30), "ends_at": at(90),
            "scoring": {"formula": "time", "alpha": 1.0, "beta": 100.0, "gamma": 5.0},
            "offers": [{"item_id": item["Lumen 27 4K monitor"], "upset_price": "329.00",
                        "inventory": 50}],
        }),
        ("ended", {
            "kind": "flash_sale", "title": "Cookware weekend",
            "description": "The casserole everyone asked for.",
            "starts_at": at(-2 * 24 * 60), "ends_at": at(-24 * 60),
            "offers": [{"item_id": item["Nordic cast-iron casserole"], "price": "149.50",
                        "stock": 120, "per_user_limit": 2}],
        }),
    ]  # fmt: skip


async def seed(connection: AsyncConnection) -> None:
    if await connection.scalar(sa.select(sa.func.count()).select_from(store.events)):
        print("  catalog already has events; leaving them as they are", flush=True)
        return
    item: dict[str, str] = {}
    for n, (name, description, category) in enumerate(ITEMS, 1):
        image = f"{IMAGES}/{category}-{n}.jpg"
        data = ItemInput(name=name, description=description, category=category, image_url=image)
        item[name] = str((await store.create_item(connection, data)).id)
        print(f"  demo item {n}/{len(ITEMS)}: {name}", flush=True)
    now = await store.now(connection)
    planned = _events(now, item)
    for n, (status, body) in enumerate(planned, 1):
        data = inputs.convert(body, EventInput)
        states = await store.item_states(connection, {o.item_id for o in data.offers})
        domain.check_event(data, now=now, items=states, creating=False)
        event_id = await store.create_event(connection, data)
        # A past start leaves it `scheduled`: the scheduler opens it at once, as it would have.
        first = "scheduled" if status == "live" else status
        await connection.execute(
            store.events.update().where(store.events.c.id == event_id).values(status=first)
        )
        print(f"  demo event {n}/{len(planned)}: {data.title} ({status})", flush=True)
