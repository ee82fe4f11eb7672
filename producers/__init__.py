"""The poller: links accounts, syncs each token's orders from Allegro into Kafka (`python -m producers`)."""
