"""Stubs generated from proto/agora/rpc/inventory/v1/inventory.proto at build time."""
