"""The staff live operations page at ``/dashboard``: server-rendered HTML, one small ES module
per panel, charts from a chart library served out of its installed Python package, and one
WebSocket carrying snapshots of the shop and of the log platform."""
