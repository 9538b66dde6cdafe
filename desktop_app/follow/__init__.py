"""The app's journal followers: one per open run, polled on one tick, read off the GUI thread."""
