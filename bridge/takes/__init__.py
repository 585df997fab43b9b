"""Takes: finishing (trim, loop join, loudness with the limiter), rendering into the project folder, the
take's sidecar record, and the kept copies of the primes they were made from."""
