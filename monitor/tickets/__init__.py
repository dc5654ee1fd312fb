"""Repair tickets: one open ticket per problem, routed to the responsible district, with SLA clocks.

Callers import `monitor.tickets.service`, which gathers the public functions. Inside:

    choices.py      statuses, sources, scopes, actions, event kinds (with Vietnamese labels)
    workflow.py     the allowed status moves (pure): apply_action, allowed_actions, InvalidTransition
    sla.py          the SLA clock arithmetic (pure): targets per priority, pauses, working hours
    holidays.py     Vietnamese public holidays for working-hours clocks
    policy.py       TicketPolicy: a deployment's SLA, reopen window, close delay, routing, limits
    models.py       tables: tickets, ticket_events, ticket_pauses, ticket_attachments, ticket_counters,
                    inspection_schedules
    schemas.py      request and response shapes for the API
    routing.py      which district fixes a commune's problems
    store.py        what every writer shares: locks, ticket codes, events, due times
    lifecycle.py    the automatic path: open or update, resolve on recovery, close, reconcile, breaches
    actions.py      what people do: manual tickets, transitions, assignment, priority, comments, costs
    queries.py      one ticket, the queue with keyset pagination, history, yearly costs
    planned.py      recurring inspection schedules -> planned tickets
    attachments.py  photos, checked by content
"""
