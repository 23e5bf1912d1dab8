"""Model management: catalog, downloads, store, imports (never Qt)."""
