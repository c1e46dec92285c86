"""The log analytics platform: ingest, storage, query language, rollups, live tail and alerts.

An engine of its own: it imports only ``agora.core`` and knows no commerce domain; Agora's
requests and business events reach it as data.
"""
