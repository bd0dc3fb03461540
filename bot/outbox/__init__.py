"""The outbox: campaigns and deliveries in the store, and the senders that work them off."""
