"""The kit every service uses: settings, JSON errors, database, tokens and the resilient client."""
