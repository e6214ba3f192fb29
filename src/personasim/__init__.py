"""personasim: walk simulated learners through learning modules and grade what they make of them."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("personasim")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"
