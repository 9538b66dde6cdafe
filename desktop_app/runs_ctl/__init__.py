"""Launching and controlling runs from the app: the supervisor of child trainer processes,
the log console, the new-run dialog, the run actions and the close prompt.

Nothing here imports torch: children run ``python -m trainer ...`` and everything else goes
through the run folder (journal, logs, control messages).
"""
