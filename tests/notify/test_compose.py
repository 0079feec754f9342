"""Rendering outside the write lock: a stale plan is never stored (both engines)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from notify_helpers import Seed, make_app, outbox_messages
from sqlalchemy import func, select

from notifier.compose import Composer
from notifier.service import _compose_chunk, notify
from notifier.suppress import Suppression
from store.models import Contact, Notice, NoticeItem, PortalToken
from tocsin.app import App


def _composer(app: App) -> Composer:
    return Composer(app.config, app.clock.now(), Suppression.from_config(app.config))


def _counts(app: App) -> tuple[int, int, int]:
    with app.db.session() as s:
        return (
            s.scalar(select(func.count()).select_from(Notice)),
            s.scalar(select(func.count()).select_from(NoticeItem)),
            s.scalar(select(func.count()).select_from(PortalToken)),
        )


def _planned(app: App, contact: int) -> tuple[Composer, Any, list[Any]]:
    """A composer, its plan for ``contact`` and the messages rendered from it (no lock)."""
    composer = _composer(app)
    with app.db.session() as s:
        plan = composer.plan(s, [contact], set())
    assert composer.renderer is not None
    return composer, plan, composer.renderer.render(plan.job)


def test_a_plan_whose_items_were_queued_meanwhile_is_dropped(app: App, seed: Seed) -> None:
    contact = seed.contact("abuse@net1.example")
    seed.incident("a.example.com", ladder=[(contact, 1)])
    seed.incident("b.example.com", ladder=[(contact, 1)])
    ours, plan, prepared = _planned(app, contact)
    theirs = _composer(app)
    assert len(prepared) == 1 and len(prepared[0].items) == 2

    # Another run queues the same recipient between our read and our write.
    with app.db.claim() as s:
        theirs.compose(s, [contact], set())
    assert _counts(app) == (1, 2, 1)

    _compose_chunk(app, ours, set(), [contact], plan=plan, prepared=prepared)
    assert _counts(app) == (1, 2, 1)  # nothing of the stale plan was stored
    assert ours.stats.notices == 0


def test_a_plan_for_a_contact_suppressed_meanwhile_is_dropped(app: App, seed: Seed) -> None:
    contact = seed.contact("abuse@net2.example")
    seed.incident("c.example.com", ladder=[(contact, 1)])
    composer, plan, prepared = _planned(app, contact)
    with app.db.session() as s:
        s.get(Contact, contact).suppressed = True

    _compose_chunk(app, composer, set(), [contact], plan=plan, prepared=prepared)
    assert _counts(app) == (0, 0, 0)


def test_an_unchanged_plan_is_stored_as_rendered(app: App, seed: Seed) -> None:
    contact = seed.contact("abuse@net3.example")
    seed.incident("d.example.com", ladder=[(contact, 1)])
    composer, plan, prepared = _planned(app, contact)

    _compose_chunk(app, composer, set(), [contact], plan=plan, prepared=prepared)
    with app.db.session() as s:
        notice = s.scalars(select(Notice)).one()
        assert notice.message == prepared[0].message  # the bytes rendered outside the lock
        assert notice.state == "queued" and notice.ticket == prepared[0].ticket
    assert _counts(app) == (1, 1, 1)


def test_render_workers_write_each_recipient_once(db_url: str, seed: Seed, tmp_path: Path) -> None:
    # Many chunks per worker: the run plans here, renders in two forked workers.
    app = make_app(db_url, tmp_path, notify={"compose_batch": 2, "workers": 2})
    try:
        for r in range(12):
            contact = seed.contact(f"abuse@net{r}.example")
            for n in range(3):
                seed.incident(f"s{n}.site{r}.example.com", ladder=[(contact, 1)])
        report = notify(app)
        assert report.compose.notices == 12 and report.compose.items == 36
        assert report.send.sent == 12
        messages = outbox_messages(tmp_path / "outbox")
        assert sorted(str(m["To"]) for m in messages) == sorted(
            f"abuse@net{r}.example" for r in range(12)
        )
        assert _counts(app) == (12, 36, 12)
        assert notify(app).send.sent == 0
    finally:
        app.db.dispose()
