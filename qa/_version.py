"""The package version, in a module of its own so that modules inside `qa` never import it back
from the package face (`qa/__init__.py`)."""

__version__ = "0.1.0"
