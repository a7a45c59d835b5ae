"""Results files: the one schema and reader, targets, fitted slopes, plots, book tables."""
