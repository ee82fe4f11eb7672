"""A faithful simulator of the Allegro REST API parts the backup uses, with a control API under /_sim."""
