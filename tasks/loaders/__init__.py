"""Dataset loaders, one per on-disk format; they read files and yield ``Sample`` records."""
