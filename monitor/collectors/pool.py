"""A collector's place in the pool of leased shards: the lease keeper's side that the collector asks.

The leases themselves (claims, renewals, epochs, fencing) are `monitor.health.leases`; this is what one
collector process keeps of them between rounds, and when its next round is due.
"""

from __future__ import annotations

import logging

from monitor.health.leases import PUSH_SHARD, Leases, ShardFence, shard_of

log = logging.getLogger(__name__)
LAPSE_MARGIN_S = 0.25  # a lease round this long after a lease it does not renew lapses (the clocks' step)


class PoolMember:
    """A collector's place in the pool of leased shards (`monitor.health.leases`): which shards it polls now.

    The keeper runs a lease round every third of the lease, or sooner: just after a lease it does not renew
    lapses, another collector's or a previous life's of its own (`next_round_s`); what it holds afterwards is
    what the collector polls. A round that fails (the database away) drops every shard at once: the collector
    cannot be sure of any, and another collector may take them once their leases lapse.
    """

    def __init__(self, leases: Leases) -> None:
        self.leases = leases
        self.rounds_failed = 0
        self.shards_lost = 0
        self.shards_claimed = 0
        self.last_claimed: frozenset[int] = frozenset()  # claimed by the latest round
        self.next_lapse_s: float | None = None  # the earliest lease it does not renew, as the latest round saw it

    def next_round_s(self) -> float:
        """Seconds until the next round: a third of the lease, or just after `next_lapse_s` if sooner."""
        every = self.leases.lease_s / 3
        if self.next_lapse_s is None:
            return every
        return min(every, self.next_lapse_s + LAPSE_MARGIN_S)

    @property
    def epochs(self) -> dict[int, int]:
        return dict(self.leases.held.epochs)

    def polls(self, device_id: int) -> bool:
        return shard_of(device_id, self.leases.shard_count) in self.leases.held.epochs

    @property
    def has_push_role(self) -> bool:
        return PUSH_SHARD in self.leases.held.epochs

    def fence(self) -> ShardFence:
        return ShardFence(self.leases.name, self.epochs, self.leases.shard_count)

    def round(self) -> bool:
        """One lease round (in a thread); whether what is held changed."""
        before = self.leases.held.shards
        try:
            done = self.leases.round()
        except Exception:
            self.rounds_failed += 1
            self.next_lapse_s = None
            self.leases.drop_all()
            raise
        finally:
            changed = self.leases.held.shards != before
        self.next_lapse_s = done.next_lapse_s
        self.shards_lost += len(done.lost)
        self.shards_claimed += len(done.claimed)
        self.last_claimed = frozenset(done.claimed)
        if done.claimed or done.released:
            log.info(
                "shards: claimed %s, gave back %s; holding %d of %d (%d collectors)",
                list(done.claimed),
                list(done.released),
                len(done.held),
                self.leases.shard_count,
                done.members,
            )
        return changed
