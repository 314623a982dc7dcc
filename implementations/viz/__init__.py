"""Plotting shared by assessments, reports and notebooks (matplotlib, Agg backend)."""
