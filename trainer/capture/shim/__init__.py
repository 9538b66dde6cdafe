"""Stand-in modules put first on a command's ``PYTHONPATH`` only when the user opts in
(``--capture wandb``); never importable as top-level modules otherwise."""
