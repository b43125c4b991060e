"""Statements: what a finance team receives per settlement batch (model, totals, CSV, PDF)."""
