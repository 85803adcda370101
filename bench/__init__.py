"""``make bench``: throughput, latency and state figures of the service on this machine, next
to the machine's ceiling and a Quix Streams peer. See docs/performance.md."""
