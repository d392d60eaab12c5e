"""Claims: how several campaigns sharing one database divide the work.

Several ``tflat bench`` or ``tflat calibrate`` processes, on one host or several, may measure
the same device into one database. Before measuring a spec a worker claims it in the
``claims`` table; a spec measured (by anyone) or claimed by a live worker is not measured
again. A claim carries an expiry time that the owner's heartbeat pushes forward while it
lives; the claim of a worker that died (``kill -9``, a lost host) lapses and another worker
takes it over, so nothing is lost either.

How a claim is taken without a race:

* SQLite: every writing transaction begins IMMEDIATE (:func:`tflat.store.open_store`), so the
  check and the claim are one short serialised step; the busy timeout makes the others wait.
* PostgreSQL: ``INSERT ... ON CONFLICT DO NOTHING`` makes a claim row; a row already there is
  read ``FOR UPDATE SKIP LOCKED`` (a row another worker is claiming or releasing right now is
  passed over, never waited for). Whether the spec is measured is read after the claim is
  held, so a measurement committed meanwhile is seen (READ COMMITTED: a new snapshot per
  statement). Times come from the server's clock, so hosts with skewed clocks agree.

Part of :class:`tflat.store.db.Store` (:class:`ClaimMethods`); :class:`SpecClaims` is one
worker's side: the heartbeat, and the order in which it claims, skips and waits.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Self, TypeVar

from tflat.errors import StoreError
from tflat.store.base import StoreBase, _now, _utc, rowcount
from tflat.store.records import RuntimeKey

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Delete
    from sqlalchemy.orm import Session

    from tflat.store.db import Store

log = logging.getLogger(__name__)

#: Seconds a claim outlives its owner's last heartbeat (the heartbeat runs every third of it).
DEFAULT_LEASE_S = 60.0
T = TypeVar("T")


class Claim(StrEnum):
    """What an attempt to claim a spec found."""

    CLAIMED = "claimed"  # it is this worker's to measure now
    TAKEN_OVER = "taken_over"  # the same, from a worker whose claim had expired
    DONE = "done"  # measured already (by anyone)
    BUSY = "busy"  # a live worker is measuring it


@dataclass(frozen=True)
class ClaimInfo:
    """A stored claim (times in UTC)."""

    device_id: str
    runtime_id: int
    spec_hash: str
    owner: str
    claimed_at: datetime
    expires_at: datetime


def worker_id() -> str:
    """A name for this worker process, unique across hosts: ``host:pid:random``."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class ClaimMethods(StoreBase):
    """Claims on specs: take one, renew a worker's, release them, list them."""

    def claim_spec(
        self,
        device_id: str,
        runtime: RuntimeKey,
        spec_hash: str,
        owner: str,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        failed_before: datetime | None = None,
    ) -> Claim:
        """Claim ``spec_hash`` for ``owner`` for ``lease_s`` seconds, unless it is measured on
        this device with these settings or a live claim of another worker holds it.

        ``failed_before``: a failed measurement older than this does not count as measured
        (a campaign retrying failures passes its start time); None: any measurement counts.
        """
        from sqlalchemy import delete, select

        from tflat.store import schema as sc

        if lease_s <= 0:
            raise StoreError(f"a claim's lease must be positive, got {lease_s:g} s")
        with self._tx() as s:
            rid = self._runtime_id(s, runtime)
            if self._measured(s, device_id, rid, spec_hash, failed_before):
                # a claim left by a worker that died between storing and releasing goes too
                s.execute(delete(sc.ClaimRow).where(_key(device_id, rid, spec_hash)))
                return Claim.DONE
            now = self._db_now(s)
            expires = now + timedelta(seconds=lease_s)
            values = {
                "device_id": device_id,
                "runtime_id": rid,
                "spec_hash": spec_hash,
                "owner": owner,
                "claimed_at": now,
                "expires_at": expires,
            }
            insert = self._insert(s, sc.ClaimRow.__table__).values(**values)
            result = Claim.CLAIMED
            if rowcount(s.execute(insert.on_conflict_do_nothing())) != 1:
                q = select(sc.ClaimRow).where(_key(device_id, rid, spec_hash))
                if self._engine.dialect.name == "postgresql":
                    q = q.with_for_update(skip_locked=True)
                row = s.scalars(q).first()
                if row is None:  # another worker is claiming or releasing it this instant
                    return Claim.BUSY
                if row.owner != owner and _utc(row.expires_at) > now:
                    return Claim.BUSY
                if row.owner != owner:
                    log.info("%s: taking over %s's expired claim", spec_hash, row.owner)
                    result = Claim.TAKEN_OVER
                row.owner, row.claimed_at, row.expires_at = owner, now, expires
            # read again with the claim held: a measurement committed meanwhile counts
            if self._measured(s, device_id, rid, spec_hash, failed_before):
                s.execute(delete(sc.ClaimRow).where(_key(device_id, rid, spec_hash)))
                return Claim.DONE
            return result

    def renew_claims(self, owner: str, lease_s: float = DEFAULT_LEASE_S) -> int:
        """Push every claim of ``owner`` ``lease_s`` seconds past now; how many it holds."""
        from sqlalchemy import update

        from tflat.store import schema as sc

        with self._tx() as s:
            expires = self._db_now(s) + timedelta(seconds=lease_s)
            stmt = update(sc.ClaimRow).where(sc.ClaimRow.owner == owner)
            return rowcount(s.execute(stmt.values(expires_at=expires)))

    def release_claims(
        self,
        owner: str,
        device_id: str,
        runtime: RuntimeKey,
        spec_hashes: Iterable[str],
    ) -> int:
        """Delete claims of ``owner``; returns how many there were."""
        hashes = list(spec_hashes)
        if not hashes:
            return 0
        with self._tx() as s:
            rid = self._runtime_id(s, runtime)
            done = 0
            for start in range(0, len(hashes), 500):
                stmt = _delete_claims(owner, device_id, rid, hashes[start : start + 500])
                done += rowcount(s.execute(stmt))
            return done

    def claims(self, device_id: str | None = None) -> list[ClaimInfo]:
        """The claims stored now (live or lapsed), oldest first."""
        from sqlalchemy import select

        from tflat.store import schema as sc

        q = select(sc.ClaimRow).order_by(sc.ClaimRow.id)
        if device_id is not None:
            q = q.where(sc.ClaimRow.device_id == device_id)
        with self._tx(read_only=True) as s:
            return [
                ClaimInfo(
                    r.device_id,
                    r.runtime_id,
                    r.spec_hash,
                    r.owner,
                    _utc(r.claimed_at),
                    _utc(r.expires_at),
                )
                for r in s.scalars(q).all()
            ]

    # -- helpers -----------------------------------------------------------------------------

    def _db_now(self, s: Session) -> datetime:
        """The database's clock where it has one shared by every host (PostgreSQL), else this
        host's (a SQLite file is shared by processes of one host)."""
        if self._engine.dialect.name == "postgresql":
            from sqlalchemy import func, select

            value = s.scalar(select(func.clock_timestamp()))
            if isinstance(value, datetime):
                return _utc(value)
        return _now()

    def _measured(
        self, s: Session, device_id: str, rid: int, spec_hash: str, failed_before: datetime | None
    ) -> bool:
        from sqlalchemy import select

        from tflat.store import schema as sc

        m = sc.MeasurementRow
        row = s.execute(
            select(m.status, m.created_at)
            .join(sc.OpSpecRow, sc.OpSpecRow.id == m.spec_id)
            .where(sc.OpSpecRow.spec_hash == spec_hash)
            .where(m.device_id == device_id)
            .where(m.runtime_id == rid)
        ).first()
        if row is None:
            return False
        status, created_at = row
        return failed_before is None or status == "ok" or _utc(created_at) >= failed_before


