"""Tools to run and try the function app on one machine; never deployed."""
