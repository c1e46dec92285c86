"""Orders: checkout, totals, shipping, vouchers, the order state machine and auto-cancel."""
