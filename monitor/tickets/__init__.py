"""Repair tickets: one open ticket per problem, routed to the responsible district, with SLA clocks.

`sla` holds the pure clock arithmetic (targets per priority, pauses while waiting, working hours)
and `holidays` the Vietnamese public holidays it skips; neither does any I/O.
"""
