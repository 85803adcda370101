"""Where the files that ship with the service live (Avro schemas, vendored OpenAPI subset)."""

from pathlib import Path

__all__ = ["PACKAGE_DIR", "schemas_dir"]

PACKAGE_DIR = Path(__file__).resolve().parent


def schemas_dir() -> Path:
    """The directory of Avro contracts: the repo's ``schemas/``, or the copy inside a wheel."""
    in_repo = PACKAGE_DIR.parent / "schemas"
    return in_repo if in_repo.is_dir() else PACKAGE_DIR / "_schemas"
