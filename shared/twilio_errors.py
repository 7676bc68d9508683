"""What Twilio's most common call and message error codes mean, so that an outcome explains itself.

The titles are those of Twilio's Error and Warning Dictionary, https://www.twilio.com/docs/api/errors
(one page per code: https://www.twilio.com/docs/api/errors/<code>). Only codes a status callback
commonly carries are kept; any other code is reported alone.
"""

from __future__ import annotations

MEANINGS = {
    11200: "HTTP retrieval failure",
    11205: "HTTP connection failure",
    11210: "HTTP bad host name",
    12100: "Document parse failure",
    13224: "Dial: Twilio does not support calling this number or the number is invalid",
    21211: "Invalid 'To' Phone Number",
    21214: "'To' phone number cannot be reached",
    21610: "Attempt to send to unsubscribed recipient",
    30001: "Queue overflow",
    30002: "Account suspended",
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
    30034: "US A2P 10DLC - Message from an Unregistered Number",
}
