"""Payments: providers behind one interface, callbacks verified and applied exactly once, refunds
and reconciliation."""
