"""The ``klaviyo-consumer`` command line."""

__all__: list[str] = []
