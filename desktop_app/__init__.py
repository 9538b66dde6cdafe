"""TrainDesk's desktop app: PySide6 widgets over Qt-free models. Never imports torch."""
