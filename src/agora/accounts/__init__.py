"""Accounts: users, credentials, tokens and roles."""
