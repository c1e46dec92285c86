"""The distributed crawl scheduler: frontier, leases, politeness, robots.txt and fetching.

An engine like ``logs``: it knows no commerce domain. What a fetched page means is decided by a
``PageHandler`` that the process running the crawler plugs in (price watch does).
"""
