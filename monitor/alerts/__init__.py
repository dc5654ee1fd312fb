"""Alerts: from state changes to problems, quietly — dependencies, storm grouping, maintenance
windows, acknowledgement, notifications, and the Alertmanager receiver. The only bridge from health
to tickets."""
