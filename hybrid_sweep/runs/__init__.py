"""The run store: content-addressed runs, locks, status markers, and the worker that executes a run."""
