"""The part of the build that pyproject.toml cannot say: ``resources/`` as package data.

The top-level ``resources/`` folder (recipe defaults) is installed inside the trainer package as
``trainer/_resources/``, where ``trainer.paths.resources_dir()`` finds it through
importlib.resources. A checkout reads ``resources/`` itself; the PyInstaller bundle carries it
as ``<bundle>/resources``. Everything else about the project is in pyproject.toml.
"""

from setuptools import find_namespace_packages, find_packages, setup

RESOURCES = "resources"
DATA_PACKAGE = "trainer._resources"

# Every folder of resources/ is a data-only package under trainer._resources.
data_packages = [DATA_PACKAGE] + [
    f"{DATA_PACKAGE}.{name}" for name in find_namespace_packages(where=RESOURCES)
]

setup(
    packages=[*find_packages(include=["trainer*", "desktop_app*"]), *data_packages],
    package_dir={DATA_PACKAGE: RESOURCES},
    package_data={
        "trainer": ["py.typed"],
        # The W&B stand-in's package metadata (integrations check wandb's version).
        "trainer.capture.shim": ["wandb-*.dist-info/*"],
        **{name: ["*.toml", "*.json", "*.png", "*.svg", "*.txt"] for name in data_packages},
    },
    exclude_package_data={"": ["__pycache__/*"]},
)
