"""Inventory: warehouses, stock levels, and units held for orders."""
