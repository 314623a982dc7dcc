"""milestone implementations: offline data, NumPy fundamentals, architectures, framework skills."""
