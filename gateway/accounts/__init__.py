"""Accounts: what one holds and how it goes away (``lifecycle``, shared by the dashboard and
self-service), and the self-service page and JSON API (``routes``, ``api``)."""
