"""The Twilio sandbox that `make run` serves: Twilio's contract checked by Prism, Twilio's behaviour
played out behind it, and pages that show what happened.

- `webhooks`: Twilio's webhook parameters, signed, sent where the app listens (the host and the invoker);
- `resources`: calls and texts, Twilio's JSON for each, and the sandbox's view of it;
- `answers`: Twilio's error bodies and list pages (which the tests' Twilio stand-in answers too);
- `rest`: Twilio's REST API, which Prism forwards valid requests to;
- `playout`: what Twilio does next: status callbacks, the TwiML a call fetches, a text's delivery;
- `views` and `page`: the sandbox's own JSON views and its page, under /_sandbox;
- `prism`: Prism on Twilio's spec, and the pass-through the app's Twilio client talks to;
- `run`: all of it started as `make run` starts it, and the credentials the app uses against it.
"""
