"""The function app: registers each function's blueprint, as an application factory would."""

import azure.functions as func

from call_outcome import bp as call_outcome
from call_status import bp as call_status
from make_call import bp as make_call
from message_outcome import bp as message_outcome
from message_status import bp as message_status
from send_sms import bp as send_sms
from shared.startup import on_load
from sms_url import bp as sms_url
from sweep_state import bp as sweep_state
from voice_url import bp as voice_url

app = func.FunctionApp()
for blueprint in (
    make_call,
    voice_url,
    sms_url,
    send_sms,
    call_status,
    message_status,
    call_outcome,
    message_outcome,
    sweep_state,
):
    app.register_functions(blueprint)

on_load()