def _key(device_id: str, rid: int, spec_hash: str) -> ColumnElement[bool]:
    from tflat.store import schema as sc

    c = sc.ClaimRow
    return (c.device_id == device_id) & (c.runtime_id == rid) & (c.spec_hash == spec_hash)


def _delete_claims(owner: str, device_id: str, rid: int, hashes: list[str]) -> Delete:
    from sqlalchemy import delete

    from tflat.store import schema as sc

    c = sc.ClaimRow
    return (
        delete(c)
        .where(c.owner == owner)
        .where(c.device_id == device_id)
        .where(c.runtime_id == rid)
        .where(c.spec_hash.in_(hashes))
    )


class SpecClaims:
    """One worker's claims on the specs of one device and runtime settings.

    Use as a context manager: on exit the heartbeat stops and every claim still held is
    released, so a campaign stopped by an error hands its spec back at once. ``take`` yields
    the items this worker should measure, one claim at a time.
    """

    def __init__(
        self,
        store: Store,
        device_id: str,
        runtime: RuntimeKey,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        failed_before: datetime | None = None,
        owner: str | None = None,
    ) -> None:
        if lease_s <= 0:
            raise StoreError(f"a claim's lease must be positive, got {lease_s:g} s")
        self.store = store
        self.device_id = device_id
        self.runtime = runtime
        self.lease_s = lease_s
        self.failed_before = failed_before
        self.owner = owner or worker_id()
        #: specs measured by another worker while this one ran
        self.by_others = 0
        #: claims taken over from a worker whose claim had expired
        self.taken_over = 0
        self._held: set[str] = set()
        self._stop = threading.Event()
        self._heart: threading.Thread | None = None

    def try_claim(self, spec_hash: str) -> Claim:
        """Claim one spec; counts specs others measured and claims taken over."""
        state = self.store.claim_spec(
            self.device_id,
            self.runtime,
            spec_hash,
            self.owner,
            lease_s=self.lease_s,
            failed_before=self.failed_before,
        )
        if state in (Claim.CLAIMED, Claim.TAKEN_OVER):
            self._held.add(spec_hash)
            self._beat()
            if state is Claim.TAKEN_OVER:
                self.taken_over += 1
        return state

    def release(self, spec_hash: str) -> None:
        if spec_hash in self._held:
            self._held.discard(spec_hash)
            self.store.release_claims(self.owner, self.device_id, self.runtime, [spec_hash])

    def take(
        self,
        items: Iterable[T],
        key: Callable[[T], str],
        *,
        on_done: Callable[[T], None] | None = None,
        claim: Callable[[T], bool] | None = None,
        wait: bool = True,
    ) -> Iterator[T]:
        """Yield, in order and read lazily, the items this worker holds the claim of; each
        claim is released when the caller asks for the next item (the caller stores its
        measurement first). Items ``claim(item)`` says need none pass through unclaimed.

        Items measured by another worker go to ``on_done``. Items a live worker holds are tried
        again after the first pass, every few seconds, until they are measured or their claim
        lapses and this worker takes it over (so when the iteration ends every item is
        measured by someone), unless ``wait`` is False: then they are left to their holders.
        """
        busy: list[T] = []
        for item in items:
            if claim is not None and not claim(item):
                yield item
                continue
            yield from self._take_one(item, key, on_done, busy)
        while busy and wait:
            log.info("%s: %d specs held by other workers; waiting", self.device_id, len(busy))
            time.sleep(min(2.0, self.lease_s / 4))
            waiting, busy = busy, []
            for item in waiting:
                yield from self._take_one(item, key, on_done, busy)
        if busy:
            log.info("%s: %d specs left to the workers holding them", self.device_id, len(busy))

    def _take_one(
        self,
        item: T,
        key: Callable[[T], str],
        on_done: Callable[[T], None] | None,
        busy: list[T],
    ) -> Iterator[T]:
        k = key(item)
        state = self.try_claim(k)
        if state is Claim.BUSY:
            busy.append(item)
        elif state is Claim.DONE:
            self.by_others += 1
            if on_done is not None:
                on_done(item)
        else:
            yield item
            self.release(k)

    def close(self) -> None:
        """Stop the heartbeat and release every claim still held."""
        self._stop.set()
        if self._heart is not None:
            self._heart.join(timeout=30)
            self._heart = None
        held, self._held = sorted(self._held), set()
        if held:
            try:
                self.store.release_claims(self.owner, self.device_id, self.runtime, held)
            except StoreError as exc:  # they lapse on their own after the lease
                log.warning("could not release %d claims: %s", len(held), exc)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _beat(self) -> None:
        if self._heart is not None:
            return
        self._stop.clear()
        self._heart = threading.Thread(target=self._heartbeat, name="tflat-claims", daemon=True)
        self._heart.start()

    def _heartbeat(self) -> None:
        # Store methods open their own session per call, so this thread may share the store.
        while not self._stop.wait(self.lease_s / 3):
            try:
                self.store.renew_claims(self.owner, self.lease_s)
            except StoreError as exc:
                log.warning("claims heartbeat failed (claims lapse in %g s): %s", self.lease_s, exc)
