"""The app's own settings: a Qt-free model (:mod:`.model`), the dialog and the theme (Qt).

Importing this package imports no Qt; ``desktop_app.settings.dialog`` and
``desktop_app.settings.theme`` do.
"""

from desktop_app.settings.model import (
    AppSettings,
    SettingsError,
    load_settings,
    save_settings,
    settings_path,
)

__all__ = ["AppSettings", "SettingsError", "load_settings", "save_settings", "settings_path"]
