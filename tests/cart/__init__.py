"""Tests of cart."""
