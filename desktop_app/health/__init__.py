"""The health panel: each run's heartbeat, pace, lag, restarts and last error; the app's own."""
