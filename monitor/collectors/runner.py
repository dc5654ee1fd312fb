"""A collector process's work: poll its shard of devices, hear pushed heartbeats, judge health.

    inventory ──refresh──► targets ──SlotScheduler──► HttpPoller / SnmpPoller ─┐
    MQTT broker ──────────► MqttListener ───────────────────────────────────────┤
    SNMP traps ──► poll that device now ────────────────────────────────────────┤
                                                         observations (queue) ◄┘
                                                                 │ every flush_s, in a thread
                                                                 ▼
                                                HealthStore.apply ─► device_health + state_changes

The collector reports facts; health decides. It watches itself: when every device of every
protocol fails at once, the fault is most likely the collector's own network, so it says so (a log
line and `blind`, which the metrics export) and holds the failures back instead of declaring the
whole fleet down. Likewise for its own stalls (`liveness.py`): while its event loop is held, poll
slots run late or the database cannot be written, failed polls of that time are dropped (counted)
and heartbeat silence is not counted; the stall is then taken out of every push device's silence
deadline. And the push ingest is judged fleet-wide from the database (`IngestWatch`): when no push
device of a protocol gets through at all, it is the ingest's fault (the web process or the broker),
so that silence is not counted either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.collectors.errors import COLLECTOR_FAILURES, DatabaseAway, FailureKind
from monitor.collectors.fleet_targets import freeze_what_lives_on, load_targets, same_targets_kept
from monitor.collectors.http import HttpPoller
from monitor.collectors.liveness import BlindnessGuard, IngestWatch, Liveness, merged
from monitor.collectors.mapping import failed_observation
from monitor.collectors.mqtt import MqttListener
from monitor.collectors.pool import PoolMember
from monitor.collectors.profiles import ProfileRegistry
from monitor.collectors.scheduler import SlotScheduler
from monitor.collectors.snmp import SnmpPoller
from monitor.collectors.stats import OutcomeCounters
from monitor.collectors.target import PollTarget
from monitor.collectors.traps import TrapReceiver, fault_from_trap
from monitor.config import Settings
from monitor.db import utcnow
from monitor.failures import FailureReport
from monitor.health.leases import ShardFence, shard_of
from monitor.health.machine import Observation
from monitor.health.store import PUSH_PROTOCOLS, DeviceTransition, HealthStore, policy_from_settings
from monitor.inventory.choices import Protocol

log = logging.getLogger(__name__)
MAX_HELD = 200_000  # observations kept while the database is away (~2 min of 100,000 devices; ~60 MB)


def in_shard(device_id: int, shard: tuple[int, int]) -> bool:
    index, count = shard
    return device_id % count == index


class Collector:
    """Polls one shard of the fleet on schedule and feeds what it hears to the health store."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        registry: ProfileRegistry,
        shard: tuple[int, int] = (0, 1),
        pool: PoolMember | None = None,
        mqtt_url: str | None = None,
        trap_port: int | None = None,
        counters: OutcomeCounters | None = None,
        store: HealthStore | None = None,
        clock: Callable[[], datetime] = utcnow,
        refresh_s: float = 60.0,
        tick_s: float = 10.0,
        flush_s: float = 0.5,
    ) -> None:
        if not 0 <= shard[0] < shard[1]:
            raise ValueError(f"shard {shard[0]}/{shard[1]}: the index must be in 0..count-1")
        self.settings = settings
        self.engine = engine
        self.registry = registry
        self.shard = shard
        self.pool = pool
        self.counters = counters if counters is not None else OutcomeCounters()
        self.store = store or HealthStore(engine, policy_from_settings(settings))
        self.clock = clock
        self.refresh_s, self.tick_s, self.flush_s = refresh_s, tick_s, flush_s
        self.http = HttpPoller(
            counters=self.counters,
            limit=settings.poll_concurrency,
            timeout_s=settings.http_timeout_s,
            max_body_bytes=settings.http_max_body_bytes,
        )
        self.snmp = SnmpPoller(counters=self.counters, timeout_s=settings.snmp_timeout_s, retries=settings.snmp_retries)
        self.liveness = Liveness(
            clock,
            stall_s=settings.collector_stall_s,
            write_stall_s=settings.collector_write_stall_s,
            poll_timeout_s=max(settings.http_timeout_s, settings.snmp_timeout_s * (settings.snmp_retries + 1)),
        )
        self.scheduler: SlotScheduler[PollTarget] = SlotScheduler(
            self._poll,
            slots_per_interval=settings.poll_slots,
            concurrency=settings.poll_concurrency,
            on_late=self.liveness.late,
        )
        self.guard = BlindnessGuard()
        self.ingest = {
            protocol: IngestWatch(
                protocol, minimum_devices=settings.collector_ingest_min_devices, grace_s=settings.heartbeat_grace_s
            )
            for protocol in sorted(PUSH_PROTOCOLS)
        }
        self.mqtt_url = mqtt_url
        self.mqtt: MqttListener | None = None
        self._mqtt_task: asyncio.Task[Any] | None = None
        self.traps: TrapReceiver | None = None
        self.trap_port = trap_port
        self._topics: dict[str, PollTarget] = {}
        self._targets: list[PollTarget] = []  # the inventory's, as last read (the pool's shards filter them)
        self._by_code: dict[str, PollTarget] = {}
        self._queue: asyncio.Queue[Observation] = asyncio.Queue()
        self._tasks: list[asyncio.Task[Any]] = []
        self._skipped_profiles: set[str] = set()
        self.observations_applied = 0
        self.observations_dropped = 0
        self.transitions = 0
        self._held: list[Observation] = []  # what the database could not take yet
        # A save running in its thread, with its batch: a cancelled flush leaves it there for stop() to wait on.
        self._saving: tuple[asyncio.Future[list[DeviceTransition]], list[Observation]] | None = None

    # --- targets ------------------------------------------------------------------------------

    def _polls(self, device_id: int) -> bool:
        return self.pool.polls(device_id) if self.pool is not None else in_shard(device_id, self.shard)

    async def refresh(self) -> None:
        """Read the inventory again: new, changed and removed devices take effect at once."""
        self._targets = same_targets_kept(self._targets, await asyncio.to_thread(load_targets, self.engine))
        await self._retarget()

    async def _retarget(self) -> None:
        """Poll the devices of the shards held now (after a refresh, or a lease round that changed them)."""
        targets = self._targets
        polled, topics, pushed = [], {}, []
        for target in targets:
            if target.profile not in self.registry:
                if target.profile not in self._skipped_profiles:
                    log.error(
                        "devices with unknown profile %r are not collected (e.g. %s)", target.profile, target.code
                    )
                    self._skipped_profiles.add(target.profile)
                continue
            if target.protocol in (Protocol.HTTP, Protocol.SNMP) and self._polls(target.device_id):
                polled.append(target)
            elif target.protocol == Protocol.MQTT:
                topics[target.address] = target
            if target.protocol in PUSH_PROTOCOLS:
                pushed.append(target.device_id)
        self._topics = topics
        self._by_code = {t.code: t for t in polled}
        self.scheduler.set_targets(polled)
        if self._owns_push_devices and pushed:
            await asyncio.to_thread(self.store.start_watching, pushed, self.clock())
        if self.pool is not None:
            held = len(self.pool.leases.held.epochs)
            log.info("collecting %d polled devices of %d shards held, %d MQTT topics", len(polled), held, len(topics))
        else:
            log.info(
                "collecting %d polled devices, %d MQTT topics (shard %d/%d)", len(polled), len(topics), *self.shard
            )

    @property
    def hears_push(self) -> bool:
        """Whether this collector hears MQTT and counts push devices' silence (shard 0, or its holder)."""
        return self._owns_push_devices

    @property
    def _owns_push_devices(self) -> bool:
        # Pushed heartbeats are not sharded: the first shard (in the pool: shard 0's holder) listens to the
        # broker and counts silences.
        if self.pool is not None:
            return self.pool.has_push_role
        return self.shard[0] == 0

    def _fence(self) -> ShardFence | None:
        return self.pool.fence() if self.pool is not None else None

    async def _lease_round(self) -> None:
        """One round of the pool's leases; on a change, poll the shards held now and take up or drop the
        push role (the MQTT listener and silence counting go with shard 0)."""
        assert self.pool is not None
        before = self.pool.leases.held.shards
        try:
            changed = await asyncio.to_thread(self.pool.round)
        except Exception:
            if self.pool.leases.held.shards != before:  # every shard dropped: stop polling them, once per outage
                await self._retarget()
                await self._push_role()
            raise
        if changed:
            await self._retarget()
            await self._push_role()
            self._catch_up(self.pool.last_claimed)

    def _catch_up(self, claimed: frozenset[int]) -> None:
        """Poll at once the devices of shards just claimed whose slot came round while nobody held them."""
        if not claimed or self.pool is None:
            return
        count = self.pool.leases.shard_count
        taken = [t for t in self._by_code.values() if shard_of(t.device_id, count) in claimed]  # the polled ones
        late = self.scheduler.catch_up(taken, within_s=2.5 * self.pool.leases.lease_s)
        if late:
            log.info("polling now %d devices of the shards just taken over, missed while nobody held them", late)

    async def _push_role(self) -> None:
        if self._owns_push_devices and self.mqtt is None and self.mqtt_url:
            await asyncio.to_thread(self._prime_ingest)
            self._start_mqtt()
        elif not self._owns_push_devices and self.mqtt is not None:
            self.mqtt, task, self._mqtt_task = None, self._mqtt_task, None
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                self._tasks.remove(task)

    # --- polls and pushes ---------------------------------------------------------------------

    async def _poll(self, target: PollTarget) -> None:
        profile = self.registry.get(target.profile)
        if target.protocol == Protocol.HTTP:
            observation = await self.http.poll(target, profile)
        elif target.protocol == Protocol.SNMP:
            observation = await self.snmp.poll(target, profile)
        else:  # pragma: no cover - refresh() schedules only polled protocols
            observation = failed_observation(
                target.device_id, self.clock(), target.protocol, FailureKind.BAD_PAYLOAD, "not a polled protocol"
            )
        self.deliver(observation)

    def deliver(self, observation: Observation) -> None:
        """Hand one observation to health (from polls, MQTT, traps-triggered polls)."""
        self.guard.record(observation, time.monotonic())
        self._queue.put_nowait(observation)

    async def _on_trap(self, source: str, trap_oid: str, varbinds: dict[str, Any]) -> None:
        # A trap says "look at me now": poll the device at once, which gives its whole state.
        fault = fault_from_trap(trap_oid, varbinds)
        target = self._by_code.get(fault.device_code) if fault is not None else None
        if target is None:
            target = next((t for t in self._by_code.values() if t.address == source), None)
        if target is None:
            self.counters.event("snmp", "trap_unknown_device")
            return
        self.counters.event("snmp", "trap")
        await self._poll(target)

    # --- judging --------------------------------------------------------------------------------

    @property
    def observations_held(self) -> int:
        """Observations waiting for the database to come back."""
        return len(self._held)

    @property
    def observations_unsaved(self) -> int:
        """Observations heard and not saved yet: held for the database, and queued for the next save."""
        return len(self._held) + self._queue.qsize()

    @property
    def blind(self) -> bool:
        """Whether the collector holds judgement back now: every poll fails, it is stalled, or an ingest is silent."""
        return self.guard.blind or self.liveness.stalled or any(w.silent for w in self.ingest.values())

    def _take(self) -> list[Observation]:
        """What to save now: the held batch and the queue, without failures that say nothing of their device."""
        batch, self._held = self._held, []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if not batch:
            return batch
        own = [o for o in batch if not o.reachable and (o.error or "").split(":", 1)[0] in COLLECTOR_FAILURES]
        self.liveness.count_discounted("config", len(own))  # the collector's own failure (a secret it cannot open)
        batch = [o for o in batch if o.reachable or (o.error or "").split(":", 1)[0] not in COLLECTOR_FAILURES]
        kept = [o for o in batch if not self.liveness.discounts(o)]  # failed while the collector was stalled
        self.liveness.count_discounted("stalled", len(batch) - len(kept))
        if self.guard.judge(time.monotonic()):
            reachable = [o for o in kept if o.reachable]  # hold failures back while blind
            self.liveness.count_discounted("blind", len(kept) - len(reachable))
            kept = reachable
        return kept

    async def flush(self) -> int:
        """Apply what is queued to the health store now; returns how many observations were applied.

        While the database is away (a lost connection, a locked SQLite file), the batch is held and offered
        again at the next flush, so that a short outage costs no confirmation of any device: at most
        MAX_HELD observations, the newest (about two minutes of a 100,000-device fleet). A batch the database
        refuses for another reason is dropped, not retried forever. Both are counted. Failed polls that
        overlap a stall of the collector itself are dropped before (`fleet_collector_failures_discounted_total`).
        """
        self.liveness.check()
        if self._saving is not None:  # a save left running by a cancelled flush: it comes first
            future, pending = self._saving
            await asyncio.shield(future)
            self._saving = None
            self._settle(future, pending)
        batch = self._take()
        if not batch:
            self.liveness.flushed_nothing()
            return 0
        self.liveness.write_begin()
        future = asyncio.ensure_future(asyncio.to_thread(self.store.apply, batch, self.clock(), self._fence()))
        self._saving = (future, batch)
        # Shielded: cancelling the flush (stop) leaves the save running in its thread, and stop() waits for it.
        with contextlib.suppress(Exception):
            await asyncio.shield(future)
        self._saving = None
        return self._settle(future, batch)

    def _settle(self, future: asyncio.Future[list[DeviceTransition]], batch: list[Observation]) -> int:
        """Account for a finished save: applied, held again (database away) or dropped (refused)."""
        exc = future.exception()
        if exc is None:
            self.liveness.write_done(flush=True)
            self.observations_applied += len(batch)
            self.transitions += len(future.result())
            return len(batch)
        if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)):  # away, or busy: keep them for later
            before = len(batch) + len(self._held)
            self._held = (batch + self._held)[-MAX_HELD:]
            self.observations_dropped += before - len(self._held)
            raise DatabaseAway(f"{len(self._held)} observations held for the database: {exc}") from exc
        self.observations_dropped += len(batch)
        raise exc

    async def tick(self) -> int:
        """Count missed heartbeats of silent push devices.

        Not while blind, nor MQTT while the listener is not subscribed; not while the collector is stalled
        or has observations not saved yet (they may be the very heartbeats whose absence would be counted);
        and never the time of a stall or of a silent ingest (`excused`), nor beyond the last heartbeat heard
        fleet-wide while the ingest rule applies (see `IngestWatch`). MQTT silence is also never counted in
        the periods the listener could not hear (the broker away, or not subscribed yet), nor beyond the
        time it can vouch it heard (`MqttListener.heard_until`); HTTP heartbeats are not concerned.
        """
        if not self._owns_push_devices:
            return 0
        if self.liveness.check() or self._held or self._saving is not None or self.guard.judge(time.monotonic()):
            return 0
        now = self.clock()
        protocols = set(PUSH_PROTOCOLS)
        heard: dict[str, tuple[datetime, list[tuple[datetime, datetime]]]] = {}
        if self.mqtt is not None:
            heard_until = self.mqtt.heard_until(now)
            if heard_until is None:
                protocols.discard(Protocol.MQTT.value)
            else:
                heard[Protocol.MQTT.value] = (heard_until, self.mqtt.away_periods())
        excused = self.liveness.excused()
        self.liveness.write_begin()
        transitions = await asyncio.to_thread(self._tick_silent, now, sorted(protocols), excused, heard)
        self.liveness.write_done()
        self.transitions += len(transitions)
        return len(transitions)

    def _tick_silent(
        self,
        now: datetime,
        protocols: list[str],
        excused: list[tuple[datetime, datetime]],
        heard: dict[str, tuple[datetime, list[tuple[datetime, datetime]]]] | None = None,
    ) -> list[DeviceTransition]:
        """`heard`: for a protocol with its own listener, up to when it heard and the periods it could not."""
        transitions: list[DeviceTransition] = []
        for protocol in protocols:
            watch = self.ingest[protocol]
            facts = self.store.ingest_facts(protocol, watch.last_heard)
            cap, _gap = watch.judge(
                now, facts.last_heard, facts.first_heard_after, facts.expected, facts.longest_interval_s
            )
            heard_until, away = (heard or {}).get(protocol, (now, []))
            periods = merged([*excused, *away, *((g.start, g.end) for g in watch.gaps)])
            until = min(now, heard_until) if cap is None else min(now, heard_until, cap)
            # fenced: a collector paused past its lease no longer counts silence its successor counts
            transitions += self.store.tick_silent(until, 5000, {protocol}, periods, self._fence())
        return transitions

    def _prime_ingest(self) -> None:
        """Start the ingest watches from what the database last heard: a restart's gap is then seen as one."""
        for protocol, watch in self.ingest.items():
            watch.last_heard = self.store.ingest_facts(protocol).last_heard

    async def _every(
        self, seconds: float, work: Callable[[], Any], what: str, *, next_s: Callable[[], float] | None = None
    ) -> None:
        """Run `work` every `seconds` (or after `next_s()` seconds, asked each time), saying when it fails."""
        failures = FailureReport(log, what, seconds)  # the database may be away for a while: keep going, say so
        while True:
            await asyncio.sleep(next_s() if next_s is not None else seconds)
            try:
                await work()
            except Exception as exc:
                failures.failed(exc)
            else:
                failures.worked()

    # --- life -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the pollers, read the inventory, start schedules and listeners."""
        self._tasks.append(asyncio.create_task(self.liveness.run(), name="loop lag"))
        await self.http.start()
        await self.snmp.start()
        if self.pool is not None:
            try:
                await asyncio.to_thread(self.pool.round)
            except Exception as exc:  # the database away at the start: the keeper tries again
                log.error("first lease round failed, polling nothing until one succeeds: %s", exc)
        await self.refresh()
        if self._owns_push_devices:
            await asyncio.to_thread(self._prime_ingest)
        freeze_what_lives_on()
        self.scheduler.start()
        if self.pool is not None:  # shards taken over from a collector that stopped: what it missed, now
            self._catch_up(self.pool.last_claimed)
        if self.mqtt_url and self._owns_push_devices:
            self._start_mqtt()
        if self.trap_port:
            self.traps = TrapReceiver(self._on_trap, host="0.0.0.0", port=self.trap_port, counters=self.counters)
            await self.traps.start()
        self._tasks += [
            asyncio.create_task(self._every(self.flush_s, self.flush, "saving observations"), name="flush"),
            asyncio.create_task(self._every(self.tick_s, self.tick, "counting silences"), name="tick"),
            asyncio.create_task(self._every(self.refresh_s, self.refresh, "reading the inventory"), name="refresh"),
        ]
        if self.pool is not None:
            every = self.pool.leases.lease_s / 3
            renew = self._every(every, self._lease_round, "renewing leases", next_s=self.pool.next_round_s)
            self._tasks.append(asyncio.create_task(renew, name="leases"))

    def _start_mqtt(self) -> None:
        if self.mqtt_url:
            self.mqtt = MqttListener(
                self.mqtt_url,
                self.settings.mqtt_topic_filter,
                self._topics.get,
                self.registry,
                self.deliver,
                self.counters,
                # A clean session, nothing replayed (see monitor.collectors.mqtt), under this collector's own
                # id: a paused former holder of the push role waking up cannot take the connection over.
                client_id=f"fleet-monitor-{self.pool.leases.name}"
                if self.pool is not None
                else f"fleet-monitor-collector-{self.shard[0]}",
                backoff_initial_s=self.settings.mqtt_backoff_initial_s,
                backoff_max_s=self.settings.mqtt_backoff_max_s,
                keepalive_s=self.settings.mqtt_keepalive_s,
                clock=self.clock,
                # Since the last MQTT heartbeat saved, nobody heard the broker (this collector restarted, or took
                # the push role over from one that stopped): that time is not the devices' silence either.
                deaf_since=self.ingest[Protocol.MQTT.value].last_heard,
            )
            self._mqtt_task = asyncio.create_task(self.mqtt.run(), name="mqtt listener")
            self._tasks.append(self._mqtt_task)

    async def stop(self, timeout_s: float | None = None) -> None:
        """Stop scheduling, save what was heard within `timeout_s`, close every socket.

        `timeout_s` defaults to MONITOR_COLLECTOR_STOP_TIMEOUT_S. It returns within about that long even
        when the database is locked or away: a save still blocked in its thread is left to finish or fail
        there (it cannot be interrupted), and what could not be saved in time is said in one log line with
        its count, and counted as dropped.
        """
        timeout_s = self.settings.collector_stop_timeout_s if timeout_s is None else timeout_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        await self.scheduler.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        unsaved, why = 0, ""
        if self._saving is not None:  # a flush was cancelled while its batch was being saved
            future, batch = self._saving
            self._saving = None
            await asyncio.wait({future}, timeout=max(0.0, deadline - loop.time()))
            if not future.done():
                unsaved, why = len(batch), "the database did not answer in time"
            else:
                with contextlib.suppress(Exception):  # a database error holds the batch again: retried below
                    self._settle(future, batch)
        batch = self._take()
        if batch:
            remaining = deadline - loop.time()
            future = asyncio.ensure_future(asyncio.to_thread(self.store.apply, batch, self.clock(), self._fence()))
            await asyncio.wait({future}, timeout=max(0.0, remaining))
            if not future.done():
                unsaved, why = unsaved + len(batch), "the database did not answer in time"
            elif future.exception() is not None:
                unsaved, why = unsaved + len(batch), str(future.exception())[:300]
            else:
                self.observations_applied += len(batch)
                self.transitions += len(future.result())
        if unsaved:
            self.observations_dropped += unsaved
            log.error(
                "collector stopping: %d observations could not be saved within %.1f s and are lost (%s)",
                unsaved,
                timeout_s,
                why,
            )
        if self.traps is not None:
            await self.traps.stop()
        await self.http.close()
        await self.snmp.close()
        if self.pool is not None:  # give the shards back: the others take them at their next round, not a lease later
            leaving = asyncio.ensure_future(asyncio.to_thread(self.pool.leases.leave))
            await asyncio.wait({leaving}, timeout=max(0.5, deadline - loop.time()))
            if not leaving.done() or leaving.exception() is not None:
                log.warning("could not give the shards back: they lapse within %.0f s", self.pool.leases.lease_s)
