"""`make bench`: cold start, warm path and round trips, each beside a baseline written the classic way."""
