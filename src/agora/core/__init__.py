"""The kernel: database, Redis, jobs, errors, security and observability. Knows no domain."""
