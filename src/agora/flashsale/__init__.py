"""Flash sales: a crowd races for a few units; Redis decides, the worker makes the orders."""
