//! The ingest API and the Redis stream consumer: tokens, batches, bad input, duplicates.
