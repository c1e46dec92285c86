"""Carts: anonymous and user carts, priced at current prices."""
