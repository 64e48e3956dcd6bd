"""The engine: refresh (I/O through the client), the pure planner, and the executor."""
