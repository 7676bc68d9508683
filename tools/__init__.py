"""Commands run against a deployed app (the azd hooks run them); never deployed themselves."""
