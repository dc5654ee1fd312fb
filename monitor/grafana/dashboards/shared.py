"""What several dashboards share: the colours of uptime, and the joins that put names on codes."""

from __future__ import annotations

UPTIME_STEPS = [("red", None), ("orange", 0.9), ("green", 0.95)]  # 0.95: fleet:uptime_target:ratio's default

# Joined to a series, these give it the names of its commune and district (or of its district alone).
COMMUNE_NAMES = "on (commune) group_left (commune_name, district_name) fleet_commune_info"
DISTRICT_NAMES = "on (district) group_left (district_name) fleet_district_info"

__all__ = ["COMMUNE_NAMES", "DISTRICT_NAMES", "UPTIME_STEPS"]
