"""Fleet monitoring and repair ticketing for a province's grassroots information network.

Watches commune radio clusters (cụm loa) and public electronic bulletin boards (bảng tin điện tử
công cộng), and turns what it sees into metrics, alerts and repair tickets for the district that
must fix them. See DESIGN.md (shared with the project) for the map of the parts.
"""

__version__ = "0.1.0"
