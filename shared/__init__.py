"""The common core of the function app: settings, credentials, Twilio, TwiML, webhooks, HTTP."""
