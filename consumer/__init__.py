"""klaviyo-consumer: order and return change streams (Kafka, Avro) into Klaviyo, per merchant."""

__all__ = ["__version__"]

__version__ = "0.1.0"
