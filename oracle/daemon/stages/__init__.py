"""The stages a job goes through after the listener: fetch (verify, open, decode), classify,
submit. Each takes work from a queue in `Lanes` and hands it on; what they share is in `Core`."""
