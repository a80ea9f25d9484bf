"""Domain events: the transactional outbox, the feed, and the relay to brokers."""
